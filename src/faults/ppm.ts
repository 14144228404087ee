/**
 * The unit of every fault probability: integer parts per million. A float rate such as 0.3 compares differently
 * depending on how it was typed and rounded; an integer drawn against an integer replays exactly on every platform
 * (TigerBeetle's VOPR does the same).
 */
import type { Rng } from "../engine/ports.ts";

export const PPM = 1_000_000;

/** An integer in [0, n) for n ≤ 2^32, by multiply-shift (its bias is below 2^-32 · n, nothing at these sizes). */
export function below(rng: Rng, n: number): number {
  return Math.floor((rng.nextU32() / 2 ** 32) * n);
}

/**
 * True with probability ppm / 1,000,000. Draws exactly once whatever the rate, so that changing one rate does not
 * shift every later decision of a seeded run.
 */
export function chance(rng: Rng, ppm: number): boolean {
  return below(rng, PPM) < ppm;
}

/** "30%", "0.3", "300000ppm" → parts per million. Throws a RangeError a user can read. */
export function parseRatePpm(text: string, what = "rate"): number {
  const t = text.trim().toLowerCase();
  const [body, scale] = t.endsWith("ppm")
    ? [t.slice(0, -3), 1]
    : t.endsWith("%")
      ? [t.slice(0, -1), 10_000]
      : [t, PPM];
  // Number("") is 0: a bare "%" or "ppm" must not pass for a rate of nothing.
  const value = body.trim() === "" ? Number.NaN : Number(body) * scale;
  if (!Number.isFinite(value) || value < 0 || value > PPM)
    throw new RangeError(
      `${what} must be a rate from 0 to 1, 0% to 100%, or 0ppm to 1000000ppm (got "${text}")`,
    );
  return Math.round(value);
}

/** 300000 → "30%", 1500 → "0.2%" (one decimal): for people reading a status line. */
export function formatPercent(ppm: number): string {
  return `${Math.round(ppm / 1000) / 10}%`;
}

/** The same rate as a fraction of 1, for outputs whose readers were promised fractions. */
export function fractionOf(ppm: number): number {
  return ppm / PPM;
}

/** A fraction of 1 given in code (a benchmark's loss levels) as parts per million. */
export function ppmOf(fraction: number): number {
  return Math.round(fraction * PPM);
}
