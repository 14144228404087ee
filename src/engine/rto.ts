import type { Millis } from "./types.ts";

export interface RtoConfig {
  /**
   * Floor of the retransmission timeout. LAN round trips are well under a millisecond; a busy event loop shows in
   * the RTT samples and lifts the RTO above the floor (srtt + 4 × rttvar), and a spurious copy costs its receiver
   * a hash, not a signature check (the crypto port remembers checked datagrams). So the floor is low: loss is
   * repaired within a few milliseconds, which is what keeps p99 latency low at 40% loss.
   */
  rtoMsMin: Millis;
  /** Ceiling of the timeout after backoff, so that a give-up stays within a few seconds. */
  rtoMsMax: Millis;
  /** The timeout before any round trip was measured. */
  rtoMsInitial: Millis;
  /**
   * Expired timeouts of a frame retried at the plain RTO before the wait starts doubling. Chat is a thin stream:
   * a few frames in flight, so a lost frame is rarely followed by enough traffic to trigger an early retransmit,
   * and doubling from the first timeout puts the 4th or 5th try of an unlucky frame behind seconds of waits. Linux
   * makes the same choice for thin TCP streams (tcp_thin_linear_timeouts: 6 linear timeouts, then exponential).
   */
  linearTimeouts: number;
}

/** Clock granularity G of RFC 6298: the runtime's clock ticks in milliseconds. */
const CLOCK_GRANULARITY_MS = 1;

/** Smoothed RTT and variance as RFC 6298 section 2 specifies (alpha = 1/8, beta = 1/4). */
export class RttEstimator {
  srttMs: number | undefined;
  rttvarMs = 0;

  constructor(private readonly config: RtoConfig) {}

  /** Feeds one sample; callers apply Karn's rule (no samples from retransmitted frames). */
  sample(rttMs: Millis): void {
    const r = Math.max(0, rttMs);
    if (this.srttMs === undefined) {
      this.srttMs = r;
      this.rttvarMs = r / 2;
      return;
    }
    this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * Math.abs(this.srttMs - r);
    this.srttMs = 0.875 * this.srttMs + 0.125 * r;
  }

  /** The current timeout, clamped to [rtoMsMin, rtoMsMax]. */
  rto(): Millis {
    const raw =
      this.srttMs === undefined
        ? this.config.rtoMsInitial
        : this.srttMs + Math.max(CLOCK_GRANULARITY_MS, 4 * this.rttvarMs);
    return Math.min(this.config.rtoMsMax, Math.max(this.config.rtoMsMin, raw));
  }

  /**
   * The wait before the next try of a frame whose timeout has expired `timeouts` times: the RTO for the first
   * `linearTimeouts` expiries, then doubled per further expiry, capped, and stretched by up to 25% of jitter so
   * that frames lost together do not retry in lockstep. `unitRandom` is in [0, 1).
   */
  backoff(timeouts: number, unitRandom: number): Millis {
    const doublings = Math.min(Math.max(0, timeouts - this.config.linearTimeouts), 16);
    const doubled = this.rto() * 2 ** doublings;
    return Math.min(this.config.rtoMsMax, doubled) * (1 + 0.25 * unitRandom);
  }
}
