import { timingSafeEqual } from "node:crypto";

/** Byte helpers shared by the crypto modules: concatenation, UTF-8, strict base64 and constant-time comparison. */

const encoder = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Big-endian unsigned integer of `length` bytes (RFC 9180's I2OSP). */
export function i2osp(value: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let rest = value;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = rest & 0xff;
    rest = Math.floor(rest / 256);
  }
  return out;
}

/**
 * Constant-time equality for secrets (MAC tags, password checks). Lengths are public, so comparing them first leaks
 * nothing an attacker does not already know.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Plain equality for public values (public keys): no need to hide timing. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A fresh Uint8Array view that does not share Buffer's pooled memory (so callers may keep or wipe it). */
export function toBytes(buffer: Uint8Array): Uint8Array {
  return new Uint8Array(buffer);
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict base64: Buffer.from(x, "base64") silently skips junk, which would let a damaged file decode to the wrong
 * bytes instead of failing. Returns undefined unless `text` is canonical base64 (of exactly `length` bytes if given).
 */
export function fromBase64(text: unknown, length?: number): Uint8Array | undefined {
  if (typeof text !== "string" || !BASE64.test(text)) return undefined;
  const bytes = toBytes(Buffer.from(text, "base64"));
  if (length !== undefined && bytes.length !== length) return undefined;
  if (toBase64(bytes) !== text) return undefined;
  return bytes;
}
