import { MAC_BYTES } from "../engine/types.ts";
import { concatBytes, constantTimeEqual, utf8 } from "./bytes.ts";
import { hkdf, hmacSha256 } from "./hkdf.ts";
import type { X25519PrivateKey, X25519PublicKey } from "./x25519.ts";

/**
 * MAC keys for ACK and control packets, which are too small and too frequent to sign. Both ends compute the same
 * static-static X25519 secret; from it HKDF derives one key per direction, labelled with the sender's and the
 * recipient's Ed25519 keys in that order. Because A→B and B→A use different keys, a packet reflected back to its
 * sender fails, and because the labels are the identity keys, a key pair cannot be replayed under another identity.
 */

export const MAC_KEY_BYTES = 32;
export const MAC_SALT = utf8("chatnode v1");
export const MAC_INFO_PREFIX = utf8("chatnode v1 mac");

/** key(sender → recipient) = HKDF-SHA256(ikm, salt "chatnode v1", info "chatnode v1 mac" || sender || recipient). */
export function macKey(ikm: Uint8Array, senderEd25519: Uint8Array, recipientEd25519: Uint8Array): Uint8Array {
  return hkdf(ikm, MAC_SALT, concatBytes(MAC_INFO_PREFIX, senderEd25519, recipientEd25519), MAC_KEY_BYTES);
}

export interface DirectionalMacKeys {
  /** self → peer: what we tag with. */
  readonly send: Uint8Array;
  /** peer → self: what we check the peer's tags with. */
  readonly receive: Uint8Array;
}

export interface MacParty {
  readonly ed25519: Uint8Array;
}

/** Undefined if the DH fails (a low-order peer key): then no packet from or to that peer carries a valid MAC. */
export function deriveMacKeys(
  self: MacParty & { readonly x25519: X25519PrivateKey },
  peer: MacParty & { readonly x25519: X25519PublicKey },
): DirectionalMacKeys | undefined {
  const ikm = self.x25519.dh(peer.x25519);
  if (!ikm) return undefined;
  return { send: macKey(ikm, self.ed25519, peer.ed25519), receive: macKey(ikm, peer.ed25519, self.ed25519) };
}

/** HMAC-SHA256 truncated to 16 bytes (RFC 2104 section 5 allows truncation to at least half the output). */
export function macTag(key: Uint8Array, bytes: Uint8Array): Uint8Array {
  return hmacSha256(key, bytes).slice(0, MAC_BYTES);
}

/** Constant-time check, so that timing does not reveal how many leading bytes of a forged tag were right. */
export function verifyMacTag(key: Uint8Array, bytes: Uint8Array, tag: Uint8Array): boolean {
  if (tag.length !== MAC_BYTES) return false;
  return constantTimeEqual(macTag(key, bytes), tag);
}
