/**
 * The receive side, for every peer: a DATA or a BATCH checked and its frames held (onData, onBatch), a message checked once its last fragment
 * is in (completeIfWhole), a sender's new epoch (newEpoch), delivery in order and exactly once (deliverReady,
 * deliver), and the ACKs owed for all of it (flushAcks). RecvStream holds one sender's stream; this decides what
 * is delivered, refused or acknowledged. That a DATA proves its sender alive is presence's (presence.ts).
 */
import type { EngineContext } from "./context.ts";
import { privateAad } from "./context.ts";
import { joinFragments } from "./fragments.ts";
import { msgIdTime } from "./msg-id.ts";
import type { PeerState } from "./peer.ts";
import { type CompleteMessage, type HeldFrame, RecvStream } from "./recv-stream.ts";
import { seqAdd } from "./seq.ts";
import type { Address, Millis } from "./types.ts";
import {
  type BatchPacket,
  type DataFields,
  DataFlags,
  type DataPacket,
  encodeAck,
  MAX_FRAGMENTS,
  RejectCode,
  receivedSignedBytes,
} from "./wire.ts";

/** What the receive side asks of presence (presence.ts). */
export interface ReceiverPresence {
  heard(peer: PeerState, from: Address, now: Millis, fresh: boolean): void;
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true });

export class Receiver {
  constructor(
    private readonly ctx: EngineContext,
    private readonly presence: ReceiverPresence,
  ) {}

  onData(now: Millis, from: Address, peer: PeerState, p: DataPacket): void {
    // Its session authenticated the datagram as the peer's; the signature proves the message is its author's.
    if (!this.ctx.crypto.verify(peer.id, receivedSignedBytes(peer.id, p.messagePart), p.proof))
      return this.ctx.reject("bad-signature", from, peer.id);
    this.onFrame(now, from, peer, p);
  }

  /** A whole batch's frames in one datagram: one signature check for them all, then each frame as a DATA's. */
  onBatch(now: Millis, from: Address, peer: PeerState, p: BatchPacket): void {
    const signed = p.frames.map((f) => receivedSignedBytes(peer.id, f.messagePart));
    if (!this.ctx.crypto.verifyBatch(peer.id, signed, p.signature))
      return this.ctx.reject("bad-signature", from, peer.id);
    p.frames.forEach((f, i) => {
      this.onFrame(now, from, peer, { ...f, epoch: p.epoch, floor: p.floor, seq: seqAdd(p.seq, i) });
    });
  }

  /** A frame whose signature checked out. */
  private onFrame(now: Millis, from: Address, peer: PeerState, p: DataFields): void {
    if (p.fragCount > MAX_FRAGMENTS) return this.ctx.reject("bad-fragment", from, peer.id);
    let stream = peer.recv;
    if (stream && p.epoch < stream.epoch) return this.ctx.reject("stale-epoch", from, peer.id);
    if (!stream || p.epoch > stream.epoch) {
      // First contact, or the sender lost its state and started a new epoch: its old sequence numbers are void,
      // and so are its HELLOs from before.
      stream = this.newEpoch(peer, p.epoch, p.floor);
      if (p.epoch > peer.helloEpoch) {
        peer.helloEpoch = p.epoch;
        peer.helloTs = 0;
      }
    }
    // The floor is authenticated: note it (and deliver what it releases) before the window check, so a frame
    // the sender may legitimately send past a run of given-up frames is not refused.
    stream.noteFloor(p.floor);
    this.deliverReady(peer, stream);
    const frame: HeldFrame = {
      seq: p.seq,
      msgId: p.msgId,
      flags: p.flags,
      fragIndex: p.fragIndex,
      fragCount: p.fragCount,
      sentAt: msgIdTime(p.msgId),
      payload: p.payload.slice(),
    };
    const result = stream.accept(frame);
    if (result === "beyond-window") return this.ctx.reject("beyond-window", from, peer.id);
    this.ctx.acksOwed.add(peer);
    if (result === "duplicate") {
      this.ctx.counters.duplicates++;
      this.ctx.events.push({ type: "duplicate", from: peer.id, msgId: p.msgId });
      this.deliverReady(peer, stream);
      return;
    }
    this.presence.heard(peer, from, now, true);
    this.completeIfWhole(peer, stream, p.seq, from);
    this.deliverReady(peer, stream);
    this.ctx.dirty.add(peer.id);
  }

  /** Checks a message as soon as its last fragment arrives, so a rejection rides on the ACK of that fragment. */
  private completeIfWhole(peer: PeerState, stream: RecvStream, seq: number, from: Address): void {
    const frames = stream.gather(seq);
    if (frames === undefined) return;
    if (frames === "inconsistent") {
      this.ctx.reject("inconsistent-fragments", from, peer.id);
      stream.tombstone(seq, RejectCode.Malformed);
      return;
    }
    const first = frames[0];
    if (!first) return;
    const base = {
      head: first.seq,
      count: frames.length,
      msgId: first.msgId,
      flags: first.flags,
      sentAt: first.sentAt,
    };
    let body: Uint8Array | undefined = joinFragments(frames.map((f) => f.payload));
    if (first.flags & DataFlags.Private) {
      body = this.ctx.crypto.open(body, privateAad(peer.id, this.ctx.selfId, first.msgId));
      if (!body) {
        this.ctx.reject("decrypt-failed", from, peer.id);
        stream.tombstone(seq, RejectCode.DecryptFailed);
        return;
      }
    }
    if (!isUtf8(body)) {
      this.ctx.reject("bad-utf8", from, peer.id);
      stream.tombstone(seq, RejectCode.Malformed);
      return;
    }
    stream.markComplete({ ...base, body });
  }

  /** Starts a new receive stream for a sender's new epoch, first delivering what the old one had complete. */
  newEpoch(peer: PeerState, epoch: number, floor: number): RecvStream {
    if (peer.recv) this.deliver(peer, peer.recv.drainComplete());
    const stream = new RecvStream(epoch, floor);
    // A new epoch of a stream we kept: the old epoch's datagrams are stale-epoch, so the new one is as sound as the
    // old. No stream at all (first contact, or our state was lost): sound only if nothing came from them before.
    stream.checksLog = peer.recv ? peer.recv.checksLog : this.ctx.deliveryLog.hasAnyFrom(peer.id);
    peer.recv = stream;
    this.ctx.dirty.add(peer.id);
    return stream;
  }

  deliverReady(peer: PeerState, stream: RecvStream): void {
    this.deliver(peer, stream.advance());
  }

  private deliver(peer: PeerState, messages: CompleteMessage[]): void {
    for (const m of messages) {
      this.ctx.dirty.add(peer.id);
      if (!m.body) continue;
      // The durable log (a database read per message) only for a message its sender says it sent before, or on a
      // stream that cannot rule out replays (RecvStream.checksLog). Otherwise a message under a seq never
      // delivered is a first sending, which the recent msgIds kept in memory cover.
      const askLog = (m.flags & DataFlags.Resent) !== 0 || (peer.recv?.checksLog ?? true);
      if (peer.wasDelivered(m.msgId) || (askLog && this.ctx.deliveryLog.has(peer.id, m.msgId))) {
        this.ctx.counters.duplicates++;
        this.ctx.events.push({ type: "duplicate", from: peer.id, msgId: m.msgId });
        continue;
      }
      peer.rememberDelivered(m.msgId);
      this.ctx.counters.messagesDelivered++;
      this.ctx.events.push({
        type: "message",
        msgId: m.msgId,
        from: peer.id,
        kind: m.flags & DataFlags.Private ? "private" : "broadcast",
        text: strictDecoder.decode(m.body),
        sentAt: m.sentAt,
      });
    }
  }

  /** ACKs are built lazily, once per peer per flush, so a burst of DATA costs one ACK. */
  flushAcks(): void {
    if (this.ctx.acksOwed.size === 0) return;
    // In the order the peers were added, whatever order the DATA came in: a run replays the same way.
    const owed = [...this.ctx.acksOwed].sort((a, b) => a.rank - b.rank);
    this.ctx.acksOwed.clear();
    for (const peer of owed) {
      if (!peer.recv) continue;
      this.ctx.counters.acksSent++;
      const ranges = peer.recv.ackRanges();
      const ack = encodeAck({
        epoch: peer.recv.epoch,
        next: peer.recv.next,
        ranges,
        rejects: peer.recv.ackRejects(),
      });
      this.ctx.emitDatagram(peer, ack);
      // Ranges mean a hole: this path is losing datagrams now, and the way back likely too. One ACK stands for a
      // whole burst, and losing it leaves the sender blind to the hole until the next one: a second copy, for
      // as long as holes last, halves that (measured at 40% loss both ways: +15-24% goodput). Copies are
      // idempotent, and a loss-free path never pays for them.
      if (ranges.length > 0) this.ctx.emitDatagram(peer, ack);
    }
  }
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictDecoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
