/**
 * Admission control for incoming datagrams, applied before they are decoded. Pure: no timers, no sockets; the
 * time is passed in.
 *
 * A datagram from a *trusted* address, the current address of a known peer as the engine has it (the engine learns
 * a peer's address only from a fresh, authenticated packet, or from the directory), is always admitted and never
 * charged: someone else's flood cannot cost an honest peer a datagram. Every other datagram is charged one token
 * from its source's bucket and one from a global bucket; when either is empty it is dropped before any decoding or
 * cryptography. So:
 *
 * - one unknown source gets at most `sourceRatePerSec` datagrams per second into the engine (after a burst);
 * - all unknown sources together get at most `globalRatePerSec` (after a burst), however many addresses they use:
 *   the CPU spent on them is at most that many decodes and signature checks per second;
 * - the table of sources is LRU-capped at `maxSources` entries, so spoofed addresses cannot grow memory.
 *
 * Charging every untrusted datagram, not only those the engine rejects, also bounds exact replays of captured
 * authentic datagrams sent from an attacker's address (they pass the signature check before being found
 * duplicates, so they cost as much as a forgery). The price: a peer that changes address is charged as a stranger
 * until its first authenticated packet from the new address is seen and trust is refreshed (within
 * `trustRefreshMs`); and while strangers exhaust the global budget, such a roaming peer's first datagrams may be
 * dropped (it retransmits). Peers at their known addresses are never affected.
 */
import type { Millis } from "../engine/types.ts";

export interface AdmissionConfig {
  /** Tokens per second earned by each untrusted source address. */
  sourceRatePerSec: number;
  /** Most tokens one source can save up (its burst). */
  sourceBurst: number;
  /** Tokens per second shared by all untrusted sources. */
  globalRatePerSec: number;
  globalBurst: number;
  /** Source addresses remembered; the least recently heard is forgotten beyond this. */
  maxSources: number;
  /** How often the trusted addresses are re-read (from the engine's peers). */
  trustRefreshMs: number;
}

/**
 * Sized so that the engine verifies at most ~2,000 forged signatures a second from strangers (≈ 10-15% of one core
 * for Ed25519 here), while one stranger still gets 100 datagrams a second: a peer reconnecting from a new address
 * sends far fewer before it is trusted.
 */
export const DEFAULT_ADMISSION: AdmissionConfig = {
  sourceRatePerSec: 100,
  sourceBurst: 200,
  globalRatePerSec: 2_000,
  globalBurst: 4_000,
  maxSources: 4_096,
  trustRefreshMs: 100,
};

export interface AdmissionStats {
  /** Datagrams from trusted addresses (never limited). */
  trusted: number;
  /** Datagrams from other addresses that were let through (and charged). */
  admitted: number;
  /** Dropped before decoding because their source had no token left... */
  droppedSource: number;
  /** ...or because all untrusted sources together had used the global budget. */
  droppedGlobal: number;
  /** Source addresses in the table now, and how many were forgotten to respect maxSources. */
  sources: number;
  evicted: number;
  /** Trusted addresses now. */
  trustedAddresses: number;
}

interface Bucket {
  tokens: number;
  at: Millis;
}

function refill(bucket: Bucket, now: Millis, ratePerSec: number, burst: number): void {
  const elapsed = now - bucket.at;
  // A clock that went backwards earns nothing (and does not take anything back).
  if (elapsed > 0) bucket.tokens = Math.min(burst, bucket.tokens + (elapsed * ratePerSec) / 1000);
  bucket.at = Math.max(bucket.at, now);
}

export class Admission {
  private config: AdmissionConfig;
  /** Insertion order is recency: a source is re-inserted every time it is charged. */
  private readonly sources = new Map<string, Bucket>();
  private readonly global: Bucket;
  private trustedSet = new Set<string>();
  private trustedAt: Millis | undefined;
  private readonly counters = { trusted: 0, admitted: 0, droppedSource: 0, droppedGlobal: 0, evicted: 0 };

  constructor(config: Partial<AdmissionConfig> = {}, now: Millis = 0) {
    this.config = validate({ ...DEFAULT_ADMISSION, ...config });
    this.global = { tokens: this.config.globalBurst, at: now };
  }

  getConfig(): AdmissionConfig {
    return { ...this.config };
  }

  /** Changes the limits; buckets keep their tokens (capped to the new bursts at their next refill). */
  configure(change: Partial<AdmissionConfig>): AdmissionConfig {
    this.config = validate({ ...this.config, ...change });
    while (this.sources.size > this.config.maxSources) this.evictOldest();
    return this.getConfig();
  }

  /** Replaces the trusted addresses (every known peer's current address). */
  trust(addresses: Iterable<string>, now: Millis): void {
    this.trustedSet = new Set(addresses);
    this.trustedAt = now;
    // A source that became trusted starts afresh if it ever becomes a stranger again.
    for (const address of this.trustedSet) this.sources.delete(address);
  }

  isTrusted(address: string): boolean {
    return this.trustedSet.has(address);
  }

  /**
   * Whether to hand a datagram from `source` to the engine. `trusted` supplies the current trusted addresses; it
   * is called at most once per trustRefreshMs.
   */
  admit(source: string, now: Millis, trusted?: () => Iterable<string>): boolean {
    if (
      trusted &&
      (this.trustedAt === undefined ||
        now - this.trustedAt >= this.config.trustRefreshMs ||
        now < this.trustedAt)
    )
      this.trust(trusted(), now);
    if (this.trustedSet.has(source)) {
      this.counters.trusted++;
      return true;
    }
    const c = this.config;
    let bucket = this.sources.get(source);
    if (bucket) {
      this.sources.delete(source);
      refill(bucket, now, c.sourceRatePerSec, c.sourceBurst);
    } else {
      if (this.sources.size >= c.maxSources) this.evictOldest();
      bucket = { tokens: c.sourceBurst, at: now };
    }
    this.sources.set(source, bucket);
    if (bucket.tokens < 1) {
      this.counters.droppedSource++;
      return false;
    }
    refill(this.global, now, c.globalRatePerSec, c.globalBurst);
    if (this.global.tokens < 1) {
      this.counters.droppedGlobal++;
      return false;
    }
    bucket.tokens -= 1;
    this.global.tokens -= 1;
    this.counters.admitted++;
    return true;
  }

  private evictOldest(): void {
    const oldest = this.sources.keys().next().value;
    if (oldest === undefined) return;
    this.sources.delete(oldest);
    this.counters.evicted++;
  }

  stats(): AdmissionStats {
    return { ...this.counters, sources: this.sources.size, trustedAddresses: this.trustedSet.size };
  }
}

function validate(c: AdmissionConfig): AdmissionConfig {
  for (const [key, value] of Object.entries(c)) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`admission ${key} must be a number ≥ 0`);
  }
  if (!Number.isInteger(c.maxSources) || c.maxSources < 1)
    throw new RangeError("admission maxSources must be ≥ 1");
  return c;
}
