/**
 * The session layer's datagrams (protocol v3), byte by byte in docs/PROTOCOL.md §14. Three kinds, told apart by
 * the first byte, which is never the first byte of an older protocol's datagram: protocol v1 began with 'C'
 * (0x43), and protocol v2 (the same sessions carrying the older, larger engine datagrams) used 0x01 … 0x03:
 *
 *   initiation  0x04 | sender index u32 | Noise IK message 1 (96 + 8-byte timestamp) | mac1 (16)   = 125 bytes
 *   response    0x05 | sender index u32 | receiver index u32 | Noise IK message 2 (48) | mac1 (16) = 73 bytes
 *   transport   0x06 | receiver index u32 | counter u32 | AEAD ciphertext (plaintext + 16)           = 25 + n bytes
 *
 * Indices are random per handshake, so a transport datagram names its session without naming its peer. mac1 is
 * keyed with the recipient's static public key: a node drops, for the price of one HMAC, any handshake message not
 * made by someone who knows whom they are talking to, before it spends a Diffie-Hellman on it (as WireGuard does).
 * Decoding never throws: it returns the datagram or the reason it is not one.
 */
import { constantTimeEqual, utf8 } from "../crypto/bytes.ts";
import { hmacSha256 } from "../crypto/hkdf.ts";
import { INITIATION_OVERHEAD, RESPONSE_OVERHEAD } from "./handshake.ts";
import { TAG_BYTES } from "./transport.ts";

export const SessionPacketType = { Initiation: 0x04, Response: 0x05, Transport: 0x06 } as const;
export type SessionPacketType = (typeof SessionPacketType)[keyof typeof SessionPacketType];

export const MAC1_BYTES = 16;
export const TIMESTAMP_BYTES = 8;
export const INITIATION_BYTES = 1 + 4 + INITIATION_OVERHEAD + TIMESTAMP_BYTES + MAC1_BYTES;
export const RESPONSE_BYTES = 1 + 4 + 4 + RESPONSE_OVERHEAD + MAC1_BYTES;
export const TRANSPORT_HEADER_BYTES = 1 + 4 + 4;
export const TRANSPORT_OVERHEAD = TRANSPORT_HEADER_BYTES + TAG_BYTES;

/** The first two bytes of every protocol-v1 datagram ("CN"). */
const V1_MAGIC = [0x43, 0x4e] as const;
/** Protocol v2's first bytes: its initiation, response and transport. */
const V2_TYPES = new Set([0x01, 0x02, 0x03]);
const MAC1_LABEL = utf8("chatnode session v3 mac1");

export type SessionPacket =
  | { type: typeof SessionPacketType.Initiation; sender: number; noise: Uint8Array }
  | { type: typeof SessionPacketType.Response; sender: number; receiver: number; noise: Uint8Array }
  | {
      type: typeof SessionPacketType.Transport;
      receiver: number;
      counter: number;
      header: Uint8Array;
      sealed: Uint8Array;
    };

export type InitiationPacket = Extract<SessionPacket, { type: typeof SessionPacketType.Initiation }>;
export type ResponsePacket = Extract<SessionPacket, { type: typeof SessionPacketType.Response }>;
export type TransportPacket = Extract<SessionPacket, { type: typeof SessionPacketType.Transport }>;

/** Why a datagram is not a session packet; `protocol-v1` and `-v2`: a peer still speaking an older format. */
export type SessionDecodeError =
  | "too-short"
  | "bad-length"
  | "unknown-type"
  | "protocol-v1"
  | "protocol-v2"
  | "bad-mac1";

export type SessionDecoded = { ok: true; packet: SessionPacket } | { ok: false; reason: SessionDecodeError };

export function encodeInitiation(sender: number, noise: Uint8Array, recipientStatic: Uint8Array): Uint8Array {
  return withMac1(header(SessionPacketType.Initiation, [sender]), noise, recipientStatic);
}

export function encodeResponse(
  sender: number,
  receiver: number,
  noise: Uint8Array,
  recipientStatic: Uint8Array,
): Uint8Array {
  return withMac1(header(SessionPacketType.Response, [sender, receiver]), noise, recipientStatic);
}

/** The transport header, which is also the AEAD's additional data: index and counter cannot be swapped. */
export function transportHeader(receiver: number, counter: number): Uint8Array {
  return header(SessionPacketType.Transport, [receiver, counter]);
}

export function encodeTransport(headerBytes: Uint8Array, sealed: Uint8Array): Uint8Array {
  const out = new Uint8Array(headerBytes.length + sealed.length);
  out.set(headerBytes);
  out.set(sealed, headerBytes.length);
  return out;
}

/**
 * Parses a datagram; handshake messages must carry a mac1 made with `localStatic` (this node's static public key).
 */
export function decodeSessionPacket(bytes: Uint8Array, localStatic: Uint8Array): SessionDecoded {
  if (bytes.length < 1) return { ok: false, reason: "too-short" };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (bytes[0]) {
    case SessionPacketType.Initiation: {
      if (bytes.length !== INITIATION_BYTES) return { ok: false, reason: "bad-length" };
      if (!mac1Valid(bytes, localStatic)) return { ok: false, reason: "bad-mac1" };
      return {
        ok: true,
        packet: {
          type: SessionPacketType.Initiation,
          sender: view.getUint32(1),
          noise: bytes.subarray(5, bytes.length - MAC1_BYTES),
        },
      };
    }
    case SessionPacketType.Response: {
      if (bytes.length !== RESPONSE_BYTES) return { ok: false, reason: "bad-length" };
      if (!mac1Valid(bytes, localStatic)) return { ok: false, reason: "bad-mac1" };
      return {
        ok: true,
        packet: {
          type: SessionPacketType.Response,
          sender: view.getUint32(1),
          receiver: view.getUint32(5),
          noise: bytes.subarray(9, bytes.length - MAC1_BYTES),
        },
      };
    }
    case SessionPacketType.Transport: {
      if (bytes.length < TRANSPORT_OVERHEAD) return { ok: false, reason: "too-short" };
      return {
        ok: true,
        packet: {
          type: SessionPacketType.Transport,
          receiver: view.getUint32(1),
          counter: view.getUint32(5),
          header: bytes.subarray(0, TRANSPORT_HEADER_BYTES),
          sealed: bytes.subarray(TRANSPORT_HEADER_BYTES),
        },
      };
    }
    default:
      if (bytes.length >= 2 && bytes[0] === V1_MAGIC[0] && bytes[1] === V1_MAGIC[1])
        return { ok: false, reason: "protocol-v1" };
      if (V2_TYPES.has(bytes[0] as number)) return { ok: false, reason: "protocol-v2" };
      return { ok: false, reason: "unknown-type" };
  }
}

function header(type: SessionPacketType, words: readonly number[]): Uint8Array {
  const out = new Uint8Array(1 + 4 * words.length);
  const view = new DataView(out.buffer);
  out[0] = type;
  words.forEach((w, i) => {
    view.setUint32(1 + 4 * i, w);
  });
  return out;
}

function withMac1(head: Uint8Array, noise: Uint8Array, recipientStatic: Uint8Array): Uint8Array {
  const out = new Uint8Array(head.length + noise.length + MAC1_BYTES);
  out.set(head);
  out.set(noise, head.length);
  out.set(mac1(out.subarray(0, out.length - MAC1_BYTES), recipientStatic), out.length - MAC1_BYTES);
  return out;
}

function mac1(body: Uint8Array, recipientStatic: Uint8Array): Uint8Array {
  return hmacSha256(recipientStatic, MAC1_LABEL, body).subarray(0, MAC1_BYTES);
}

function mac1Valid(bytes: Uint8Array, localStatic: Uint8Array): boolean {
  const body = bytes.subarray(0, bytes.length - MAC1_BYTES);
  return constantTimeEqual(mac1(body, localStatic), bytes.subarray(bytes.length - MAC1_BYTES));
}

export function writeTimestamp(ms: number): Uint8Array {
  const out = new Uint8Array(TIMESTAMP_BYTES);
  new DataView(out.buffer).setBigUint64(0, BigInt(Math.floor(ms)));
  return out;
}

/** The initiation payload's timestamp (ms, u64); -1 (older than anything) for a payload of the wrong size. */
export function readTimestamp(payload: Uint8Array): number {
  if (payload.length !== TIMESTAMP_BYTES) return -1;
  return Number(new DataView(payload.buffer, payload.byteOffset, TIMESTAMP_BYTES).getBigUint64(0));
}
