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
/** The most messages one batch signature covers (docs/PROTOCOL.md §6.1): an audit path is at most 4 hashes. */
export const MAX_BATCH_LEAVES = 16;
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

/** "00" .. "ff": hex conversion runs on every datagram (key ids, msgIds) and every saved receive window. */
const BYTE_TO_HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
/** Character code → nibble value, -1 for a character that is not a hex digit. */
const HEX_TO_NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_TO_NIBBLE["0123456789abcdef".charCodeAt(i)] = i;
  HEX_TO_NIBBLE["0123456789ABCDEF".charCodeAt(i)] = i;
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_HEX[bytes[i] as number];
  return out;
}

/** Lower- or upper-case hex to bytes; a pair that is not hex becomes 0, as parseInt's NaN did. */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >>> 1);
  for (let i = 0; i < out.length; i++) {
    const hi = HEX_TO_NIBBLE[hex.charCodeAt(i * 2)] ?? -1;
    const lo = HEX_TO_NIBBLE[hex.charCodeAt(i * 2 + 1)] ?? -1;
    out[i] = hi < 0 || lo < 0 ? legacyPair(hex.slice(i * 2, i * 2 + 2)) : (hi << 4) | lo;
  }
  return out;
}

/** What Number.parseInt(pair, 16) stored for a pair that is not two hex digits ("0x" prefixes, "f-" and the like). */
function legacyPair(pair: string): number {
  return Number.parseInt(pair, 16) & 0xff;
}
