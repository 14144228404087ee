import { createHmac } from "node:crypto";
import { concatBytes, toBytes } from "./bytes.ts";

/**
 * HKDF-SHA256 (RFC 5869) from HMAC, split into Extract and Expand because HPKE (RFC 9180) calls them separately
 * with its own labels; node:crypto's hkdfSync only offers the two fused.
 */

export const SHA256_BYTES = 32;

export function hmacSha256(key: Uint8Array, ...data: readonly Uint8Array[]): Uint8Array {
  const mac = createHmac("sha256", key);
  for (const part of data) mac.update(part);
  return toBytes(mac.digest());
}

/** PRK = HMAC-Hash(salt, IKM); an empty salt means HashLen zero bytes, which HMAC pads to the same key. */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmacSha256(salt, ikm);
}

/** OKM = T(1) | T(2) | ... truncated to `length`, T(i) = HMAC-Hash(PRK, T(i-1) | info | i). */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * SHA256_BYTES) {
    throw new RangeError("HKDF-SHA256 output is 0..8160 bytes");
  }
  const blocks: Uint8Array[] = [];
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 1; blocks.length * SHA256_BYTES < length; i++) {
    previous = hmacSha256(prk, previous, info, Uint8Array.of(i));
    blocks.push(previous);
  }
  return concatBytes(...blocks).slice(0, length);
}

export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return hkdfExpand(hkdfExtract(salt, ikm), info, length);
}
