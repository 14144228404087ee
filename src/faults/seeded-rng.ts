/**
 * The one seeded PRNG of the project: the simulator, the chaos proxy, the tests that replay a run. xoshiro128**
 * (Blackman and Vigna): 128 bits of state, period 2^128 − 1. Chosen over SFC32, which the chaos proxy used: as good
 * statistically, but SFC32 keeps its state in object fields, which V8 boxes above 2^31, and it ran 3 to 10 times
 * slower in a micro-benchmark here; this one keeps its state in a Uint32Array. Not cryptographic: it decides
 * faults and test traffic, never the keys or nonces of a real node.
 */
import type { Rng } from "../engine/ports.ts";
import { below, chance } from "./ppm.ts";

export class SeededRng implements Rng {
  private readonly s: Uint32Array;

  /**
   * Any safe integer, negative included; the same seed gives the same sequence everywhere. The low 32 bits feed
   * splitmix32; the high bits are mixed into the last word (mixing 0 gives 0, so a 32-bit seed's sequence does not
   * depend on how wide seeds may be). The first three words come from distinct splitmix inputs through a
   * bijection, so at most one is 0: never the all-zero state xoshiro cannot leave.
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, not ${seed}`);
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      return fmix32(x);
    };
    this.s = Uint32Array.of(next(), next(), next(), next() ^ fmix32(Math.floor(seed / 2 ** 32) >>> 0));
  }

  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1] as number, 5), 7), 9) >>> 0;
    const t = (s[1] as number) << 9;
    s[2] = (s[2] as number) ^ (s[0] as number);
    s[3] = (s[3] as number) ^ (s[1] as number);
    s[1] = (s[1] as number) ^ (s[2] as number);
    s[0] = (s[0] as number) ^ (s[3] as number);
    s[2] = (s[2] as number) ^ t;
    s[3] = rotl(s[3] as number, 11);
    return result;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return below(this, n);
  }

  /** True with probability ppm / 1,000,000 (src/faults/ppm.ts). */
  chance(ppm: number): boolean {
    return chance(this, ppm);
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.nextU32() & 0xff;
    return out;
  }

  /** An independent generator derived from this one. */
  fork(): SeededRng {
    return new SeededRng(this.nextU32());
  }
}

/** MurmurHash3's 32-bit finaliser: a bijection on 32 bits that maps 0 to 0. */
function fmix32(h: number): number {
  let z = h >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
