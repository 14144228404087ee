/**
 * Presence, for every peer: whether it is online (HELLOs, heartbeats, probes of the silent within the probe
 * budget, the offline timeout, a goodbye), and what waits for it while it is not (parking, probation after a
 * give-up, expiry). A peer heard from again gets what waited for it, through the sender.
 */
import type { EngineContext } from "./context.ts";
import { describeFailure, type WaitCause } from "./events.ts";
import type { ParkedMessage, PeerState } from "./peer.ts";
import { ProbeBudget, probeDelayMs } from "./probe-budget.ts";
import type { Receiver } from "./receiver.ts";
import type { OutMessage } from "./send-stream.ts";
import type { Sender } from "./sender.ts";
import type { Address, Millis, PeerId } from "./types.ts";
import { encodeHello, HelloFlags, type HelloPacket } from "./wire.ts";

export class Presence {
  /** HELLO timestamps strictly increase, so a receiver can tell a replayed HELLO from a new one. */
  private lastHelloTs = 0;
  private readonly probeBudget: ProbeBudget;

  constructor(
    private readonly ctx: EngineContext,
    private readonly sender: Sender,
    private readonly receiver: Receiver,
    now: Millis,
  ) {
    this.probeBudget = new ProbeBudget(ctx.config.probesPerSecondMax, now);
  }

  onHello(now: Millis, from: Address, peer: PeerState, p: HelloPacket): void {
    if (peer.recv && p.epoch < peer.recv.epoch) return this.ctx.reject("stale-epoch", from, peer.id);
    const fresh = p.epoch > peer.helloEpoch || (p.epoch === peer.helloEpoch && p.timestamp > peer.helloTs);
    if (!fresh) return this.ctx.reject("replayed-hello", from, peer.id);
    this.ctx.counters.hellosReceived++;
    peer.helloEpoch = p.epoch;
    peer.helloTs = p.timestamp;
    this.ctx.dirty.add(peer.id);
    if (p.flags & HelloFlags.Leaving) return this.left(peer, now);
    if (p.echo > 0 && p.echo <= now) peer.rtt.sample(now - p.echo);
    const stream =
      !peer.recv || p.epoch > peer.recv.epoch ? this.receiver.newEpoch(peer, p.epoch, p.floor) : peer.recv;
    const nextBefore = stream.next;
    stream.noteFloor(p.floor);
    this.receiver.deliverReady(peer, stream);
    // The floor let us deliver (or skip) more: tell the sender, whose messages may be waiting on that.
    if (stream.next !== nextBefore) this.ctx.acksOwed.add(peer);
    this.heard(peer, from, now, true);
    if (p.flags & HelloFlags.ReplyWanted) this.sendHello(peer, now, 0, p.timestamp, this.heartbeatAt(now));
  }

  /** Notes that `peer` is alive; a fresh packet (not a replay or duplicate) also teaches its current address. */
  heard(peer: PeerState, from: Address, now: Millis, fresh: boolean): void {
    // Only fresh packets count: a replayed ACK or DATA copy must not keep a dead peer looking alive.
    if (!fresh) return;
    peer.lastHeard = now;
    if (peer.address !== from) {
      peer.address = from;
      this.ctx.dirty.add(peer.id);
    }
    if (peer.online) return;
    peer.online = true;
    peer.probes = 0;
    this.ctx.events.push({ type: "peer-online", peer: peer.id, address: from });
    if (!peer.onProbation) return this.unpark(peer, now);
    const first = peer.parked.shift();
    if (first) this.sender.enqueue(peer, first, now);
  }

  /**
   * A heartbeat is for a quiet link. A DATA of ours that the peer acknowledged on its first transmission told the
   * peer we are alive just as a HELLO sent at that moment would have, so the HELLO waits a heartbeat interval from
   * then (WireGuard, likewise, sends keepalives only on a link that carries nothing else). While messages flow, no
   * HELLO is sent. A peer that is offline always gets its HELLO, which asks for a reply.
   */
  private heartbeat(peer: PeerState, now: Millis): void {
    if (!peer.online) return this.probe(peer, now);
    const heardUsAt = peer.heardUsAt;
    if (peer.online && heardUsAt !== undefined && now - heardUsAt < this.ctx.config.heartbeatMs) {
      peer.nextHelloAt = heardUsAt + this.ctx.config.heartbeatMs;
      return;
    }
    this.sendHello(peer, now, 0, 0, this.heartbeatAt(now));
  }

  /**
   * A peer not heard from gets a HELLO that asks for a reply, on a backed-off schedule (probeDelayMs), within the
   * node's probe budget: that and nothing else until it answers. A peer that starts announces itself anyway, so the
   * probes only cover a HELLO of theirs that was lost.
   */
  private probe(peer: PeerState, now: Millis): void {
    const jitter = 0.9 + 0.2 * this.ctx.unitRandom();
    if (!this.probeBudget.take(now)) {
      peer.nextHelloAt = now + this.probeBudget.retryMs() * jitter * (1 + this.ctx.unitRandom());
      return;
    }
    const nextAt = now + probeDelayMs(this.ctx.config, peer.probes) * jitter;
    peer.probes++;
    this.sendHello(peer, now, HelloFlags.ReplyWanted, 0, nextAt);
  }

  /** When the next heartbeat is due after one sent now: heartbeatMs, ±10% so that peers do not fall in step. */
  private heartbeatAt(now: Millis): Millis {
    return now + this.ctx.config.heartbeatMs * (0.9 + 0.2 * this.ctx.unitRandom());
  }

  /** Sends a HELLO; the peer's next one is due at `nextAt` (set first: a HELLO that fails is not retried at once). */
  private sendHello(peer: PeerState, now: Millis, flags: number, echo: number, nextAt: Millis): void {
    peer.nextHelloAt = nextAt;
    this.ctx.counters.hellosSent++;
    this.lastHelloTs = Math.max(this.lastHelloTs + 1, Math.floor(now));
    this.ctx.emitDatagram(
      peer,
      encodeHello({
        epoch: this.ctx.epoch,
        floor: peer.send.floor(),
        timestamp: this.lastHelloTs,
        flags,
        echo,
      }),
    );
  }

  /** A frame got no answer in all its tries: the peer counts as offline and the message waits for it. */
  giveUp(peer: PeerState, message: OutMessage): void {
    this.ctx.counters.giveUps++;
    this.stopSending(peer, message, "no-answer");
    peer.onProbation = true;
    if (!peer.online) return; // the probes already under way carry the new floor
    this.markOffline(peer);
    // The floor moved past the given-up frames: tell the peer at once, in case only our DATA was being lost.
    peer.nextHelloAt = 0;
  }

  /** Takes a message off the wire and parks it (`waiting`): it goes again once the peer is heard from. */
  private stopSending(peer: PeerState, message: OutMessage, cause: WaitCause): void {
    this.sender.dropFromStream(peer, message);
    this.ctx.events.push({
      type: "waiting",
      msgId: message.msgId,
      to: peer.id,
      cause,
      tries: message.triesMax,
    });
    this.park(peer, message, true);
  }

  /**
   * The peer said it is leaving (a HELLO with the Leaving flag, sent by a clean exit): offline at once, and what
   * was on its way to it waits for its return instead of being retried into the void.
   */
  private left(peer: PeerState, now: Millis): void {
    this.markOffline(peer);
    peer.probes = 0;
    peer.nextHelloAt = now + probeDelayMs(this.ctx.config, 0);
    for (const message of [...peer.send.messages.values()]) this.stopSending(peer, message, "left");
  }

  /** Tells every peer that answers us that this node is leaving, so they show it offline at once. */
  leave(now: Millis): void {
    for (const peer of this.ctx.peers.values())
      if (peer.online) this.sendHello(peer, now, HelloFlags.Leaving, 0, peer.nextHelloAt);
  }

  /** Messages that waited for this peer longer than expireMs fail for it: `expired`. */
  private expireParked(peer: PeerState, now: Millis): void {
    // In the order written, not by age: a message re-sent after a restart keeps its first sentAt.
    if (!peer.parked.some((m) => now - m.sentAt >= this.ctx.config.expireMs)) return;
    const kept: ParkedMessage[] = [];
    for (const m of peer.parked) {
      if (now - m.sentAt < this.ctx.config.expireMs) {
        kept.push(m);
        continue;
      }
      this.ctx.counters.messagesFailed++;
      this.ctx.events.push({
        type: "failed",
        msgId: m.msgId,
        to: peer.id,
        reason: "expired",
        tries: 0,
        detail: describeFailure("expired", this.ctx.config.expireMs),
      });
    }
    peer.parked = kept;
  }

  park(peer: PeerState, message: Omit<ParkedMessage, "resent">, resent: boolean): void {
    if (peer.parked.some((m) => m.msgId === message.msgId)) return;
    // Kept in the order the messages were written (not the order they failed, which jitter shuffles), so that
    // offline delivery re-sends them in their sender's order.
    const parked: ParkedMessage = {
      msgId: message.msgId,
      kind: message.kind,
      text: message.text,
      sentAt: message.sentAt,
      order: message.order,
      resent,
    };
    let at = peer.parked.length;
    while (at > 0 && (peer.parked[at - 1] as ParkedMessage).order > parked.order) at--;
    peer.parked.splice(at, 0, parked);
    if (peer.parked.length > this.ctx.config.parkedMax) peer.parked.shift();
  }

  unpark(peer: PeerState, now: Millis): void {
    const parked = peer.parked;
    peer.parked = [];
    for (const message of parked) this.sender.enqueue(peer, message, now);
  }

  private markOffline(peer: PeerState): void {
    if (!peer.online) return;
    peer.online = false;
    peer.probes = 0;
    this.ctx.events.push({ type: "peer-offline", peer: peer.id });
  }

  /**
   * What the user asks for when they know a peer is back: probe every peer a message waits for (or `peer`) now,
   * restarting its backoff. Nothing else is sent before the peer answers. Returns how many messages wait.
   */
  retryWaiting(now: Millis, peer?: PeerId): number {
    let count = 0;
    for (const p of this.ctx.peers.values()) {
      if (peer && p.id !== peer) continue;
      if (p.parked.length === 0) continue;
      count += p.parked.length;
      this.ctx.touched.add(p);
      p.probes = 0;
      if (p.online) {
        p.onProbation = false;
        this.unpark(p, now);
      } else p.nextHelloAt = now;
    }
    return count;
  }

  /** A peer's presence timers: offline once silent too long, parked messages expired, a HELLO when due. */
  onTimeout(peer: PeerState, now: Millis): void {
    if (peer.online && peer.lastHeard !== undefined && now - peer.lastHeard >= this.ctx.config.offlineAfterMs)
      this.markOffline(peer);
    this.expireParked(peer, now);
    if (now >= peer.nextHelloAt) this.heartbeat(peer, now);
  }
}
