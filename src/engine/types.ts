/** A peer is identified by its key, never by its address: the first 8 bytes of SHA-256 over its Ed25519 public key, as 16 hex digits. */
export type PeerId = string & { readonly __brand: "PeerId" };
/** A chat message's id: 16 random bytes as 32 hex digits, chosen by its author. */
export type MsgId = string & { readonly __brand: "MsgId" };
/** Milliseconds on the clock the runtime (or the simulator) passes in as `now`. */
export type Millis = number;
/** A transport address, opaque to the engine: "127.0.0.1:12001" or "[::1]:12001". */
export type Address = string;

export type MessageKind = "broadcast" | "private";

export const KEY_ID_BYTES = 8;
export const MSG_ID_BYTES = 16;
export const SIGNATURE_BYTES = 64;
export const MAC_BYTES = 16;
/** No datagram we send is larger: it fits the IPv6 minimum MTU (1280) with room for IP and UDP headers. */
export const MAX_DATAGRAM_BYTES = 1200;
/** The largest chat text, in UTF-8 bytes. */
export const MAX_TEXT_BYTES = 64 * 1024;

const HEX = /^[0-9a-f]+$/;

export function isPeerId(value: string): value is PeerId {
  return value.length === KEY_ID_BYTES * 2 && HEX.test(value);
}

export function isMsgId(value: string): value is MsgId {
  return value.length === MSG_ID_BYTES * 2 && HEX.test(value);
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
