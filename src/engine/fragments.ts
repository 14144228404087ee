import { MAX_FRAGMENT_PAYLOAD, MAX_FRAGMENTS } from "./wire.ts";

/** Splits a message body into fragment payloads that each fit one datagram. An empty body is one empty fragment. */
export function splitIntoFragments(body: Uint8Array, chunkBytes = MAX_FRAGMENT_PAYLOAD): Uint8Array[] {
  const count = Math.max(1, Math.ceil(body.length / chunkBytes));
  if (count > MAX_FRAGMENTS) throw new RangeError(`body of ${body.length} bytes needs ${count} fragments`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(body.subarray(i * chunkBytes, (i + 1) * chunkBytes));
  return out;
}

/** Concatenates fragment payloads back into the body. */
export function joinFragments(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
