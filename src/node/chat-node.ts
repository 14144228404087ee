/**
 * ChatNode: the engine bound to one UDP socket, one timer and a Store. Every event is persisted before it is
 * reported, and before any datagram that acknowledges it leaves: a crash at any point loses nothing and shows
 * nothing twice.
 */
import { createSocket, type Socket, type SocketOptions } from "node:dgram";
import { lookup as dnsLookup } from "node:dns";
import { EventEmitter } from "node:events";
import { isIP } from "node:net";
import { Engine } from "../engine/engine.ts";
import { type EngineEvent, isGiveUp } from "../engine/events.ts";
import type { PeerSnapshot } from "../engine/peer.ts";
import { parsePeerSnapshot } from "../engine/peer.ts";
import type { MessageKind, MsgId, PeerId } from "../engine/types.ts";
import { withWrongKeyFaults } from "../faults/faulty-crypto.ts";
import { type FaultConfig, NO_FAULTS, newFaultCounters } from "../faults/plan.ts";
import { StoreError } from "../storage/errors.ts";
import type { HistoryEntry, OutgoingMessage, Store } from "../storage/store.ts";
import { formatAddress } from "./address.ts";
import { Admission } from "./admission.ts";
import { ChatNodeError } from "./errors.ts";
import { FaultySocket } from "./faulty-socket.ts";
import { CryptoRng } from "./random.ts";
import type { ChatNodeEvents, ChatNodeOptions, Contact, NodeStats, PeerView } from "./types.ts";

const EPOCH_KEY = "epoch";
/**
 * A timer that fires this late shows that the loop was busy: then the timeout waits up to TIMEOUT_DEFER_TURNS loop
 * turns for the datagrams still being read (a turn reads up to 32 datagrams per socket, so 8 turns drain a burst
 * of 256, the receive window). A timer on time waits one turn.
 */
const TIMER_LATE_MS = 5;
const TIMEOUT_DEFER_TURNS = 8;

/**
 * dgram resolves the host of every send, even an IP literal, through dns.lookup, which answers a literal on the
 * next tick: one deferred callback per datagram. Peers' addresses are IP literals, answered here at once; anything
 * else still goes to dns.lookup.
 */
const ipLiteralLookup: NonNullable<SocketOptions["lookup"]> = (hostname, options, callback) => {
  const family = isIP(hostname);
  if (family === 0) return dnsLookup(hostname, options, callback);
  callback(null, hostname, family);
};

/**
 * Datagrams handled before a pump runs within the same loop turn. A turn reads up to 32 datagrams per socket; one
 * pump (store transaction, then ACK) at its end makes a full window's sender wait for the whole burst, and the two
 * sides work by turns. Pumping halfway lets the sender refill (and repair holes) while the rest is read: at 40%
 * loss, full load, +5% goodput and a p99 about 6 ms lower (medians of five interleaved runs); every 8 was slower.
 */
const PUMP_EVERY_DATAGRAMS = 16;

export class ChatNode extends EventEmitter<ChatNodeEvents> {
  private readonly options: ChatNodeOptions;
  private readonly store: Store;
  private readonly contactsById = new Map<PeerId, Contact>();
  private readonly rng = new CryptoRng();
  /** Rate limits, before decoding, for datagrams from anywhere but a peer's known address (admission.ts). */
  readonly admission = new Admission();
  private readonly faultCounters = newFaultCounters();
  private faults: FaultConfig;
  private engine: Engine | undefined;
  private socket: Socket | undefined;
  private wire: FaultySocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  /** Messages sent in this tick, written to the store's outbox by the next pump (group commit). */
  private readonly outbox: OutgoingMessage[] = [];
  private closing: Promise<void> | undefined;
  private boundPort = 0;

  constructor(options: ChatNodeOptions) {
    super();
    this.options = options;
    this.store = options.store;
    this.faults = { ...NO_FAULTS, ...options.faults };
    for (const c of options.contacts) if (c.id !== options.self.id) this.contactsById.set(c.id, c);
  }

  get username(): string {
    return this.options.self.name;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Binds the socket, restores state, re-sends what was pending before a restart and announces itself. */
  async start(): Promise<void> {
    const host = this.options.host ?? this.options.self.host;
    const port = this.options.port ?? this.options.self.port;
    if (!isIP(host)) throw new ChatNodeError("BAD_ADDRESS", `--host must be an IP address, not "${host}"`);
    // Saved state is read and checked before the port is taken, so a damaged store leaves nothing behind.
    const restore = this.loadPeerStates();
    const epoch = await this.loadEpoch();
    const socket = createSocket({ type: isIP(host) === 6 ? "udp6" : "udp4", lookup: ipLiteralLookup });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", (err: NodeJS.ErrnoException) => {
        socket.close();
        reject(
          err.code === "EADDRINUSE"
            ? new ChatNodeError(
                "PORT_IN_USE",
                `port ${port} on ${host} is already in use (is another node running?)`,
              )
            : new ChatNodeError("BIND_FAILED", `cannot listen on ${host}:${port}: ${err.message}`),
        );
      });
      socket.bind(port, host, () => resolve());
    });
    socket.on("error", () => {}); // after binding, errors are per-datagram: retransmission covers them
    this.socket = socket;
    this.boundPort = socket.address().port;
    this.wire = new FaultySocket(socket, () => this.faults, this.rng, this.faultCounters);
    const now = this.now();
    const engine = new Engine({
      crypto: withWrongKeyFaults(this.options.crypto, () => this.faults, this.rng, this.faultCounters),
      rng: this.rng,
      deliveryLog: {
        has: (from, msgId) => this.store.hasReceived(from, msgId),
        hasAnyFrom: (from) => this.store.hasReceivedFrom(from),
      },
      now,
      epoch,
      peers: [...this.contactsById.values()].map((c) => ({
        id: c.id,
        address: formatAddress(c.host, c.port),
      })),
      config: this.options.config,
      restore,
    });
    this.engine = engine;
    this.resubmitUnfinished(engine, now);
    socket.on("message", (bytes, rinfo) => this.onDatagram(bytes, formatAddress(rinfo.address, rinfo.port)));
    engine.handleTimeout(now);
    this.pump();
    this.emit("ready", {
      username: this.username,
      port: this.boundPort,
      address: formatAddress(host, this.boundPort),
    });
  }

  private now(): number {
    return Date.now();
  }

  /**
   * The epoch stays while our state is kept. A node that lost it (or never keeps it: --ephemeral) starts a newer
   * one, so peers treat its restarted sequence numbers as new rather than as replays. A new epoch is the next
   * whole second of the wall clock, and we wait for that second to begin (at most one second): two lives of a
   * node can then never share an epoch, however quickly it restarts.
   */
  private async loadEpoch(): Promise<number> {
    const saved = this.options.ephemeral ? undefined : this.store.getMeta(EPOCH_KEY);
    if (saved !== undefined) {
      const epoch = Number(saved);
      if (!Number.isInteger(epoch) || epoch <= 0 || epoch >= 2 ** 32)
        throw new StoreError(
          "DB_DAMAGED",
          `the saved epoch ${JSON.stringify(saved)} in ${this.store.location} is damaged`,
        );
      return epoch;
    }
    const epoch = Math.floor(Date.now() / 1000) + 1;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, epoch * 1000 - Date.now())));
    if (!this.options.ephemeral) this.store.setMeta(EPOCH_KEY, String(epoch));
    return epoch;
  }

  private loadPeerStates(): Map<PeerId, PeerSnapshot> {
    const out = new Map<PeerId, PeerSnapshot>();
    if (this.options.ephemeral) return out;
    for (const [peer, json] of this.store.loadPeerStates()) {
      try {
        out.set(peer, parsePeerSnapshot(json));
      } catch {
        throw new StoreError(
          "DB_DAMAGED",
          `the saved protocol state for peer ${peer} in ${this.store.location} is damaged`,
        );
      }
    }
    return out;
  }

  private resubmitUnfinished(engine: Engine, now: number): void {
    for (const message of this.store.unfinishedOutgoing()) {
      for (const r of message.recipients) {
        if (r.state === "delivered" || !this.contactsById.has(r.peer)) continue;
        // Failed for lack of an answer: wait for the peer to be heard from. Refused by the peer: leave it failed.
        if (r.state === "failed" && !isGiveUp(r.reason)) continue;
        engine.send(now, {
          kind: message.kind,
          to: [r.peer],
          text: message.text,
          msgId: message.msgId,
          sentAt: message.sentAt,
          parked: r.state === "failed",
        });
      }
    }
  }

  // ---- sending ----------------------------------------------------------------------------------------------

  broadcast(text: string): { msgId: MsgId; to: string[] } {
    return this.send("broadcast", text);
  }

  /** Sends to one peer, named by user name, port or key id. */
  sendPrivate(peer: string | number, text: string): { msgId: MsgId; to: string[] } {
    return this.send("private", text, [this.resolvePeer(peer).id]);
  }

  resolvePeer(peer: string | number): Contact {
    const key = String(peer).toLowerCase();
    for (const c of this.contactsById.values()) {
      if (c.name === key || String(c.port) === key || c.id === key) return c;
    }
    if (key === this.username || key === String(this.options.self.port))
      throw new ChatNodeError("UNKNOWN_PEER", "that is you: pick another user");
    throw new ChatNodeError("UNKNOWN_PEER", `no user "${peer}" in the directory (see /peers)`);
  }

  private send(kind: MessageKind, text: string, to?: PeerId[]): { msgId: MsgId; to: string[] } {
    const engine = this.running();
    const now = this.now();
    const result = engine.send(now, to ? { kind, text, to } : { kind, text });
    // Group commit: the outbox row is written by the pump, which runs once the caller's synchronous code is done,
    // in the same store transaction as the engine state and before the first datagram leaves or `queued` is
    // reported. A burst of sends shares that one transaction (a commit is most of what a send costs) and one
    // timer re-arm.
    this.outbox.push({
      msgId: result.msgId,
      kind,
      text,
      sentAt: now,
      recipients: result.to.map((peer) => ({ peer, state: "pending", updatedAt: now })),
    });
    this.schedulePump();
    return { msgId: result.msgId, to: result.to.map((id) => this.nameOf(id)) };
  }

  /** Sends again every message that failed for lack of an answer. Returns how many (message, peer) pairs. */
  retryFailed(peer?: string): number {
    const engine = this.running();
    const count = engine.retryFailed(this.now(), peer === undefined ? undefined : this.resolvePeer(peer).id);
    this.pump();
    return count;
  }

  // ---- the loop ---------------------------------------------------------------------------------------------

  private onDatagram(bytes: Buffer, from: string): void {
    const engine = this.engine;
    if (!engine || !this.wire?.admit()) return;
    const now = this.now();
    if (!this.admission.admit(from, now, () => engine.peerAddresses())) return;
    this.datagramsHandled++;
    engine.handleDatagram(now, from, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
    if (++this.handledSincePump >= PUMP_EVERY_DATAGRAMS) return this.pump();
    // Datagrams that arrive together are handled before one pump, so they share ACKs and one store transaction.
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      setImmediate(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
  }

  private sendPumpScheduled = false;
  /** Datagrams handed to the engine since the last pump. */
  private handledSincePump = 0;

  private schedulePump(): void {
    if (this.sendPumpScheduled) return;
    this.sendPumpScheduled = true;
    queueMicrotask(() => {
      this.sendPumpScheduled = false;
      this.pump();
    });
  }

  private timeoutScheduled = false;
  private timerDueAt = 0;
  /** Datagrams handed to the engine so far: tells a loop turn that read some from one that read none. */
  private datagramsHandled = 0;

  private onTimer(): void {
    this.timer = undefined;
    if (this.timeoutScheduled) return;
    this.timeoutScheduled = true;
    // The event loop runs timers before it reads the sockets. After the loop was busy (a burst of signature checks,
    // a descheduled process), the ACKs for frames now due are often already here unread, or about to be sent by a
    // pump of this same iteration (nodes sharing a process); libuv also reads at most 32 datagrams per socket per
    // turn. Retransmitting first costs a datagram and a receiver's work per frame and, under load, fills the
    // receivers' socket buffers so that the ACKs themselves are dropped. So the timeout is handled after the loop
    // turns that are still reading datagrams: one if the timer fired on time, a few at most if it fired late.
    const turns = this.now() - this.timerDueAt >= TIMER_LATE_MS ? TIMEOUT_DEFER_TURNS : 1;
    setImmediate(() => this.timeoutAfterQuietTurn(0, turns));
  }

  /** Runs in a check phase; a setImmediate queued from here runs after the next poll phase. */
  private timeoutAfterQuietTurn(turn: number, turns: number): void {
    const seen = this.datagramsHandled;
    setImmediate(() => {
      const busy = this.datagramsHandled !== seen;
      if (busy && turn + 1 < turns) return this.timeoutAfterQuietTurn(turn + 1, turns);
      this.timeoutScheduled = false;
      const engine = this.engine;
      if (!engine) return;
      engine.handleTimeout(this.now());
      this.pump();
    });
  }

  /** Persist, then report, then transmit, then re-arm the timer. The order is the durability guarantee. */
  private pump(rearm = true): void {
    this.handledSincePump = 0;
    const engine = this.engine;
    if (!engine) return;
    const events: EngineEvent[] = [];
    for (let e = engine.pollEvent(); e; e = engine.pollEvent()) events.push(e);
    const dirty = engine.drainDirtyState();
    const queued = this.outbox.splice(0);
    let fresh: EngineEvent[] = [];
    try {
      if (events.length > 0 || dirty.length > 0 || queued.length > 0)
        fresh = this.store.transaction(() => {
          for (const m of queued) this.store.addOutgoing(m);
          const kept: EngineEvent[] = [];
          for (const e of events) if (this.persist(e)) kept.push(e);
          for (const [peer, snapshot] of dirty) this.store.savePeerState(peer, JSON.stringify(snapshot));
          return kept;
        });
    } catch (error) {
      // Nothing was written and nothing sent: the next pump writes these outbox rows before any datagram leaves.
      this.outbox.unshift(...queued);
      throw error;
    }
    for (const m of queued)
      this.emit("queued", { msgId: m.msgId, kind: m.kind, to: m.recipients.map((r) => this.nameOf(r.peer)) });
    for (const e of fresh) this.report(e);
    for (let t = engine.pollTransmit(); t; t = engine.pollTransmit()) this.wire?.send(t.to, t.bytes);
    if (rearm) this.arm(engine);
  }

  private arm(engine: Engine): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const at = engine.pollTimeout();
    if (at === undefined || !this.socket) return;
    this.timerDueAt = at;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, at - this.now()));
  }

  /** Writes what an event changes; false for an event that must not be reported (a message already stored). */
  private persist(e: EngineEvent): boolean {
    const now = this.now();
    switch (e.type) {
      case "message":
        return this.store.addReceived({
          msgId: e.msgId,
          from: e.from,
          kind: e.kind,
          text: e.text,
          sentAt: e.sentAt,
          receivedAt: now,
        });
      case "delivered":
        this.store.setRecipientState(e.msgId, e.to, "delivered", now);
        return true;
      case "failed":
        this.store.setRecipientState(e.msgId, e.to, "failed", now, e.detail);
        return true;
      case "peer-online":
        this.store.upsertPeer({ id: e.peer, address: e.address, lastSeen: now });
        return true;
      default:
        return true;
    }
  }

  private report(e: EngineEvent): void {
    switch (e.type) {
      case "message":
        this.emit("message", {
          msgId: e.msgId,
          from: this.nameOf(e.from),
          fromId: e.from,
          kind: e.kind,
          text: e.text,
          sentAt: e.sentAt,
          receivedAt: this.now(),
        });
        return;
      case "delivered":
        this.emit("delivered", { msgId: e.msgId, to: this.nameOf(e.to), toId: e.to, tries: e.tries });
        return;
      case "failed":
        this.emit("failed", {
          msgId: e.msgId,
          to: this.nameOf(e.to),
          toId: e.to,
          reason: e.detail,
          code: e.reason,
        });
        return;
      case "rejected":
        this.emit(
          "rejected",
          e.from
            ? { reason: e.reason, from: this.nameOf(e.from), address: e.address }
            : { reason: e.reason, address: e.address },
        );
        return;
      case "duplicate":
        this.emit(
          "duplicate",
          e.msgId ? { from: this.nameOf(e.from), msgId: e.msgId } : { from: this.nameOf(e.from) },
        );
        return;
      case "peer-online":
        this.emit("peer-online", { peer: this.nameOf(e.peer), id: e.peer, address: e.address });
        return;
      case "peer-offline":
        this.emit("peer-offline", { peer: this.nameOf(e.peer), id: e.peer });
        return;
    }
  }

  // ---- queries and control ----------------------------------------------------------------------------------

  nameOf(id: PeerId): string {
    return this.contactsById.get(id)?.name ?? id;
  }

  contacts(): Contact[] {
    return [...this.contactsById.values()];
  }

  peers(): PeerView[] {
    return this.running()
      .peers()
      .map((p) => ({
        id: p.id,
        name: this.nameOf(p.id),
        address: p.address,
        online: p.online,
        lastSeen: p.lastHeard,
        rttMs: p.srttMs,
        inFlight: p.inFlight,
        queued: p.queued,
        parked: p.parked,
        fingerprint: this.contactsById.get(p.id)?.fingerprint,
      }));
  }

  stats(): NodeStats {
    let pending = 0;
    for (const m of this.store.unfinishedOutgoing())
      pending += m.recipients.filter((r) => r.state !== "delivered").length;
    return {
      ...this.running().stats(),
      faults: { ...this.faultCounters },
      admission: this.admission.stats(),
      pending,
    };
  }

  history(limit: number): HistoryEntry[] {
    return this.store.history(limit);
  }

  setFaults(change: Partial<FaultConfig>): FaultConfig {
    this.faults = { ...this.faults, ...change };
    return { ...this.faults };
  }

  getFaults(): FaultConfig {
    return { ...this.faults };
  }

  private running(): Engine {
    if (!this.engine || this.closing) throw new ChatNodeError("NOT_RUNNING", "the node is not running");
    return this.engine;
  }

  /**
   * Stops: waits up to closeGraceMs for ACKs of frames in flight (whatever is still unacknowledged stays in the
   * outbox and is re-sent at the next start), then closes the socket and the store.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const engine = this.engine;
    const graceMs = this.options.closeGraceMs ?? 1000;
    const deadline = Date.now() + graceMs;
    while (engine && Date.now() < deadline && engine.peers().some((p) => p.inFlight > 0 && p.online)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // Persist what is left and send the ACKs we owe, without re-arming the timer.
    this.pump(false);
    this.engine = undefined;
    this.wire?.close();
    await new Promise<void>((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
    this.socket = undefined;
    this.store.close();
    this.options.onClose?.();
  }
}
