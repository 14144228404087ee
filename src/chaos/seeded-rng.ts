/**
 * A small seeded PRNG for the chaos proxy (and for tests that must replay a run): SFC32 (Chris Doty-Humphrey's
 * Small Fast Counting generator, 128 bits of state), its state filled from the seed by MurmurHash3's 32-bit
 * finaliser. Not cryptographic: it only decides which datagram gets dropped, delayed or mangled.
 */
import type { Rng } from "../engine/ports.ts";

export class Sfc32Rng implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Any safe integer seed; the same seed gives the same sequence on every platform. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, not ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(Math.abs(seed) / 2 ** 32) >>> 0;
    this.a = fmix32(lo ^ 0x9e3779b9);
    this.b = fmix32(hi ^ 0x85ebca6b);
    this.c = fmix32((lo + 0xc2b2ae35) >>> 0);
    this.d = 1;
    // Discard the first outputs: they still resemble the seed.
    for (let i = 0; i < 15; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      let v = this.nextU32();
      for (let j = i; j < Math.min(i + 4, length); j++) {
        out[j] = v & 0xff;
        v >>>= 8;
      }
    }
    return out;
  }
}

function fmix32(h: number): number {
  let x = h >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** An integer in [0, n) for n ≤ 2^32, without modulo bias worth mentioning at these sizes (multiply-shift). */
export function below(rng: Rng, n: number): number {
  return Math.floor((rng.nextU32() / 2 ** 32) * n);
}

/** True with probability perMillion / 1,000,000. Integer rates make a seeded run replay exactly. */
export function chance(rng: Rng, perMillion: number): boolean {
  if (perMillion <= 0) return false;
  if (perMillion >= 1_000_000) return true;
  return below(rng, 1_000_000) < perMillion;
}
