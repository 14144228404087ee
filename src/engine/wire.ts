/**
 * The engine's datagrams, protocol version 4 (docs/PROTOCOL.md describes them byte by byte). They travel only
 * inside a session (src/session/, §14), whose AEAD authenticates them and names the peer that sent them, so they
 * carry neither magic, version, key ids nor MACs: the first byte is the type. DATA also carries its author's batch
 * signature over the message part (author, flags, fragment, msgId, payload): the message's audit path in the
 * Merkle tree of up to 16 messages signed together, then the Ed25519 signature over that tree's root, so a message
 * stays provably its author's wherever it travels. A broadcast to N peers is one message in one batch, and a burst
 * of messages is one signature, not one each. Decoding never throws: it returns a value or a reason code.
 */
import { Reader, Writer } from "./byte-io.ts";
import { auditPathLength } from "./merkle-shape.ts";
import type { BatchProof } from "./ports.ts";
import { fromHex, MSG_ID_BYTES, type MsgId, type PeerId, SIGNATURE_BYTES } from "./types.ts";
import { type BatchPacket, decodeBatch } from "./wire-batch.ts";

export { auditPathLength, merkleSplit } from "./merkle-shape.ts";
export {
  BATCH_COUNT_AT,
  BATCH_FIXED_BYTES,
  BATCH_FRAME_FIXED_BYTES,
  type BatchFrame,
  type BatchPacket,
  batchBytes,
  encodeBatch,
} from "./wire-batch.ts";

export * from "./wire-layout.ts";

import {
  ACK_MIN_BYTES,
  DATA_FIXED_BYTES,
  DATA_MESSAGE_OFFSET,
  type DataFields,
  DataFlags,
  type DataMessageFields,
  type DecodeError,
  HEADER_BYTES,
  HELLO_BYTES,
  MAX_ACK_RANGES,
  MAX_ACK_REJECTS,
  MAX_ENGINE_DATAGRAM_BYTES,
  MAX_FRAGMENT_PAYLOAD,
  PATH_HASH_BYTES,
  PacketType,
  SIGNED_PREFIX_BYTES,
  WIRE_VERSION,
  writeMessagePart,
} from "./wire-layout.ts";

/** ReplyWanted: the sender has not heard from us (a probe). Leaving: the sender is shutting down cleanly. */
export const HelloFlags = { ReplyWanted: 1, Leaving: 2 } as const;

/** Why a received message was refused after it was authenticated; the sender is told through the ACK. */
export const RejectCode = { DecryptFailed: 1, Malformed: 2 } as const;
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode];

/** A decoded DATA: its fields, and what checking its batch signature needs. */
export interface DataPacket extends DataFields {
  type: typeof PacketType.Data;
  /** The datagram's message part (flags … payload), which dataSignedBytes turns into what the author signed. */
  messagePart: Uint8Array;
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

/** What an ACK says: what its sender encodes (encodeAck) and what decode returns. */
export interface AckFields {
  /** The epoch of the acknowledged stream (the data sender's). */
  epoch: number;
  /** Every seq below `next` is resolved at the receiver. */
  next: number;
  ranges: AckRange[];
  rejects: AckReject[];
}

export interface AckPacket extends AckFields {
  type: typeof PacketType.Ack;
}

/** What a HELLO says: what its sender encodes (encodeHello) and what decode returns. */
export interface HelloFields {
  epoch: number;
  floor: number;
  /** The sender's clock, ms: a HELLO not newer than the last one from the same sender is a replay. */
  timestamp: number;
  flags: number;
  /** The timestamp of the HELLO this one answers, 0 if none: gives the asker an RTT sample. */
  echo: number;
}

export interface HelloPacket extends HelloFields {
  type: typeof PacketType.Hello;
}

export type Packet = DataPacket | AckPacket | HelloPacket | BatchPacket;

export type DecodeResult = { ok: true; packet: Packet } | { ok: false; reason: DecodeError };

function fail(reason: DecodeError): DecodeResult {
  return { ok: false, reason };
}

/** The message part's size: flags, fragIndex, fragCount, msgId, length, payload. */
function messagePartBytes(payloadBytes: number): number {
  return DATA_FIXED_BYTES - DATA_MESSAGE_OFFSET + payloadBytes;
}

/**
 * What a DATA's batch signature covers: the protocol version and the author's key id, then the message part as it
 * is on the wire (flags … payload). Not the stream fields (epoch, seq, floor), which differ per recipient and per
 * try and which the session authenticates.
 */
export function dataSignedBytes(author: PeerId, f: DataMessageFields): Uint8Array {
  const w = new Writer(SIGNED_PREFIX_BYTES + messagePartBytes(f.payload.length));
  w.u8(WIRE_VERSION);
  w.hex(author);
  writeMessagePart(w, f);
  return w.bytes;
}

/** dataSignedBytes for a received DATA, from the message part its datagram carries. */
export function receivedSignedBytes(author: PeerId, messagePart: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNED_PREFIX_BYTES + messagePart.length);
  out[0] = WIRE_VERSION;
  out.set(fromHex(author), 1);
  out.set(messagePart, SIGNED_PREFIX_BYTES);
  return out;
}

/** A whole DATA datagram: the fields, then the author's batch signature `proof` for dataSignedBytes. */
export function encodeData(f: DataFields, proof: BatchProof): Uint8Array {
  const proofBytes = 2 + proof.path.length * PATH_HASH_BYTES + SIGNATURE_BYTES;
  const w = new Writer(DATA_FIXED_BYTES + f.payload.length + proofBytes);
  w.u8(PacketType.Data);
  w.u32(f.epoch);
  w.u32(f.seq);
  w.u32(f.floor);
  writeMessagePart(w, f);
  w.u8(proof.index);
  w.u8(proof.size);
  for (const hash of proof.path) w.raw(hash);
  w.raw(proof.signature);
  return w.bytes;
}

export function encodeAck(f: AckFields): Uint8Array {
  const ranges = f.ranges.slice(0, MAX_ACK_RANGES);
  const rejects = f.rejects.slice(0, MAX_ACK_REJECTS);
  const w = new Writer(ACK_MIN_BYTES + ranges.length * 6 + rejects.length * 5);
  w.u8(PacketType.Ack);
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
  return w.bytes;
}

export function encodeHello(f: HelloFields): Uint8Array {
  const w = new Writer(HELLO_BYTES);
  w.u8(PacketType.Hello);
  w.u32(f.epoch);
  w.u32(f.floor);
  w.u64(f.timestamp);
  w.u8(f.flags);
  w.u64(f.echo);
  return w.bytes;
}

/** The packet type of an engine datagram, without decoding the rest: for code that only routes or counts them. */
export function packetTypeOf(bytes: Uint8Array): number | undefined {
  return bytes[0];
}

/** Strictly decodes one engine datagram. Authentication is the session's: this only checks structure. */
export function decode(bytes: Uint8Array): DecodeResult {
  if (bytes.length < HEADER_BYTES) return fail("too-short");
  if (bytes.length > MAX_ENGINE_DATAGRAM_BYTES) return fail("too-long");
  const r = new Reader(bytes);
  switch (r.u8()) {
    case PacketType.Data:
      return decodeData(r);
    case PacketType.Ack:
      return decodeAck(r);
    case PacketType.Hello:
      return decodeHello(r);
    case PacketType.Batch: {
      const batch = decodeBatch(r);
      return typeof batch === "string" ? fail(batch) : { ok: true, packet: batch };
    }
    default:
      return fail("unknown-type");
  }
}

function decodeData(r: Reader): DecodeResult {
  if (r.bytes.length < DATA_FIXED_BYTES + 2 + SIGNATURE_BYTES) return fail("too-short");
  const epoch = r.u32();
  const seq = r.u32();
  const floor = r.u32();
  const flags = r.u8();
  const fragIndex = r.u8();
  const fragCount = r.u8();
  const msgId = r.hex(MSG_ID_BYTES) as MsgId;
  const length = r.u16();
  if (length > MAX_FRAGMENT_PAYLOAD) return fail("bad-length");
  if (r.remaining() < length + 2 + SIGNATURE_BYTES) return fail("bad-length");
  if ((flags & ~(DataFlags.Private | DataFlags.Resent)) !== 0) return fail("bad-length");
  if (fragCount === 0 || fragIndex >= fragCount) return fail("bad-fragment");
  const payload = r.raw(length);
  const messagePart = r.bytes.subarray(DATA_MESSAGE_OFFSET, r.offset);
  const index = r.u8();
  const size = r.u8();
  const hashes = auditPathLength(index, size);
  if (hashes === undefined) return fail("bad-length");
  if (r.remaining() !== hashes * PATH_HASH_BYTES + SIGNATURE_BYTES) return fail("bad-length");
  const path: Uint8Array[] = [];
  for (let i = 0; i < hashes; i++) path.push(r.raw(PATH_HASH_BYTES));
  const signature = r.raw(SIGNATURE_BYTES);
  return {
    ok: true,
    packet: {
      type: PacketType.Data,
      epoch,
      seq,
      floor,
      flags,
      fragIndex,
      fragCount,
      msgId,
      payload,
      messagePart,
      proof: { index, size, path, signature },
    },
  };
}

function decodeAck(r: Reader): DecodeResult {
  if (r.bytes.length < ACK_MIN_BYTES) return fail("too-short");
  const epoch = r.u32();
  const next = r.u32();
  const rangeCount = r.u8();
  if (rangeCount > MAX_ACK_RANGES) return fail("too-many-ranges");
  if (r.remaining() < rangeCount * 6 + 1) return fail("bad-length");
  const ranges: AckRange[] = [];
  for (let i = 0; i < rangeCount; i++) {
    const start = r.u32();
    const length = r.u16();
    if (length === 0) return fail("bad-length");
    ranges.push({ start, length });
  }
  const rejectCount = r.u8();
  if (rejectCount > MAX_ACK_REJECTS) return fail("too-many-ranges");
  if (r.remaining() !== rejectCount * 5) return fail("bad-length");
  const rejects: AckReject[] = [];
  for (let i = 0; i < rejectCount; i++) {
    const seq = r.u32();
    const code = r.u8();
    if (code !== RejectCode.DecryptFailed && code !== RejectCode.Malformed) return fail("bad-length");
    rejects.push({ seq, code });
  }
  return { ok: true, packet: { type: PacketType.Ack, epoch, next, ranges, rejects } };
}

function decodeHello(r: Reader): DecodeResult {
  if (r.bytes.length !== HELLO_BYTES) return fail("bad-length");
  const epoch = r.u32();
  const floor = r.u32();
  const timestamp = r.u64();
  const flags = r.u8();
  const echo = r.u64();
  if ((flags & ~(HelloFlags.ReplyWanted | HelloFlags.Leaving)) !== 0) return fail("bad-length");
  if (timestamp > Number.MAX_SAFE_INTEGER || echo > Number.MAX_SAFE_INTEGER) return fail("bad-length");
  return { ok: true, packet: { type: PacketType.Hello, epoch, floor, timestamp, flags, echo } };
}
