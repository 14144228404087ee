/**
 * The ChatNode protocol engine: a deterministic, sans-IO state machine. Time arrives as `now` on every call,
 * randomness and cryptography through injected ports; datagrams go out through pollTransmit(), what happened
 * comes out of pollEvent(), and pollTimeout() says when to call handleTimeout() next.
 *
 * This file is the router: it owns the peers and the timers, and hands each datagram and each due peer to the
 * part whose concern it is, the way WireGuard-go splits send.go, receive.go and timers.go. The send side (queueing,
 * batch signing, the window, ACKs, retransmission and give-up) is sender.ts; the receive side (checking, ordered
 * exactly-once delivery, ACKs owed) is receiver.ts; presence (HELLOs, heartbeats, probes, offline, parking,
 * probation) is presence.ts. They share one EngineContext (context.ts).
 */
import { DEFAULT_CONFIG, type EngineConfig } from "./config.ts";
import { EngineContext, type QueuedTransmit } from "./context.ts";
import type { EngineEvent } from "./events.ts";
import { newMsgId } from "./msg-id.ts";
import { type PeerSnapshot, PeerState } from "./peer.ts";
import type { CryptoPort, DeliveryLog, Rng } from "./ports.ts";
import { Presence } from "./presence.ts";
import { Receiver, type ReceiverPresence } from "./receiver.ts";
import type { OutFrame } from "./send-stream.ts";
import { Sender, type SenderPresence, type SendRequest, type SendResult } from "./sender.ts";
import { type EngineStats, newStats } from "./stats.ts";
import type { Address, Millis, MsgId, PeerId } from "./types.ts";
import { WakeQueue } from "./wake-queue.ts";
import { decode, PacketType } from "./wire.ts";

export { SendError, type SendErrorCode, type SendRequest, type SendResult } from "./sender.ts";

export interface PeerInit {
  id: PeerId;
  address: Address;
}

export interface EngineOptions {
  crypto: CryptoPort;
  rng: Rng;
  deliveryLog: DeliveryLog;
  now: Millis;
  /** This node's epoch. Keep it while the node's state is kept; choose a larger one whenever the state was lost. */
  epoch: number;
  peers: Iterable<PeerInit>;
  config?: Partial<EngineConfig>;
  /** Peer state saved from drainDirtyState() before a restart. */
  restore?: ReadonlyMap<PeerId, PeerSnapshot>;
}

export interface Transmit {
  to: Address;
  /** The peer it is for: the session layer beneath seals it under that peer's session. */
  peer: PeerId;
  bytes: Uint8Array;
}

export interface PeerInfo {
  id: PeerId;
  address: Address;
  online: boolean;
  lastHeard: Millis | undefined;
  srttMs: number | undefined;
  rtoMs: number;
  inFlight: number;
  queued: number;
  parked: number;
}

export class Engine {
  readonly config: EngineConfig;
  readonly selfId: PeerId;
  readonly epoch: number;
  private readonly ctx: EngineContext;
  private readonly sender: Sender;
  private readonly receiver: Receiver;
  private readonly presence: Presence;
  private readonly wakeQueue = new WakeQueue<PeerState>();
  private transmitHead = 0;
  private eventHead = 0;
  /** The rank of the next peer added: the order peers were added in, which breaks ties between timers. */
  private nextRank = 0;

  constructor(options: EngineOptions) {
    this.config = { ...DEFAULT_CONFIG, ...options.config };
    this.selfId = options.crypto.selfId;
    this.epoch = options.epoch >>> 0;
    const ctx = new EngineContext(
      this.config,
      this.selfId,
      this.epoch,
      options.crypto,
      options.rng,
      options.deliveryLog,
      newStats(),
    );
    this.ctx = ctx;
    // Sender and receiver reach presence through these (presence, built last, reaches them directly), so that
    // neither file imports presence.ts.
    const presence: SenderPresence & ReceiverPresence = {
      park: (peer, message, resent) => this.presence.park(peer, message, resent),
      unpark: (peer, now) => this.presence.unpark(peer, now),
      heard: (peer, from, now, fresh) => this.presence.heard(peer, from, now, fresh),
      giveUp: (peer, message) => this.presence.giveUp(peer, message),
    };
    this.sender = new Sender(ctx, presence);
    this.receiver = new Receiver(ctx, presence);
    this.presence = new Presence(ctx, this.sender, this.receiver, options.now);
    for (const p of options.peers) this.addPeer(p, options.now, options.restore?.get(p.id));
  }

  /** Adds a peer from the directory (or updates its address). */
  addPeer(peer: PeerInit, now: Millis, snapshot?: PeerSnapshot): void {
    if (peer.id === this.selfId) return;
    const existing = this.ctx.peers.get(peer.id);
    if (existing) {
      existing.address = peer.address;
      return;
    }
    const state = new PeerState(peer.id, this.nextRank++, peer.address, this.config, now, snapshot);
    this.ctx.peers.set(peer.id, state);
    this.ctx.touched.add(state);
  }

  /**
   * Forgets a peer (a contact removed from the directory): nothing more is sent to it, nothing from it accepted.
   * What waited for it stays in the runtime's outbox, for the day it is a contact again.
   */
  removePeer(id: PeerId): void {
    const peer = this.ctx.peers.get(id);
    if (!peer) return;
    this.ctx.peers.delete(id);
    this.ctx.touched.delete(peer);
    this.ctx.acksOwed.delete(peer);
    this.ctx.dirty.delete(id);
    this.wakeQueue.schedule(peer, peer.rank, undefined);
  }

  /** A new message id: when it was made, then 80 random bits (msg-id.ts says why). */
  newMsgId(now: Millis): MsgId {
    return newMsgId(this.ctx.rng, now);
  }

  // ---- sending ----------------------------------------------------------------------------------------------

  /**
   * Queues a message; throws SendError with a reason a user can read. Nothing is sent before pollTransmit(). For a
   * recipient not heard from, nothing is sent at all: the message waits (parked) until the recipient is heard.
   */
  send(now: Millis, request: SendRequest): SendResult {
    return this.sender.send(now, request);
  }

  /** Tells every peer that answers us that this node is leaving, so they show it offline at once. */
  leave(now: Millis): void {
    this.presence.leave(now);
  }

  /**
   * What the user asks for when they know a peer is back: probe every peer a message waits for (or `peer`) now,
   * restarting its backoff. Nothing else is sent before the peer answers. Returns how many messages wait.
   */
  retryWaiting(now: Millis, peer?: PeerId): number {
    return this.presence.retryWaiting(now, peer);
  }

  // ---- receiving --------------------------------------------------------------------------------------------

  /**
   * A datagram from `from`, which the session of `sender` opened: the session layer authenticated it as that
   * peer's and as meant for us, so the datagram itself names neither.
   */
  handleDatagram(now: Millis, from: Address, bytes: Uint8Array, sender: PeerId): void {
    this.ctx.counters.datagramsIn++;
    this.ctx.counters.bytesIn += bytes.length;
    const peer = this.ctx.peers.get(sender);
    if (!peer || !this.ctx.crypto.knows(sender)) return this.ctx.reject("unknown-sender", from);
    const decoded = decode(bytes);
    if (!decoded.ok) return this.ctx.reject(decoded.reason, from, sender);
    const packet = decoded.packet;
    this.ctx.touched.add(peer);
    switch (packet.type) {
      case PacketType.Data:
        return this.receiver.onData(now, from, peer, packet);
      case PacketType.Ack:
        return this.sender.onAck(now, from, peer, packet);
      case PacketType.Hello:
        return this.presence.onHello(now, from, peer, packet);
      case PacketType.Batch:
        return this.receiver.onBatch(now, from, peer, packet);
    }
  }

  // ---- timers -----------------------------------------------------------------------------------------------

  handleTimeout(now: Millis): void {
    this.updateWakeQueue();
    const duePeers = this.wakeQueue.takeDue(now);
    // All of them at once: were a call below to throw, none may be left out of the queue for good.
    for (const peer of duePeers) this.ctx.touched.add(peer);
    for (const peer of duePeers) {
      this.sender.onTimeout(peer, now);
      this.presence.onTimeout(peer, now);
    }
  }

  pollTimeout(): Millis | undefined {
    this.updateWakeQueue();
    return this.wakeQueue.peek();
  }

  private updateWakeQueue(): void {
    for (const peer of this.ctx.touched) this.wakeQueue.schedule(peer, peer.rank, this.wakeTime(peer));
    this.ctx.touched.clear();
  }

  /** When a peer next needs handleTimeout: a heartbeat, the moment it counts as offline, a frame's deadline. */
  private wakeTime(peer: PeerState): Millis {
    let earliest = peer.nextHelloAt;
    if (peer.online && peer.lastHeard !== undefined)
      earliest = Math.min(earliest, peer.lastHeard + this.ctx.config.offlineAfterMs);
    for (const frame of peer.send.frames.values()) {
      if (frame.tries === 0) break;
      if (frame.deadline < earliest) earliest = frame.deadline;
    }
    return earliest;
  }

  // ---- output -----------------------------------------------------------------------------------------------

  pollTransmit(): Transmit | undefined {
    for (;;) {
      if (this.transmitHead === this.ctx.transmits.length) {
        this.ctx.transmits.length = 0;
        this.transmitHead = 0;
        this.receiver.flushAcks();
      }
      const next = this.ctx.transmits[this.transmitHead++];
      if (!next) return this.resetTransmits();
      if (!next.frame) {
        this.ctx.counters.bytesOut += next.bytes.length;
        return { to: next.to, peer: next.peer, bytes: next.bytes };
      }
      if (next.carried) continue;
      if (next.frame.bytes === undefined) this.sender.signUnsigned();
      const bytes =
        (next.tries === 1 && this.takeBatch(next.frame, next.peer)) || (next.frame.bytes as Uint8Array);
      this.ctx.counters.bytesOut += bytes.length;
      this.ctx.counters.dataBytesOut += bytes.length;
      this.ctx.counters.dataDatagramsOut++;
      return { to: next.to, peer: next.peer, bytes };
    }
  }

  /**
   * The BATCH that carries `frame` and the rest of its batch, when `frame` is the first of a batch that went whole
   * to this peer (batch-signer.ts) and none of its frames has gone yet: their first transmissions, still queued,
   * leave in it as one datagram. Otherwise undefined, and each goes as its own DATA (a retransmission always does).
   */
  private takeBatch(frame: OutFrame, peer: PeerId): Uint8Array | undefined {
    const group = frame.batch;
    const bytes = frame.batchBytes;
    frame.batchBytes = undefined;
    if (!group || !bytes || group[0] !== frame) return undefined;
    const rest: QueuedTransmit[] = [];
    for (let i = this.transmitHead; i < this.ctx.transmits.length && rest.length < group.length - 1; i++) {
      const t = this.ctx.transmits[i] as QueuedTransmit;
      if (t.frame && t.peer === peer && t.tries === 1 && !t.carried && group.includes(t.frame)) rest.push(t);
    }
    if (rest.length !== group.length - 1) return undefined;
    for (const t of rest) if (t.frame) t.carried = true;
    this.ctx.counters.datagramsOut -= rest.length;
    this.ctx.counters.batchesSent++;
    return bytes;
  }

  private resetTransmits(): undefined {
    this.ctx.transmits.length = 0;
    this.transmitHead = 0;
    return undefined;
  }

  pollEvent(): EngineEvent | undefined {
    const event = this.ctx.events[this.eventHead];
    if (event === undefined) {
      this.ctx.events.length = 0;
      this.eventHead = 0;
      return undefined;
    }
    this.eventHead++;
    return event;
  }

  /** The state of every peer that changed since the last call, to persist before the next pollTransmit(). */
  drainDirtyState(): Array<[PeerId, PeerSnapshot]> {
    const out: Array<[PeerId, PeerSnapshot]> = [];
    for (const id of this.ctx.dirty) {
      const peer = this.ctx.peers.get(id);
      if (peer) out.push([id, peer.snapshot()]);
    }
    this.ctx.dirty.clear();
    return out;
  }

  stats(): EngineStats {
    return structuredClone(this.ctx.counters);
  }

  peers(): PeerInfo[] {
    return [...this.ctx.peers.values()].map((p) => ({
      id: p.id,
      address: p.address,
      online: p.online,
      lastHeard: p.lastHeard,
      srttMs: p.rtt.srttMs,
      rtoMs: p.rtt.rto(),
      inFlight: p.send.inFlight,
      queued: p.send.queued(),
      parked: p.parked.length,
    }));
  }

  /** Every peer's current address (cheaper than peers() when that is all one needs). */
  peerAddresses(): Address[] {
    const out: Address[] = [];
    for (const p of this.ctx.peers.values()) out.push(p.address);
    return out;
  }

  /** Messages not yet resolved for any peer: nothing in flight, queued or parked means the node is idle. */
  pendingCount(): number {
    let n = 0;
    for (const p of this.ctx.peers.values()) n += p.send.messages.size;
    return n;
  }
}
