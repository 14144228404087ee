/**
 * One sender's stream to one peer: frames numbered in order, a bounded window of them in flight, their
 * retransmission deadlines, and which frames belong to which message.
 */
import { RECV_WINDOW } from "./recv-stream.ts";
import { seqAdd, seqDiff, seqLess } from "./seq.ts";
import type { MessageKind, Millis, MsgId } from "./types.ts";

export interface OutFrame {
  seq: number;
  msgId: MsgId;
  /**
   * The signed datagram, sent unchanged on every try. Undefined from the moment the frame is queued until the
   * runtime first polls a transmission: the frames queued in between are signed together, as one batch.
   */
  bytes: Uint8Array | undefined;
  tries: number;
  firstSentAt: Millis;
  lastSentAt: Millis;
  deadline: Millis;
  /** Order of the latest transmission across the whole stream: a later one ACKed first means this one was lost. */
  txOrder: number;
  /**
   * Order of the oldest copy that an ACK of this frame may be answering. An ACK does not say which copy it answers
   * (RFC 8985 §6.2 has the same ambiguity): after a retransmit on timeout it may answer the copy before, which was
   * only slow, and taking the latest copy's order would then declare lost every frame sent in between. An early
   * retransmit is sent because a copy sent after the previous one was acknowledged, so that previous copy is lost
   * (datagrams on one path do not overtake each other): from then on an ACK answers the new copy.
   */
  answerableTxOrder: number;
  /** Retransmissions forced by the timeout: the backoff doubles with these, not with early retransmits. */
  timeouts: number;
  /**
   * Until the frame's first transmission, when its batch signature went to this peer whole: the frames of that
   * batch, in seq order, and (on the first of them) the one BATCH datagram that carries them all (§3.1).
   */
  batch?: readonly OutFrame[];
  batchBytes?: Uint8Array;
}

export interface OutMessage {
  msgId: MsgId;
  kind: MessageKind;
  text: Uint8Array;
  sentAt: number;
  /** Position in the order messages were written (engine-wide). */
  order: number;
  head: number;
  /** How many frames (fragments) the message took. */
  count: number;
  framesLeft: number;
  /** Tries of the frame that made the most; reported on failure. */
  triesMax: number;
}

export class SendStream {
  /** Every unresolved frame, queued or in flight. A Map keeps insertion order, which is seq order. */
  readonly frames = new Map<number, OutFrame>();
  readonly messages = new Map<MsgId, OutMessage>();
  private nextToSend: number;
  inFlight = 0;
  private txCounter = 0;

  constructor(public nextSeq: number) {
    this.nextToSend = nextSeq;
  }

  /** Everything below the floor is resolved (acknowledged or given up). */
  floor(): number {
    for (const seq of this.frames.keys()) return seq;
    return this.nextSeq;
  }

  /**
   * Where the receiver's window starts at the latest: the head of our first unresolved message. The receiver
   * may not have delivered the frames of that message it already acknowledged, so its window does not move past
   * them; anchoring ours at the floor instead would send frames it must refuse.
   */
  windowBase(): number {
    for (const frame of this.frames.values()) return this.messages.get(frame.msgId)?.head ?? frame.seq;
    return this.nextSeq;
  }

  allocate(count: number): number {
    const head = this.nextSeq;
    this.nextSeq = seqAdd(this.nextSeq, count);
    return head;
  }

  add(frame: OutFrame): void {
    this.frames.set(frame.seq, frame);
  }

  /** The next queued frame that the window lets us send now, if any. */
  nextSendable(windowFrames: number): OutFrame | undefined {
    while (seqLess(this.nextToSend, this.nextSeq)) {
      const frame = this.frames.get(this.nextToSend);
      if (!frame) {
        this.nextToSend = seqAdd(this.nextToSend, 1);
        continue;
      }
      // Both limits: frames in flight, and how far past the oldest unresolved frame the receiver will hold.
      if (this.inFlight >= windowFrames || seqDiff(frame.seq, this.windowBase()) >= RECV_WINDOW)
        return undefined;
      this.nextToSend = seqAdd(this.nextToSend, 1);
      return frame;
    }
    return undefined;
  }

  /** `earlierCopiesLost`: an early retransmit, sent because the previous copy was overtaken (see answerableTxOrder). */
  markSent(frame: OutFrame, now: Millis, deadline: Millis, earlierCopiesLost: boolean): void {
    frame.txOrder = ++this.txCounter;
    if (frame.tries === 0 || earlierCopiesLost) frame.answerableTxOrder = frame.txOrder;
    if (frame.tries === 0) {
      frame.firstSentAt = now;
      this.inFlight++;
    }
    frame.tries++;
    frame.lastSentAt = now;
    frame.deadline = deadline;
  }

  /** Removes a frame (acknowledged or abandoned). */
  resolve(seq: number): OutFrame | undefined {
    const frame = this.frames.get(seq);
    if (!frame) return undefined;
    this.frames.delete(seq);
    if (frame.tries > 0) this.inFlight--;
    return frame;
  }

  /** The frames of a message that are still unresolved. */
  *framesOf(message: OutMessage): Generator<OutFrame> {
    for (let i = 0; i < message.count; i++) {
      const f = this.frames.get(seqAdd(message.head, i));
      if (f && f.msgId === message.msgId) yield f;
    }
  }

  queued(): number {
    return this.frames.size - this.inFlight;
  }
}
