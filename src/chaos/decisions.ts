/**
 * What the chaos proxy does to each datagram, decided from an injected Rng and the time since the proxy started.
 * Pure: no sockets, no clock, no timers. Probabilities are integers per million so that a seeded run replays
 * exactly (a float rate would round differently depending on how it was typed).
 */
import type { Rng } from "../engine/ports.ts";
import { below, chance } from "./seeded-rng.ts";

export const PPM = 1_000_000;

export interface ChaosConfig {
  /** Datagrams dropped, per million. */
  lossPpm: number;
  /** Datagrams sent twice (each copy with its own delay, so the copies may also be reordered), per million. */
  duplicatePpm: number;
  /** Datagrams with 1..corruptBitsMax random bits flipped, per million. */
  corruptPpm: number;
  corruptBitsMax: number;
  /** Datagrams cut to a random shorter length (0 included), per million. */
  truncatePpm: number;
  /** Every datagram is held this long... */
  delayMs: number;
  /** ...plus a uniform random extra in [0, jitterMs): datagrams overtake each other. */
  jitterMs: number;
  /** Every blackholeEveryMs (0: never), everything in both directions is dropped for blackholeForMs. */
  blackholeEveryMs: number;
  blackholeForMs: number;
}

export const NO_CHAOS: ChaosConfig = {
  lossPpm: 0,
  duplicatePpm: 0,
  corruptPpm: 0,
  corruptBitsMax: 4,
  truncatePpm: 0,
  delayMs: 0,
  jitterMs: 0,
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

/** A copy of `bytes` with 1..bitsMax distinct-position bit flips (a flip at the same bit twice is allowed). */
export function flipBits(rng: Rng, bytes: Uint8Array, bitsMax: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  if (out.length === 0) return out;
  const flips = 1 + below(rng, Math.max(1, bitsMax));
  for (let i = 0; i < flips; i++) {
    const bit = below(rng, out.length * 8);
    out[bit >>> 3] = (out[bit >>> 3] as number) ^ (1 << (bit & 7));
  }
  return out;
}

/** `bytes` cut to a random length in [0, length). */
export function truncate(rng: Rng, bytes: Uint8Array): Uint8Array {
  if (bytes.length === 0) return bytes;
  return bytes.slice(0, below(rng, bytes.length));
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
  const delay = () => config.delayMs + (config.jitterMs > 0 ? below(rng, config.jitterMs) : 0);
  const copies: Copy[] = [{ delayMs: delay(), bytes: out }];
  if (duplicated) copies.push({ delayMs: delay(), bytes: out });
  return { action: "send", copies, corrupted, truncated, duplicated };
}

// ---- parsing what a user types --------------------------------------------------------------------------------

/** "30%", "0.3", "300000ppm" → parts per million. Throws a RangeError a user can read. */
export function parseRatePpm(text: string, what = "rate"): number {
  const t = text.trim().toLowerCase();
  let value: number;
  if (t.endsWith("ppm")) value = Number(t.slice(0, -3));
  else if (t.endsWith("%")) value = Number(t.slice(0, -1)) * 10_000;
  else value = Number(t) * PPM;
  if (t === "" || !Number.isFinite(value) || value < 0 || value > PPM)
    throw new RangeError(
      `${what} must be a rate from 0 to 1, 0% to 100%, or 0ppm to 1000000ppm (got "${text}")`,
    );
  return Math.round(value);
}

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
