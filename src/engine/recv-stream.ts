/**
 * What one receiver knows of one sender's stream: which sequence numbers are resolved, the frames held until
 * their turn, whole messages waiting to be delivered in order, and recent rejections to report back.
 * Pure bookkeeping: authentication and decryption happen before a frame gets here.
 */

import { seqAdd, seqDiff, seqLess } from "./seq.ts";
import { fromHex, type MsgId, toHex } from "./types.ts";
import type { AckRange, AckReject } from "./wire.ts";
import { MAX_ACK_RANGES, MAX_ACK_REJECTS } from "./wire.ts";

/**
 * How far past the next expected seq a frame may be. Bounds the memory one sender can make us hold
 * (RECV_WINDOW frames of at most ~1.1 KB each); the sender never transmits beyond it.
 */
export const RECV_WINDOW = 256;

/** The payload of a restored frame whose message is complete: the message's body holds the contents. */
const NO_PAYLOAD = new Uint8Array(0);

export interface HeldFrame {
  seq: number;
  msgId: MsgId;
  flags: number;
  fragIndex: number;
  fragCount: number;
  sentAt: number;
  payload: Uint8Array;
}

/** A message whose fragments are all here, checked, waiting for its turn. `body` is null if it was rejected. */
export interface CompleteMessage {
  head: number;
  count: number;
  msgId: MsgId;
  flags: number;
  sentAt: number;
  body: Uint8Array | null;
}

export type AcceptResult = "accepted" | "duplicate" | "beyond-window";

export interface RecvSnapshot {
  epoch: number;
  next: number;
  floor: number;
  held: [number, string, number, number, number, number, string][];
  complete: [number, number, string, number, number, string | null][];
  rejects: [number, number][];
  /** Absent in snapshots written before it existed: those streams were restored from their own, so false. */
  checksLog?: boolean;
}

export class RecvStream {
  private readonly held = new Map<number, HeldFrame>();
  private readonly complete = new Map<number, CompleteMessage>();
  private rejects: AckReject[] = [];
  /**
   * Whether every message of this stream is checked against the durable delivery log. A stream that began with
   * no saved state, for a sender something was already delivered from (this node lost its state), cannot tell a
   * replayed old datagram from a new one by its seq, so it always asks the log, and so do the streams of the
   * sender's later epochs (receiver.ts, newEpoch). Otherwise only messages their sender marks as re-sent are checked
   * (receiver.ts, deliver).
   */
  checksLog = false;

  constructor(
    public epoch: number,
    /** Every seq before `next` is resolved: delivered, rejected, or given up by the sender. */
    public next: number,
    /** The highest floor the sender has told us: everything below it is resolved on its side. */
    public floor: number = next,
  ) {}

  accept(frame: HeldFrame): AcceptResult {
    const distance = seqDiff(frame.seq, this.next);
    if (distance < 0 || this.held.has(frame.seq)) return "duplicate";
    if (distance >= RECV_WINDOW) return "beyond-window";
    this.held.set(frame.seq, frame);
    return "accepted";
  }

  /** The frames of the message that `seq` belongs to, if all are here; "inconsistent" if they disagree. */
  gather(seq: number): HeldFrame[] | "inconsistent" | undefined {
    const frame = this.held.get(seq);
    if (!frame) return undefined;
    const head = seqAdd(seq, -frame.fragIndex);
    if (this.complete.has(head)) return undefined;
    const frames: HeldFrame[] = [];
    for (let i = 0; i < frame.fragCount; i++) {
      const f = this.held.get(seqAdd(head, i));
      if (!f) return undefined;
      if (
        f.msgId !== frame.msgId ||
        f.fragIndex !== i ||
        f.fragCount !== frame.fragCount ||
        f.flags !== frame.flags
      )
        return "inconsistent";
      frames.push(f);
    }
    return frames;
  }

  markComplete(message: CompleteMessage): void {
    this.complete.set(message.head, message);
  }

  /** Marks the message that `seq` belongs to as rejected: it is skipped in order and the sender is told. */
  tombstone(seq: number, code: AckReject["code"]): void {
    const frame = this.held.get(seq);
    if (!frame) return;
    const head = seqAdd(seq, -frame.fragIndex);
    this.complete.set(head, {
      head,
      count: frame.fragCount,
      msgId: frame.msgId,
      flags: frame.flags,
      sentAt: frame.sentAt,
      body: null,
    });
    this.reject(head, code);
  }

  /** Remembers a rejection so that every later ACK tells the sender, until newer ones push it out. */
  reject(head: number, code: AckReject["code"]): void {
    this.rejects.push({ seq: head, code });
    if (this.rejects.length > MAX_ACK_REJECTS) this.rejects.shift();
  }

  noteFloor(floor: number): void {
    if (seqLess(this.floor, floor)) this.floor = floor;
  }

  /** Moves `next` forward as far as it can and returns the messages whose turn has come, in order. */
  advance(): CompleteMessage[] {
    const out: CompleteMessage[] = [];
    for (;;) {
      const done = this.complete.get(this.next);
      if (done) {
        this.complete.delete(this.next);
        this.dropFrames(this.next, done.count);
        this.next = seqAdd(this.next, done.count);
        if (done.body) out.push(done);
        continue;
      }
      const frame = this.held.get(this.next);
      if (frame) {
        const lastSeq = seqAdd(this.next, frame.fragCount - frame.fragIndex - 1);
        // A fragment whose head was given up, or a message the sender resolved without our having all of it:
        // neither can ever complete.
        if (frame.fragIndex !== 0 || seqLess(lastSeq, this.floor)) {
          this.held.delete(this.next);
          this.next = seqAdd(this.next, 1);
          continue;
        }
        break;
      }
      if (!seqLess(this.next, this.floor)) break;
      // Skip straight to the next frame or complete message we hold (or the floor), so a large floor costs no loop
      // per seq. (A complete message's frames are held too, but a snapshot need not say so: see snapshot().)
      let target = this.floor;
      for (const seq of this.held.keys()) if (seqLess(seq, target) && !seqLess(seq, this.next)) target = seq;
      for (const head of this.complete.keys())
        if (seqLess(head, target) && !seqLess(head, this.next)) target = head;
      this.next = target;
    }
    return out;
  }

  /**
   * Every whole, checked message still waiting for its turn, in seq order, regardless of gaps: used when the
   * sender starts a new epoch, since the earlier frames can then never arrive. They were acknowledged, so they
   * must be delivered, not dropped.
   */
  drainComplete(): CompleteMessage[] {
    const out = [...this.complete.values()].filter((m) => m.body).sort((a, b) => seqDiff(a.head, b.head));
    this.complete.clear();
    this.held.clear();
    return out;
  }

  private dropFrames(head: number, count: number): void {
    for (let i = 0; i < count; i++) this.held.delete(seqAdd(head, i));
  }

  /** Runs of held seqs above `next`, for selective ACKs, lowest first. */
  ackRanges(): AckRange[] {
    const seqs = [...this.held.keys()].sort((a, b) => seqDiff(a, b));
    const ranges: AckRange[] = [];
    for (const seq of seqs) {
      const last = ranges[ranges.length - 1];
      if (last && seqAdd(last.start, last.length) === seq && last.length < 0xffff) last.length++;
      else {
        if (ranges.length === MAX_ACK_RANGES) break;
        ranges.push({ start: seq, length: 1 });
      }
    }
    return ranges;
  }

  ackRejects(): AckReject[] {
    return [...this.rejects];
  }

  heldCount(): number {
    return this.held.size;
  }

  /**
   * The stream's state, to save before anything it holds is acknowledged. The frames of a complete message are
   * left out: the message carries their contents, and restore() puts back what the bookkeeping needs of them. Under
   * loss, waiting messages pile up behind a hole and this is saved after every burst, so each copy of a payload
   * counts (at 40% loss, full load: saving both copies cost a quarter of the goodput).
   */
  snapshot(): RecvSnapshot {
    const partOfComplete = (f: HeldFrame) => {
      const m = this.complete.get(seqAdd(f.seq, -f.fragIndex));
      // A message with a body was gathered from all its frames, held until it is delivered; a rejected one may
      // lack some (an inconsistent fragment), so its frames are kept as they are.
      return m?.body != null && m.msgId === f.msgId && m.count === f.fragCount && f.fragIndex < m.count;
    };
    return {
      epoch: this.epoch,
      next: this.next,
      floor: this.floor,
      held: [...this.held.values()]
        .filter((f) => !partOfComplete(f))
        .map((f) => [f.seq, f.msgId, f.flags, f.fragIndex, f.fragCount, f.sentAt, toHex(f.payload)]),
      complete: [...this.complete.values()].map((m) => [
        m.head,
        m.count,
        m.msgId,
        m.flags,
        m.sentAt,
        m.body ? toHex(m.body) : null,
      ]),
      rejects: this.rejects.map((r) => [r.seq, r.code]),
      checksLog: this.checksLog,
    };
  }

  static restore(s: RecvSnapshot): RecvStream {
    const stream = new RecvStream(s.epoch, s.next, s.floor);
    for (const [seq, msgId, flags, fragIndex, fragCount, sentAt, payload] of s.held)
      stream.held.set(seq, {
        seq,
        msgId: msgId as MsgId,
        flags,
        fragIndex,
        fragCount,
        sentAt,
        payload: fromHex(payload),
      });
    for (const [head, count, msgId, flags, sentAt, body] of s.complete) {
      stream.complete.set(head, {
        head,
        count,
        msgId: msgId as MsgId,
        flags,
        sentAt,
        body: body === null ? null : fromHex(body),
      });
      // Its frames, as they were held (snapshots written before this left them out still hold them): they are
      // acknowledged in ranges and counted as duplicates like any held frame; their payloads are never read again.
      if (body === null) continue;
      for (let fragIndex = 0; fragIndex < count; fragIndex++) {
        const seq = seqAdd(head, fragIndex);
        // Below `next` the frames were dropped (an earlier rejected message spanned them); the message is a husk.
        if (stream.held.has(seq) || seqLess(seq, stream.next)) continue;
        stream.held.set(seq, {
          seq,
          msgId: msgId as MsgId,
          flags,
          fragIndex,
          fragCount: count,
          sentAt,
          payload: NO_PAYLOAD,
        });
      }
    }
    stream.rejects = s.rejects.map(([seq, code]) => ({ seq, code: code as AckReject["code"] }));
    stream.checksLog = s.checksLog ?? false;
    return stream;
  }
}
