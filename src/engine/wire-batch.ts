/**
 * BATCH (type 4, docs/PROTOCOL.md §3.1): the frames of one whole batch signature, to one peer, on consecutive seqs,
 * in one datagram with the one signature over their Merkle root. Its frames' message parts are byte for byte a
 * DATA's (wire.ts), so each is the same signed leaf whichever datagram carries it.
 */
import { type Reader, Writer } from "./byte-io.ts";
import { MAX_BATCH_LEAVES, MSG_ID_BYTES, type MsgId, SIGNATURE_BYTES } from "./types.ts";
import {
  DataFlags,
  type DataMessageFields,
  type DecodeError,
  HEADER_BYTES,
  MAX_FRAGMENT_PAYLOAD,
  PacketType,
  writeMessagePart,
} from "./wire-layout.ts";

/** BATCH bytes besides its frames' message parts: type, epoch, floor, first seq, count, then the signature. */
export const BATCH_FIXED_BYTES = HEADER_BYTES + 4 + 4 + 4 + 1 + SIGNATURE_BYTES;
/** Where a BATCH's frame count is: after its type, epoch, floor and first seq. */
export const BATCH_COUNT_AT = HEADER_BYTES + 4 + 4 + 4;
/** A BATCH frame's bytes besides its payload: flags, fragIndex, fragCount, msgId, length (its message part's). */
export const BATCH_FRAME_FIXED_BYTES = 1 + 1 + 1 + MSG_ID_BYTES + 2;

/**
 * A BATCH: every frame of one batch signature (2 to 16), to one peer, on consecutive seqs from `seq`, in leaf order,
 * with the one signature over their root: the first transmission of what an author wrote in one go, so that small
 * messages share a datagram, a session seal and a signature (docs/PROTOCOL.md §3.1). A frame sent again goes alone,
 * as a DATA with its audit path.
 */
export interface BatchPacket {
  type: typeof PacketType.Batch;
  epoch: number;
  floor: number;
  seq: number;
  frames: BatchFrame[];
  signature: Uint8Array;
}

export type BatchFrame = DataMessageFields & { messagePart: Uint8Array };

/** The BATCH of `frames` (their fields: message parts in leaf order) from seq `seq` on, with their batch's signature. */
export function encodeBatch(
  stream: { epoch: number; floor: number; seq: number },
  frames: readonly DataMessageFields[],
  signature: Uint8Array,
): Uint8Array {
  const w = new Writer(batchBytes(frames.map((f) => f.payload.length)));
  w.u8(PacketType.Batch);
  w.u32(stream.epoch);
  w.u32(stream.floor);
  w.u32(stream.seq);
  w.u8(frames.length);
  for (const f of frames) writeMessagePart(w, f);
  w.raw(signature);
  return w.bytes;
}

/** How many bytes the BATCH of frames with these payload lengths takes. */
export function batchBytes(payloadLengths: readonly number[]): number {
  let size = BATCH_FIXED_BYTES;
  for (const length of payloadLengths) size += BATCH_FRAME_FIXED_BYTES + length;
  return size;
}

/** A BATCH after its type byte, or why it is not one (wire.ts's decode wraps the result). */
export function decodeBatch(r: Reader): BatchPacket | DecodeError {
  if (r.bytes.length < BATCH_FIXED_BYTES + 2 * BATCH_FRAME_FIXED_BYTES) return "too-short";
  const epoch = r.u32();
  const floor = r.u32();
  const seq = r.u32();
  const count = r.u8();
  if (count < 2 || count > MAX_BATCH_LEAVES) return "bad-length";
  const frames: BatchFrame[] = [];
  for (let i = 0; i < count; i++) {
    if (r.remaining() < BATCH_FRAME_FIXED_BYTES + SIGNATURE_BYTES) return "bad-length";
    const start = r.offset;
    const flags = r.u8();
    const fragIndex = r.u8();
    const fragCount = r.u8();
    const msgId = r.hex(MSG_ID_BYTES) as MsgId;
    const length = r.u16();
    if (length > MAX_FRAGMENT_PAYLOAD || r.remaining() < length + SIGNATURE_BYTES) return "bad-length";
    if ((flags & ~(DataFlags.Private | DataFlags.Resent)) !== 0) return "bad-length";
    if (fragCount === 0 || fragIndex >= fragCount) return "bad-fragment";
    const payload = r.raw(length);
    frames.push({
      flags,
      fragIndex,
      fragCount,
      msgId,
      payload,
      messagePart: r.bytes.subarray(start, r.offset),
    });
  }
  if (r.remaining() !== SIGNATURE_BYTES) return "bad-length";
  const signature = r.raw(SIGNATURE_BYTES);
  return { type: PacketType.Batch, epoch, floor, seq, frames, signature };
}
