import { createHash } from "node:crypto";

/**
 * The safety fingerprint people compare out of band: SHA-256 over the Ed25519 public key, as 16 groups of 4 hex
 * digits. The short form (first 4 groups) is the engine's PeerId, so what users read in `chatnode users` is the id
 * they see in logs. The X25519 key is covered too, indirectly: every record carries a signature by the Ed25519 key
 * over both public keys (see record.ts), so a matching fingerprint vouches for both.
 */

const SHORT_GROUPS = 4;

export function fingerprintHex(ed25519PublicKey: Uint8Array): string {
  return createHash("sha256").update(ed25519PublicKey).digest("hex");
}

export function formatFingerprint(hex: string, groups = Number.POSITIVE_INFINITY): string {
  const parts = hex.match(/.{1,4}/g) ?? [];
  return parts.slice(0, groups).join(" ");
}

/** "ab12 cd34 ... 7890": all 64 hex digits. */
export function fingerprint(ed25519PublicKey: Uint8Array): string {
  return formatFingerprint(fingerprintHex(ed25519PublicKey));
}

/** "ab12 cd34 ef56 7890": the first 4 groups, 64 bits, equal to the key id. */
export function shortFingerprint(ed25519PublicKey: Uint8Array): string {
  return formatFingerprint(fingerprintHex(ed25519PublicKey), SHORT_GROUPS);
}

/** Short form of an already formatted fingerprint. */
export function shortenFingerprint(formatted: string): string {
  return formatted.split(" ").slice(0, SHORT_GROUPS).join(" ");
}
