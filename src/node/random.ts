import { randomBytes } from "node:crypto";
import type { Rng } from "../engine/ports.ts";

/** The runtime's Rng: the operating system's CSPRNG, drawn in blocks to keep per-call cost low. */
export class CryptoRng implements Rng {
  private pool = randomBytes(4096);
  private offset = 0;

  private take(length: number): Uint8Array {
    if (length > this.pool.length) return randomBytes(length);
    if (this.offset + length > this.pool.length) {
      this.pool = randomBytes(4096);
      this.offset = 0;
    }
    const out = this.pool.subarray(this.offset, this.offset + length);
    this.offset += length;
    return Uint8Array.from(out);
  }

  nextU32(): number {
    const b = this.take(4);
    return (
      (((b[0] as number) << 24) | ((b[1] as number) << 16) | ((b[2] as number) << 8) | (b[3] as number)) >>> 0
    );
  }

  bytes(length: number): Uint8Array {
    return this.take(length);
  }
}
