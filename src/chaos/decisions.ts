/**
 * What the chaos proxy does to each datagram, decided from an injected Rng and the time since the proxy started.
 * Pure: no sockets, no clock, no timers. The faults are the shared model's (src/faults/plan.ts), in parts per
 * million, plus truncation and blackhole windows that only a proxy in the middle of a real link makes.
 */
import type { Rng } from "../engine/ports.ts";
import { delayOf, flipBits, type LinkFaults, NO_LINK_FAULTS, truncate } from "../faults/plan.ts";
import { chance, PPM } from "../faults/ppm.ts";

export interface ChaosConfig extends LinkFaults {
  /** A corrupted datagram has 1..corruptBitsMax distinct bits flipped. */
  corruptBitsMax: number;
  /** Datagrams cut to a random shorter length (0 included), per million. */
  truncatePpm: number;
  /** Every blackholeEveryMs (0: never), everything in both directions is dropped for blackholeForMs. */
  blackholeEveryMs: number;
  blackholeForMs: number;
}

export const NO_CHAOS: ChaosConfig = {
  ...NO_LINK_FAULTS,
  corruptBitsMax: 4,
  truncatePpm: 0,
  blackholeEveryMs: 0,
  blackholeForMs: 0,
};

export interface Copy {
  /** How long to hold this copy before sending it. */
  delayMs: number;
  bytes: Uint8Array;
}

export type Fate =
  | { action: "drop"; why: "loss" | "blackhole" }
  | { action: "send"; copies: Copy[]; corrupted: boolean; truncated: boolean; duplicated: boolean };

/**
 * Whether the link is cut `elapsedMs` after the proxy started: the first window opens one full period after the
 * start, so a proxy always begins with a working link.
 */
export function inBlackhole(config: ChaosConfig, elapsedMs: number): boolean {
  if (config.blackholeEveryMs <= 0 || config.blackholeForMs <= 0) return false;
  if (elapsedMs < config.blackholeEveryMs) return false;
  return elapsedMs % config.blackholeEveryMs < config.blackholeForMs;
}

/** The fate of one datagram. Consumes the Rng in a fixed order, so the same seed and traffic replay the same. */
export function decide(rng: Rng, config: ChaosConfig, bytes: Uint8Array, elapsedMs: number): Fate {
  if (inBlackhole(config, elapsedMs)) return { action: "drop", why: "blackhole" };
  if (chance(rng, config.lossPpm)) return { action: "drop", why: "loss" };
  let out = bytes;
  const corrupted = out.length > 0 && chance(rng, config.corruptPpm);
  if (corrupted) out = flipBits(rng, out, config.corruptBitsMax);
  const truncated = out.length > 0 && chance(rng, config.truncatePpm);
  if (truncated) out = truncate(rng, out);
  const duplicated = chance(rng, config.duplicatePpm);
  const delay = () => delayOf(rng, config);
  const copies: Copy[] = [{ delayMs: delay(), bytes: out }];
  if (duplicated) copies.push({ delayMs: delay(), bytes: out });
  return { action: "send", copies, corrupted, truncated, duplicated };
}

// ---- parsing what a user types --------------------------------------------------------------------------------

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/** "250", "250ms", "1.5s", "2m" → whole milliseconds. A bare number is milliseconds. */
export function parseDurationMs(text: string, what = "duration"): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/i.exec(text);
  const unit = DURATION_UNITS[(match?.[2] ?? "ms").toLowerCase()];
  if (!match || unit === undefined)
    throw new RangeError(`${what} must be a duration such as 250, 250ms, 1.5s or 2m (got "${text}")`);
  const ms = Math.round(Number(match[1]) * unit);
  if (ms > 24 * 3_600_000) throw new RangeError(`${what} must be at most 24h (got "${text}")`);
  return ms;
}

/** Checks a whole configuration; throws a RangeError naming the offending setting. */
export function validateChaosConfig(c: ChaosConfig): ChaosConfig {
  for (const key of ["lossPpm", "duplicatePpm", "corruptPpm", "truncatePpm"] as const) {
    const v = c[key];
    if (!Number.isInteger(v) || v < 0 || v > PPM) throw new RangeError(`${key} must be an integer 0..${PPM}`);
  }
  for (const key of ["delayMs", "jitterMs", "blackholeEveryMs", "blackholeForMs"] as const) {
    const v = c[key];
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${key} must be a whole number of milliseconds`);
  }
  if (!Number.isInteger(c.corruptBitsMax) || c.corruptBitsMax < 1 || c.corruptBitsMax > 64)
    throw new RangeError("corruptBitsMax must be 1..64");
  if (c.blackholeForMs > 0 && c.blackholeEveryMs === 0)
    throw new RangeError("--blackhole-for needs --blackhole-every");
  if (c.blackholeEveryMs > 0 && c.blackholeForMs >= c.blackholeEveryMs)
    throw new RangeError(
      "--blackhole-for must be shorter than --blackhole-every (or the link is always cut)",
    );
  return c;
}
