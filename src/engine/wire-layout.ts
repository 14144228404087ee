/**
 * The engine format's constants, flags and the message part's codec (docs/PROTOCOL.md §2–§7), shared by the DATA,
 * ACK and HELLO codec (wire.ts) and the BATCH codec (wire-batch.ts), so that neither imports the other's values.
 */
import type { Writer } from "./byte-io.ts";
import type { MsgId } from "./types.ts";
import {
  KEY_ID_BYTES,
  MAX_BATCH_LEAVES,
  MAX_DATAGRAM_BYTES,
  MSG_ID_BYTES,
  SIGNATURE_BYTES,
} from "./types.ts";

export const WIRE_VERSION = 4;

export const PacketType = { Data: 1, Ack: 2, Hello: 3, Batch: 4 } as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/** The type byte: all an engine datagram has for a header, since its session says who sent it. */
export const HEADER_BYTES = 1;
/** DATA bytes before the payload: type, epoch, seq, floor, flags, fragIndex, fragCount, msgId, length. */
export const DATA_FIXED_BYTES = HEADER_BYTES + 4 + 4 + 4 + 1 + 1 + 1 + MSG_ID_BYTES + 2;
/** A SHA-256 in an audit path. */
export const PATH_HASH_BYTES = 32;
/** The longest audit path: a batch of MAX_BATCH_LEAVES (16) messages is a tree 4 levels deep. */
export const MAX_PATH_HASHES = Math.ceil(Math.log2(MAX_BATCH_LEAVES));
/** The batch signature after the payload: leaf index, batch size, the path, the Ed25519 signature. */
export const DATA_PROOF_MAX_BYTES = 1 + 1 + MAX_PATH_HASHES * PATH_HASH_BYTES + SIGNATURE_BYTES;
/**
 * The most an engine datagram may be: what fits MAX_DATAGRAM_BYTES once its session seals it (25 bytes,
 * src/session/wire.ts TRANSPORT_OVERHEAD; a test keeps the two in step).
 */
export const MAX_ENGINE_DATAGRAM_BYTES = MAX_DATAGRAM_BYTES - 25;
/** The largest fragment payload that keeps a DATA datagram within MAX_ENGINE_DATAGRAM_BYTES, whatever its batch. */
export const MAX_FRAGMENT_PAYLOAD = MAX_ENGINE_DATAGRAM_BYTES - DATA_FIXED_BYTES - DATA_PROOF_MAX_BYTES;
/** Where the message part of a DATA datagram starts (flags); before it: type, epoch, seq, floor. */
export const DATA_MESSAGE_OFFSET = HEADER_BYTES + 4 + 4 + 4;
/** What a signed message part starts with: the protocol version, then its author's key id. */
export const SIGNED_PREFIX_BYTES = 1 + KEY_ID_BYTES;
export const MAX_FRAGMENTS = 255;
export const MAX_ACK_RANGES = 32;
export const MAX_ACK_REJECTS = 16;
export const ACK_MIN_BYTES = HEADER_BYTES + 4 + 4 + 1 + 1;
export const HELLO_BYTES = HEADER_BYTES + 4 + 4 + 8 + 1 + 8;

/** Private: the payload is an HPKE ciphertext. Resent: queued to this recipient before (a give-up, a restart). */
export const DataFlags = { Private: 1, Resent: 2 } as const;

/** A message part (flags … payload): what a DATA and each frame of a BATCH carry, and what the author signs. */
export function writeMessagePart(w: Writer, f: DataMessageFields): void {
  w.u8(f.flags);
  w.u8(f.fragIndex);
  w.u8(f.fragCount);
  w.hex(f.msgId);
  w.u16(f.payload.length);
  w.raw(f.payload);
}

/** What a DATA datagram says: what its sender encodes (encodeData) and what decode returns. */
export interface DataFields {
  /** The sender's epoch: changes only when the sender lost its state; older epochs are replays. */
  epoch: number;
  seq: number;
  /** Every seq below floor is resolved by the sender (acknowledged or given up): the receiver need not wait. */
  floor: number;
  flags: number;
  fragIndex: number;
  fragCount: number;
  /** Its first 48 bits are the author's wall-clock ms when the message was written (msg-id.ts). */
  msgId: MsgId;
  payload: Uint8Array;
}

/** The fields of a DATA datagram its author signs: the same for every recipient and every try. */
export type DataMessageFields = Pick<DataFields, "flags" | "fragIndex" | "fragCount" | "msgId" | "payload">;

export type DecodeError =
  | "too-short"
  | "too-long"
  | "unknown-type"
  | "bad-length"
  | "bad-fragment"
  | "too-many-ranges";
