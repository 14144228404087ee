/**
 * Sequence numbers are unsigned 32-bit and compared with serial-number arithmetic (RFC 1982), so a stream keeps
 * working across the wrap from 2^32 - 1 to 0.
 */
export const SEQ_MOD = 2 ** 32;

/** a - b as a signed distance in [-2^31, 2^31). */
export function seqDiff(a: number, b: number): number {
  const d = (a - b) % SEQ_MOD;
  const wrapped = d < 0 ? d + SEQ_MOD : d;
  return wrapped >= 2 ** 31 ? wrapped - SEQ_MOD : wrapped;
}

export function seqLess(a: number, b: number): boolean {
  return seqDiff(a, b) < 0;
}

export function seqAdd(a: number, n: number): number {
  return (((a + n) % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
}
