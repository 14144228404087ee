/**
 * The ChatNode wire format, version 3 (docs/PROTOCOL.md describes it byte by byte).
 * Every datagram starts with a 20-byte header: magic "CN", version, type, sender key id, recipient key id.
 * Every datagram carries a MAC with the pairwise, per-direction key over every byte before it. DATA also carries
 * its author's batch signature over the message part alone (author, flags, fragment, msgId, sentAt, payload):
 * the message's audit path in the Merkle tree of up to 16 messages signed together, then the Ed25519 signature
 * over that tree's root. A broadcast to N peers is one message in one batch, and a burst of messages is one
 * signature, not one each. Decoding never throws: it returns a value or a reason code.
 */
import { Reader, Writer } from "./byte-io.ts";
import { auditPathLength } from "./merkle-shape.ts";
import type { BatchProof } from "./ports.ts";
import {
  KEY_ID_BYTES,
  MAC_BYTES,
  MAX_BATCH_LEAVES,
  MAX_DATAGRAM_BYTES,
  MSG_ID_BYTES,
  type MsgId,
  type PeerId,
  SIGNATURE_BYTES,
} from "./types.ts";

export { auditPathLength, merkleSplit } from "./merkle-shape.ts";

export const MAGIC_0 = 0x43; // 'C'
export const MAGIC_1 = 0x4e; // 'N'
export const WIRE_VERSION = 3;

export const PacketType = { Data: 1, Ack: 2, Hello: 3 } as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

export const HEADER_BYTES = 4 + 2 * KEY_ID_BYTES;
/** DATA fields after the common header, before the payload. */
export const DATA_FIXED_BYTES = HEADER_BYTES + 4 + 4 + 4 + 1 + 1 + 1 + MSG_ID_BYTES + 8 + 2;
/** A SHA-256 in an audit path. */
export const PATH_HASH_BYTES = 32;
/** The longest audit path: a batch of MAX_BATCH_LEAVES (16) messages is a tree 4 levels deep. */
export const MAX_PATH_HASHES = Math.ceil(Math.log2(MAX_BATCH_LEAVES));
/** The batch signature after the MAC: leaf index, batch size, the path, the Ed25519 signature. */
export const DATA_PROOF_MAX_BYTES = 1 + 1 + MAX_PATH_HASHES * PATH_HASH_BYTES + SIGNATURE_BYTES;
/** The largest fragment payload that keeps a DATA datagram within MAX_DATAGRAM_BYTES, whatever its batch. */
export const MAX_FRAGMENT_PAYLOAD = MAX_DATAGRAM_BYTES - DATA_FIXED_BYTES - MAC_BYTES - DATA_PROOF_MAX_BYTES;
/** Where the message part of a DATA datagram starts (flags); before it: header, epoch, seq, floor. */
const DATA_MESSAGE_OFFSET = HEADER_BYTES + 4 + 4 + 4;
/** The header bytes the signature covers: magic, version, type and sender (the author), not the recipient. */
const SIGNED_HEADER_BYTES = 4 + KEY_ID_BYTES;
export const MAX_FRAGMENTS = 255;
export const MAX_ACK_RANGES = 32;
export const MAX_ACK_REJECTS = 16;
const HELLO_BYTES = HEADER_BYTES + 4 + 4 + 8 + 1 + 8 + MAC_BYTES;

/** Private: the payload is an HPKE ciphertext. Resent: queued to this recipient before (a give-up, a restart). */
export const DataFlags = { Private: 1, Resent: 2 } as const;
/** ReplyWanted: the sender has not heard from us (a probe). Leaving: the sender is shutting down cleanly. */
export const HelloFlags = { ReplyWanted: 1, Leaving: 2 } as const;

/** Why a received message was refused after it was authenticated; the sender is told through the ACK. */
export const RejectCode = { DecryptFailed: 1, Malformed: 2 } as const;
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode];

export interface Header {
  type: PacketType;
  sender: PeerId;
  recipient: PeerId;
}

/** What a DATA datagram says: what its sender encodes (encodeData) and, with its authentication, what decode returns. */
export interface DataFields {
  sender: PeerId;
  recipient: PeerId;
  /** The sender's epoch: changes only when the sender lost its state; older epochs are replays. */
  epoch: number;
  seq: number;
  /** Every seq below floor is resolved by the sender (acknowledged or given up): the receiver need not wait. */
  floor: number;
  flags: number;
  fragIndex: number;
  fragCount: number;
  msgId: MsgId;
  /** The author's wall-clock ms when the message was written. */
  sentAt: number;
  payload: Uint8Array;
}

/** A decoded DATA: its fields, and what checking its MAC and batch signature needs. */
export interface DataPacket extends Header, DataFields {
  type: typeof PacketType.Data;
  /** The bytes the MAC covers (everything before it). */
  authed: Uint8Array;
  mac: Uint8Array;
  /** The bytes the batch signature covers: the header without the recipient, then flags … payload (a copy). */
  signed: Uint8Array;
  proof: BatchProof;
}

export interface AckRange {
  /** First seq of a run received above the cumulative point. */
  start: number;
  /** How many consecutive seqs from start. */
  length: number;
}

export interface AckReject {
  /** The first seq of the rejected message. */
  seq: number;
  code: RejectCode;
}

/** What an ACK says: what its sender encodes (encodeAck) and, with its MAC, what decode returns. */
export interface AckFields {
  sender: PeerId;
  recipient: PeerId;
  /** The epoch of the acknowledged stream (the data sender's). */
  epoch: number;
  /** Every seq below `next` is resolved at the receiver. */
  next: number;
  ranges: AckRange[];
  rejects: AckReject[];
}

export interface AckPacket extends Header, AckFields {
  type: typeof PacketType.Ack;
  authed: Uint8Array;
  mac: Uint8Array;
}

/** What a HELLO says: what its sender encodes (encodeHello) and, with its MAC, what decode returns. */
export interface HelloFields {
  sender: PeerId;
  recipient: PeerId;
  epoch: number;
  floor: number;
  /** The sender's clock, ms: a HELLO not newer than the last one from the same sender is a replay. */
  timestamp: number;
  flags: number;
  /** The timestamp of the HELLO this one answers, 0 if none: gives the asker an RTT sample. */
  echo: number;
}

export interface HelloPacket extends Header, HelloFields {
  type: typeof PacketType.Hello;
  authed: Uint8Array;
  mac: Uint8Array;
}

export type Packet = DataPacket | AckPacket | HelloPacket;

export type DecodeError =
  | "too-short"
  | "too-long"
  | "bad-magic"
  | "unknown-version"
  | "unknown-type"
  | "bad-length"
  | "bad-fragment"
  | "too-many-ranges";

export type DecodeResult = { ok: true; packet: Packet } | { ok: false; reason: DecodeError };

function fail(reason: DecodeError): DecodeResult {
  return { ok: false, reason };
}

function writeHeader(w: Writer, type: PacketType, sender: PeerId, recipient: PeerId): void {
  w.u8(MAGIC_0);
  w.u8(MAGIC_1);
  w.u8(WIRE_VERSION);
  w.u8(type);
  w.hex(sender);
  w.hex(recipient);
}

/** The fields of a DATA datagram its author signs: the same for every recipient and every try. */
export type DataMessageFields = Pick<
  DataFields,
  "sender" | "flags" | "fragIndex" | "fragCount" | "msgId" | "sentAt" | "payload"
>;

function writeMessagePart(w: Writer, f: DataMessageFields): void {
  w.u8(f.flags);
  w.u8(f.fragIndex);
  w.u8(f.fragCount);
  w.hex(f.msgId);
  w.u64(f.sentAt);
  w.u16(f.payload.length);
  w.raw(f.payload);
}

/** The message a DATA's batch signature covers: magic, version, type, author, then flags … payload. */
export function dataSignedBytes(f: DataMessageFields): Uint8Array {
  const w = new Writer(SIGNED_HEADER_BYTES + DATA_FIXED_BYTES - DATA_MESSAGE_OFFSET + f.payload.length);
  w.u8(MAGIC_0);
  w.u8(MAGIC_1);
  w.u8(WIRE_VERSION);
  w.u8(PacketType.Data);
  w.hex(f.sender);
  writeMessagePart(w, f);
  return w.bytes;
}

/**
 * A whole DATA datagram: the fields, the MAC over them (`mac`, keyed sender → recipient), then the author's batch
 * signature `proof` for dataSignedBytes(f).
 */
export function encodeData(
  f: DataFields,
  proof: BatchProof,
  mac: (authed: Uint8Array) => Uint8Array,
): Uint8Array {
  const proofBytes = 2 + proof.path.length * PATH_HASH_BYTES + SIGNATURE_BYTES;
  const w = new Writer(DATA_FIXED_BYTES + f.payload.length + MAC_BYTES + proofBytes);
  writeHeader(w, PacketType.Data, f.sender, f.recipient);
  w.u32(f.epoch);
  w.u32(f.seq);
  w.u32(f.floor);
  writeMessagePart(w, f);
  w.raw(mac(w.bytes.subarray(0, w.offset)));
  w.u8(proof.index);
  w.u8(proof.size);
  for (const hash of proof.path) w.raw(hash);
  w.raw(proof.signature);
  return w.bytes;
}

export function encodeAck(f: AckFields, mac: (bytes: Uint8Array) => Uint8Array): Uint8Array {
  const ranges = f.ranges.slice(0, MAX_ACK_RANGES);
  const rejects = f.rejects.slice(0, MAX_ACK_REJECTS);
  const size = HEADER_BYTES + 4 + 4 + 1 + ranges.length * 6 + 1 + rejects.length * 5 + MAC_BYTES;
  const w = new Writer(size);
  writeHeader(w, PacketType.Ack, f.sender, f.recipient);
  w.u32(f.epoch);
  w.u32(f.next);
  w.u8(ranges.length);
  for (const r of ranges) {
    w.u32(r.start);
    w.u16(r.length);
  }
  w.u8(rejects.length);
  for (const r of rejects) {
    w.u32(r.seq);
    w.u8(r.code);
  }
  w.raw(mac(w.bytes.subarray(0, w.offset)));
  return w.bytes;
}

export function encodeHello(f: HelloFields, mac: (bytes: Uint8Array) => Uint8Array): Uint8Array {
  const w = new Writer(HELLO_BYTES);
  writeHeader(w, PacketType.Hello, f.sender, f.recipient);
  w.u32(f.epoch);
  w.u32(f.floor);
  w.u64(f.timestamp);
  w.u8(f.flags);
  w.u64(f.echo);
  w.raw(mac(w.bytes.subarray(0, w.offset)));
  return w.bytes;
}

/**
 * The packet type of a datagram that starts like ours, without decoding the rest; undefined otherwise. For
 * code that only routes or counts datagrams (fault injection, captures).
 */
export function packetTypeOf(bytes: Uint8Array): number | undefined {
  if (bytes.length < HEADER_BYTES || bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1) return undefined;
  return bytes[3];
}

/** Strictly decodes one datagram. Authentication is the caller's job: this only checks structure. */
export function decode(bytes: Uint8Array): DecodeResult {
  if (bytes.length < HEADER_BYTES) return fail("too-short");
  if (bytes.length > MAX_DATAGRAM_BYTES) return fail("too-long");
  const r = new Reader(bytes);
  if (r.u8() !== MAGIC_0 || r.u8() !== MAGIC_1) return fail("bad-magic");
  if (r.u8() !== WIRE_VERSION) return fail("unknown-version");
  const type = r.u8();
  const sender = r.hex(KEY_ID_BYTES) as PeerId;
  const recipient = r.hex(KEY_ID_BYTES) as PeerId;
  switch (type) {
    case PacketType.Data:
      return decodeData(r, sender, recipient);
    case PacketType.Ack:
      return decodeAck(r, sender, recipient);
    case PacketType.Hello:
      return decodeHello(r, sender, recipient);
    default:
      return fail("unknown-type");
  }
}

function decodeData(r: Reader, sender: PeerId, recipient: PeerId): DecodeResult {
  if (r.bytes.length < DATA_FIXED_BYTES + MAC_BYTES + 2 + SIGNATURE_BYTES) return fail("too-short");
  const epoch = r.u32();
  const seq = r.u32();
  const floor = r.u32();
  const flags = r.u8();
  const fragIndex = r.u8();
  const fragCount = r.u8();
  const msgId = r.hex(MSG_ID_BYTES) as MsgId;
  const sentAt = r.u64();
  const length = r.u16();
  if (length > MAX_FRAGMENT_PAYLOAD) return fail("bad-length");
  if (r.remaining() < length + MAC_BYTES + 2 + SIGNATURE_BYTES) return fail("bad-length");
  if ((flags & ~(DataFlags.Private | DataFlags.Resent)) !== 0) return fail("bad-length");
  if (fragCount === 0 || fragIndex >= fragCount) return fail("bad-fragment");
  if (sentAt > Number.MAX_SAFE_INTEGER) return fail("bad-length");
  const payload = r.raw(length);
  const authed = r.bytes.subarray(0, r.offset);
  const mac = r.raw(MAC_BYTES);
  const index = r.u8();
  const size = r.u8();
  const hashes = auditPathLength(index, size);
  if (hashes === undefined) return fail("bad-length");
  if (r.remaining() !== hashes * PATH_HASH_BYTES + SIGNATURE_BYTES) return fail("bad-length");
  const path: Uint8Array[] = [];
  for (let i = 0; i < hashes; i++) path.push(r.raw(PATH_HASH_BYTES));
  const signature = r.raw(SIGNATURE_BYTES);
  const signed = new Uint8Array(SIGNED_HEADER_BYTES + authed.length - DATA_MESSAGE_OFFSET);
  signed.set(authed.subarray(0, SIGNED_HEADER_BYTES));
  signed.set(authed.subarray(DATA_MESSAGE_OFFSET), SIGNED_HEADER_BYTES);
  return {
    ok: true,
    packet: {
      type: PacketType.Data,
      sender,
      recipient,
      epoch,
      seq,
      floor,
      flags,
      fragIndex,
      fragCount,
      msgId,
      sentAt,
      payload,
      authed,
      mac,
      signed,
      proof: { index, size, path, signature },
    },
  };
}

function decodeAck(r: Reader, sender: PeerId, recipient: PeerId): DecodeResult {
  if (r.remaining() < 4 + 4 + 1 + 1 + MAC_BYTES) return fail("too-short");
  const epoch = r.u32();
  const next = r.u32();
  const rangeCount = r.u8();
  if (rangeCount > MAX_ACK_RANGES) return fail("too-many-ranges");
  if (r.remaining() < rangeCount * 6 + 1 + MAC_BYTES) return fail("bad-length");
  const ranges: AckRange[] = [];
  for (let i = 0; i < rangeCount; i++) {
    const start = r.u32();
    const length = r.u16();
    if (length === 0) return fail("bad-length");
    ranges.push({ start, length });
  }
  const rejectCount = r.u8();
  if (rejectCount > MAX_ACK_REJECTS) return fail("too-many-ranges");
  if (r.remaining() !== rejectCount * 5 + MAC_BYTES) return fail("bad-length");
  const rejects: AckReject[] = [];
  for (let i = 0; i < rejectCount; i++) {
    const seq = r.u32();
    const code = r.u8();
    if (code !== RejectCode.DecryptFailed && code !== RejectCode.Malformed) return fail("bad-length");
    rejects.push({ seq, code });
  }
  const authed = r.bytes.subarray(0, r.offset);
  const mac = r.raw(MAC_BYTES);
  return {
    ok: true,
    packet: { type: PacketType.Ack, sender, recipient, epoch, next, ranges, rejects, authed, mac },
  };
}

function decodeHello(r: Reader, sender: PeerId, recipient: PeerId): DecodeResult {
  if (r.bytes.length !== HELLO_BYTES) return fail("bad-length");
  const epoch = r.u32();
  const floor = r.u32();
  const timestamp = r.u64();
  const flags = r.u8();
  const echo = r.u64();
  if ((flags & ~(HelloFlags.ReplyWanted | HelloFlags.Leaving)) !== 0) return fail("bad-length");
  if (timestamp > Number.MAX_SAFE_INTEGER || echo > Number.MAX_SAFE_INTEGER) return fail("bad-length");
  const authed = r.bytes.subarray(0, r.offset);
  const mac = r.raw(MAC_BYTES);
  return {
    ok: true,
    packet: { type: PacketType.Hello, sender, recipient, epoch, floor, timestamp, flags, echo, authed, mac },
  };
}
