/**
 * The send side, for every peer: queueing a message (send, enqueue), signing what was queued in one batch,
 * putting frames on the wire within the window (fillWindow, transmitFrame), what an ACK resolves (onAck), and the
 * per-frame retransmission timer and give-up (onTimeout). SendStream holds one peer's frames; this decides when
 * they go. What waits for a peer not heard from is presence's (presence.ts), reached through SenderPresence.
 */
import { BatchSigner } from "./batch-signer.ts";
import type { EngineContext } from "./context.ts";
import { privateAad } from "./context.ts";
import { describeFailure, type FailReason } from "./events.ts";
import { splitIntoFragments } from "./fragments.ts";
import { msgIdTime, newMsgId } from "./msg-id.ts";
import type { ParkedMessage, PeerState } from "./peer.ts";
import type { OutFrame, OutMessage } from "./send-stream.ts";
import { seqAdd, seqLess } from "./seq.ts";
import {
  type Address,
  MAX_TEXT_BYTES,
  type MessageKind,
  type Millis,
  type MsgId,
  type PeerId,
} from "./types.ts";
import { type AckPacket, DataFlags, MAX_FRAGMENT_PAYLOAD, RejectCode } from "./wire.ts";

export type SendErrorCode = "empty" | "too-large" | "unknown-peer" | "no-peers" | "queue-full" | "self";

export class SendError extends Error {
  constructor(
    readonly code: SendErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "SendError";
  }
}

export interface SendRequest {
  kind: MessageKind;
  /** Recipients; for a broadcast, every known peer when absent. A private message has exactly one. */
  to?: readonly PeerId[];
  text: string;
  /**
   * Given when re-sending a stored message (after a restart): the same id, so the receiver can drop a copy. Its
   * time (msgIdTime) is when the message was written, as the receiver shows it.
   */
  msgId?: MsgId;
  /**
   * When a re-sent message was written, as its outbox says: what its expiry counts from. The same as its id's time
   * but for messages written before ids carried the time (their ids are random).
   */
  sentAt?: number;
}

export interface SendResult {
  msgId: MsgId;
  to: PeerId[];
  /** The recipients not heard from: the message waits for each of them and goes once they are (in `to` too). */
  waiting: PeerId[];
}

/** What the send side asks of presence (presence.ts): parking, probation, liveness, and the give-up. */
export interface SenderPresence {
  park(peer: PeerState, message: Omit<ParkedMessage, "resent">, resent: boolean): void;
  unpark(peer: PeerState, now: Millis): void;
  heard(peer: PeerState, from: Address, now: Millis, fresh: boolean): void;
  giveUp(peer: PeerState, message: OutMessage): void;
}

const encoder = new TextEncoder();
export class Sender {
  private readonly batch: BatchSigner;
  /** Numbers messages in the order they were written, to keep that order through parking. */
  private messageOrder = 0;

  constructor(
    private readonly ctx: EngineContext,
    private readonly presence: SenderPresence,
  ) {
    this.batch = new BatchSigner(ctx);
  }

  /** Signs and encodes every frame queued since the last call (BatchSigner.sign). */
  signUnsigned(): void {
    this.batch.sign();
  }

  /**
   * Queues a message; throws SendError with a reason a user can read. Nothing is sent before pollTransmit(). For a
   * recipient not heard from, nothing is sent at all: the message waits (parked) until the recipient is heard.
   */
  send(now: Millis, request: SendRequest): SendResult {
    const text = encoder.encode(request.text);
    if (text.length === 0) throw new SendError("empty", "message is empty");
    if (text.length > MAX_TEXT_BYTES)
      throw new SendError("too-large", `message is ${text.length} bytes; the limit is ${MAX_TEXT_BYTES}`);
    const recipients = this.recipientsOf(request);
    const msgId = request.msgId ?? newMsgId(this.ctx.rng, now);
    const parked: ParkedMessage = {
      msgId,
      kind: request.kind,
      text,
      sentAt: request.sentAt ?? msgIdTime(msgId),
      order: ++this.messageOrder,
      resent: request.msgId !== undefined,
    };
    for (const peer of recipients) {
      // 64 bytes cover any sealing overhead (HPKE's is 48): an upper bound on the fragments the body will take.
      const framesNeeded = Math.ceil((text.length + 64) / MAX_FRAGMENT_PAYLOAD);
      if (peer.send.frames.size + framesNeeded > this.ctx.config.queueFramesMax)
        throw new SendError("queue-full", `too many messages waiting for ${peer.id}; try again later`);
    }
    const waiting: PeerId[] = [];
    for (const peer of recipients) {
      this.ctx.touched.add(peer);
      // Behind messages already waiting for this peer, too: they go first, in the order they were written.
      if (peer.online && peer.parked.length === 0) this.enqueue(peer, parked, now);
      else {
        this.presence.park(peer, parked, parked.resent);
        waiting.push(peer.id);
      }
    }
    return { msgId, to: recipients.map((p) => p.id), waiting };
  }

  private recipientsOf(request: SendRequest): PeerState[] {
    if (request.kind === "private" && request.to?.length !== 1)
      throw new SendError("unknown-peer", "a private message needs exactly one recipient");
    const ids = request.to ?? [...this.ctx.peers.keys()];
    const out: PeerState[] = [];
    for (const id of ids) {
      if (id === this.ctx.selfId) throw new SendError("self", "cannot send a message to yourself");
      const peer = this.ctx.peers.get(id);
      if (!peer) throw new SendError("unknown-peer", `unknown peer ${id}`);
      out.push(peer);
    }
    if (out.length === 0) throw new SendError("no-peers", "there is nobody to send to");
    return out;
  }

  enqueue(peer: PeerState, message: ParkedMessage, now: Millis): void {
    const stream = peer.send;
    if (stream.messages.has(message.msgId)) return;
    const isPrivate = message.kind === "private";
    const body = isPrivate
      ? this.ctx.crypto.seal(peer.id, message.text, privateAad(this.ctx.selfId, peer.id, message.msgId))
      : message.text;
    const parts = splitIntoFragments(body);
    const floor = stream.floor();
    const head = stream.allocate(parts.length);
    parts.forEach((payload, fragIndex) => {
      const seq = seqAdd(head, fragIndex);
      const fields = {
        epoch: this.ctx.epoch,
        seq,
        floor,
        flags: (isPrivate ? DataFlags.Private : 0) | (message.resent ? DataFlags.Resent : 0),
        fragIndex,
        fragCount: parts.length,
        msgId: message.msgId,
        payload,
      };
      const frame: OutFrame = {
        seq,
        msgId: message.msgId,
        bytes: undefined,
        tries: 0,
        firstSentAt: now,
        lastSentAt: now,
        deadline: now,
        txOrder: 0,
        answerableTxOrder: 0,
        timeouts: 0,
      };
      stream.add(frame);
      this.batch.add({ frame, peer: peer.id, fields, shared: isPrivate ? undefined : message });
    });
    stream.messages.set(message.msgId, {
      msgId: message.msgId,
      kind: message.kind,
      text: message.text,
      sentAt: message.sentAt,
      order: message.order,
      head,
      count: parts.length,
      framesLeft: parts.length,
      triesMax: 0,
    });
    this.ctx.dirty.add(peer.id);
    this.fillWindow(peer, now);
  }

  private fillWindow(peer: PeerState, now: Millis): void {
    for (let frame = peer.send.nextSendable(this.ctx.config.windowFrames); frame; ) {
      this.transmitFrame(peer, frame, now);
      frame = peer.send.nextSendable(this.ctx.config.windowFrames);
    }
  }

  /**
   * Sends a frame and sets its next deadline. A retransmit on timeout counts its wait from when it was due
   * (`due`), not from when the timer ran, so a late event loop does not stretch every try of the give-up schedule;
   * at least half the wait still separates two tries, so a long stall does not burn several tries at once.
   */
  private transmitFrame(
    peer: PeerState,
    frame: OutFrame,
    now: Millis,
    due: Millis = now,
    earlierCopiesLost = false,
  ): void {
    const wait = peer.rtt.backoff(frame.timeouts, this.ctx.unitRandom());
    if (frame.tries > 0) this.ctx.counters.retransmits++;
    else this.ctx.counters.framesSent++;
    peer.send.markSent(frame, now, Math.max(due + wait, now + wait / 2), earlierCopiesLost);
    const message = peer.send.messages.get(frame.msgId);
    if (message && frame.tries > message.triesMax) message.triesMax = frame.tries;
    this.ctx.counters.datagramsOut++;
    this.ctx.transmits.push({ to: peer.address, peer: peer.id, frame, tries: frame.tries });
    // A frame lost twice already is on a path that loses a lot: from its third try on, each try is two copies,
    // so its chance of needing yet another try falls from p to p² (QUIC's PTO sends two probes for the same
    // reason). At 40% loss both ways this halved the full-load p99; a loss-free path never pays for it.
    if (frame.tries > this.ctx.config.singleCopyTries) {
      this.ctx.counters.retransmits++;
      this.ctx.counters.datagramsOut++;
      this.ctx.transmits.push({ to: peer.address, peer: peer.id, frame, tries: frame.tries });
    }
  }

  onAck(now: Millis, from: Address, peer: PeerState, p: AckPacket): void {
    if (p.epoch !== this.ctx.epoch) return this.ctx.reject("stale-epoch", from, peer.id);
    this.ctx.counters.acksReceived++;
    const stream = peer.send;
    // Rejections first: a message refused by its recipient must end `failed`, not `delivered`.
    let ackedAny = false;
    for (const r of p.rejects) {
      for (const message of stream.messages.values()) {
        if (message.head !== r.seq) continue;
        const reason: FailReason =
          r.code === RejectCode.DecryptFailed ? "rejected-decrypt" : "rejected-malformed";
        this.failMessage(peer, message, reason);
        ackedAny = true;
        break;
      }
    }
    let newestAckedTx = 0;
    const acked: OutFrame[] = [];
    for (const frame of stream.frames.values()) {
      if (frame.tries === 0) break; // frames are sent in seq order: the rest are still queued
      if (seqLess(frame.seq, p.next) || inRanges(frame.seq, p)) acked.push(frame);
    }
    if (acked.length > 0) this.progressed(peer, now);
    let newest: OutFrame | undefined;
    for (const frame of acked) {
      ackedAny = true;
      // RACK's clock: the copy the ACK surely answers, or one sent before it (OutFrame.answerableTxOrder).
      if (frame.answerableTxOrder > newestAckedTx) newestAckedTx = frame.answerableTxOrder;
      if (!newest || frame.txOrder > newest.txOrder) newest = frame;
      // Sent once and acknowledged: that one copy reached the peer as a new frame, which it counted as hearing us.
      if (frame.tries === 1 && (peer.heardUsAt ?? -Infinity) < frame.lastSentAt)
        peer.heardUsAt = frame.lastSentAt;
      this.ackFrame(peer, frame);
    }
    // One RTT sample per ACK, from the newest transmission it covers: that arrival is what the ACK answers. An
    // older frame covered too was answered by an earlier ACK that was lost, so its age is not a round trip.
    // Karn's rule: a frame sent more than once gives no sample, since we cannot tell which copy was answered.
    if (newest && newest.tries === 1) peer.rtt.sample(now - newest.lastSentAt);
    this.presence.heard(peer, from, now, ackedAny);
    // Not marked dirty: of the saved state an ACK changes only the RTT estimate, which is saved with the next
    // change that must be, and relearnt from the first ACKs if a crash loses it.
    if (ackedAny) this.earlyRetransmit(peer, newestAckedTx, now);
    this.fillWindow(peer, now);
  }

  /**
   * An ACK acknowledged something new: our direction of the link works, so what is still in flight loses its
   * backoff (RFC 6298 5.7 restarts the timer at the plain RTO once new data is acknowledged). Without this, a
   * frame that timed out while the link was quiet keeps a doubled wait long after the peer is answering again.
   */
  private progressed(peer: PeerState, now: Millis): void {
    peer.lastAckedAt = now;
    if (peer.onProbation) {
      // Our direction works again: the rest of what waited for this peer goes now.
      peer.onProbation = false;
      this.presence.unpark(peer, now);
    }
    const rto = peer.rtt.rto();
    for (const frame of peer.send.frames.values()) {
      if (frame.tries === 0) break;
      if (frame.timeouts === 0) continue;
      frame.timeouts = 0;
      frame.deadline = Math.min(frame.deadline, frame.lastSentAt + rto);
    }
  }

  private ackFrame(peer: PeerState, frame: OutFrame): void {
    const stream = peer.send;
    stream.resolve(frame.seq);
    this.ctx.counters.framesAcked++;
    const message = stream.messages.get(frame.msgId);
    if (!message) return;
    message.framesLeft--;
    if (message.framesLeft > 0) return;
    stream.messages.delete(message.msgId);
    this.ctx.counters.messagesAcked++;
    this.ctx.events.push({ type: "delivered", msgId: message.msgId, to: peer.id, tries: message.triesMax });
  }

  /**
   * A frame whose latest copy was sent before one that was just acknowledged is probably lost (RACK's rule, by
   * transmission order): send it again without waiting for its timeout. Its new copy is then the latest, so it is
   * sent early again only if a copy sent after that one is acknowledged. The peer is answering, so this does not
   * back off: only timeouts double the wait.
   */
  private earlyRetransmit(peer: PeerState, newestAckedTx: number, now: Millis): void {
    for (const frame of peer.send.frames.values()) {
      if (frame.tries === 0) break;
      if (frame.txOrder >= newestAckedTx) continue;
      if (frame.tries >= this.ctx.config.triesMax) continue;
      this.ctx.counters.earlyRetransmits++;
      this.transmitFrame(peer, frame, now, now, true);
    }
  }

  /** Stops sending a message to a peer for good: `failed`. */
  private failMessage(peer: PeerState, message: OutMessage, reason: FailReason): void {
    this.dropFromStream(peer, message);
    this.ctx.counters.messagesFailed++;
    this.ctx.events.push({
      type: "failed",
      msgId: message.msgId,
      to: peer.id,
      reason,
      tries: message.triesMax,
      detail: describeFailure(reason, this.ctx.config.expireMs),
    });
  }

  dropFromStream(peer: PeerState, message: OutMessage): void {
    const stream = peer.send;
    for (const frame of [...stream.framesOf(message)]) stream.resolve(frame.seq);
    stream.messages.delete(message.msgId);
    this.ctx.dirty.add(peer.id);
  }

  /** Retransmits the frames of `peer` whose deadline passed, gives up those out of tries, then fills the window. */
  onTimeout(peer: PeerState, now: Millis): void {
    const due: OutFrame[] = [];
    for (const frame of peer.send.frames.values()) {
      if (frame.tries === 0) break; // frames are sent in seq order: the rest are still queued
      if (frame.deadline <= now) due.push(frame);
    }
    for (const frame of due) {
      if (!peer.send.frames.has(frame.seq)) continue; // resolved with an earlier frame of its message
      const message = peer.send.messages.get(frame.msgId);
      if (frame.tries >= this.ctx.config.triesMax || now - frame.firstSentAt >= this.ctx.config.giveUpMs) {
        if (message) this.presence.giveUp(peer, message);
        else peer.send.resolve(frame.seq);
        continue;
      }
      // Back off only while the peer acknowledges nothing of ours: a link that loses frames at random but
      // still answers is retried at the plain RTO, or every loss would double the wait of what follows it.
      const answering = peer.lastAckedAt !== undefined && peer.lastAckedAt >= frame.lastSentAt;
      frame.timeouts = answering ? 0 : frame.timeouts + 1;
      this.transmitFrame(peer, frame, now, frame.deadline);
    }
    this.fillWindow(peer, now);
  }
}

function inRanges(seq: number, ack: AckPacket): boolean {
  for (const r of ack.ranges) {
    if (!seqLess(seq, r.start) && seqLess(seq, seqAdd(r.start, r.length))) return true;
  }
  return false;
}
