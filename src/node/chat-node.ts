/**
 * ChatNode: the engine bound to one UDP socket, one loop (loop.ts) and a Store (through pump.ts). Every event is
 * persisted before it is reported, and before any datagram that acknowledges it leaves: a crash at any point loses
 * nothing and shows nothing twice.
 */
import type { Socket } from "node:dgram";
import { EventEmitter } from "node:events";
import { isIP } from "node:net";
import { Engine } from "../engine/engine.ts";
import type { PeerSnapshot } from "../engine/peer.ts";
import type { MessageKind, MsgId, PeerId } from "../engine/types.ts";
import { withWrongKeyFaults } from "../faults/faulty-crypto.ts";
import { type FaultConfig, NO_FAULTS, newFaultCounters } from "../faults/plan.ts";
import type { SessionEvent } from "../session/events.ts";
import { staticKeyPair } from "../session/handshake.ts";
import { handshakeMemoryIn, sessionPeers } from "../session/key-source.ts";
import { Sessions } from "../session/sessions.ts";
import { DEFAULT_TIMING } from "../session/timing.ts";
import type { HistoryEntry, Store } from "../storage/store.ts";
import { formatAddress } from "./address.ts";
import { Admission } from "./admission.ts";
import { bindNodeSocket } from "./bind-socket.ts";
import { describeChanges, diffContacts, isEmpty } from "./contact-changes.ts";
import { reportCommitted } from "./engine-reports.ts";
import { ChatNodeError } from "./errors.ts";
import { FaultySocket } from "./faulty-socket.ts";
import { type LanHost, LanRuntime, lanReachable } from "./lan-runtime.ts";
import { type LoopClock, NodeLoop } from "./loop.ts";
import { systemClock } from "./loop-clock.ts";
import { EnginePump } from "./pump.ts";
import { CryptoRng } from "./random.ts";
import { resolvePeer } from "./resolve-peer.ts";
import { chooseEpoch, loadPeerSnapshots, resubmitOutbox } from "./restore.ts";
import { combinedTimers, Tunnel } from "./tunnel.ts";
import type {
  ChatNodeEvents,
  ChatNodeOptions,
  Contact,
  ContactChanges,
  NodeStats,
  PeerView,
  SentView,
} from "./types.ts";

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
  private loop: NodeLoop | undefined;
  private pump: EnginePump | undefined;
  private tunnel: Tunnel | undefined;
  private lan: LanRuntime | undefined;
  private readonly clock: LoopClock;
  private closing: Promise<void> | undefined;
  private boundPort = 0;
  /** host:port we listen on, to drop our own datagrams (see onDatagram). */
  private selfAddress = "";

  constructor(options: ChatNodeOptions) {
    super();
    this.options = options;
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.faults = { ...NO_FAULTS, ...options.faults };
    for (const c of options.contacts) if (c.id !== options.self.id) this.contactsById.set(c.id, c);
  }

  get username(): string {
    return this.options.self.name;
  }

  get port(): number {
    return this.boundPort;
  }

  /** The address the socket is bound to (as given: 0.0.0.0 stays 0.0.0.0). */
  get host(): string {
    return this.options.host ?? this.options.self.host;
  }

  /** Binds the socket, restores state, re-sends what was pending before a restart and announces itself. */
  async start(): Promise<void> {
    const host = this.host;
    const port = this.options.port ?? this.options.self.port;
    if (!isIP(host)) throw new ChatNodeError("BAD_ADDRESS", `--host must be an IP address, not "${host}"`);
    // Saved state is read and checked before the port is taken, so a damaged store leaves nothing behind.
    const restore = this.loadPeerStates();
    const epoch = await this.chooseEpoch();
    const socket = await bindNodeSocket(host, port);
    this.socket = socket;
    this.boundPort = socket.address().port;
    this.selfAddress = formatAddress(host, this.boundPort);
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
    const keys = this.options.sessionKeys;
    const sessions = new Sessions(
      staticKeyPair(keys.privateKey),
      sessionPeers(this.contactAddresses(), keys),
      (n) => this.rng.bytes(n),
      DEFAULT_TIMING,
      handshakeMemoryIn(this.store),
    );
    const tunnel = new Tunnel(
      sessions,
      engine,
      (to, bytes) => this.wire?.send(to, bytes),
      (e) => this.onSessionEvent(e),
    );
    this.tunnel = tunnel;
    this.pump = new EnginePump(engine, this.store, () => this.now(), {
      committed: (queued, events) =>
        reportCommitted(queued, events, this.waitingAtSend, (id) => this.nameOf(id), this.now(), this),
      transmit: (_to, bytes, peer) => {
        for (const b of this.wire?.tamper(bytes) ?? [bytes]) tunnel.outbound(this.now(), peer, b);
      },
    });
    this.loop = new NodeLoop(this.clock, combinedTimers(engine, tunnel), () => this.pump?.flush());
    resubmitOutbox(engine, this.store, now, (peer) => this.contactsById.has(peer));
    socket.on("message", (bytes, rinfo) => this.onDatagram(bytes, formatAddress(rinfo.address, rinfo.port)));
    engine.handleTimeout(now);
    this.loop.pumpNow();
    if (this.options.lan && lanReachable(host)) {
      this.on("peer-online", (e) => this.lan?.onPeerOnline(e.id, e.address));
      this.lan = new LanRuntime(this.lanHost(), this.clock, host);
    }
    this.emit("ready", {
      username: this.username,
      port: this.boundPort,
      address: formatAddress(host, this.boundPort),
    });
  }

  private lanHost(): LanHost {
    return {
      selfId: this.options.self.id,
      port: this.boundPort,
      contactIds: () => [...this.contactsById.keys()],
      peers: () => this.engine?.peers() ?? [],
      tryAddress: (peer, address) => this.tryAddress(peer, address),
      found: (peer, address) => this.emit("lan-found", { peer: this.nameOf(peer), id: peer, address }),
    };
  }

  /**
   * Sends `peer` a handshake initiation at `address`, a place it may be (LAN discovery), beside whatever runs to
   * its known address. Nothing moves yet: only the session's authenticated answer makes `address` the peer's.
   */
  tryAddress(peer: PeerId, address: string): void {
    if (!this.engine || this.closing) return;
    this.tunnel?.tryAddress(this.now(), peer, address);
    this.loop?.pumpNow(); // the session's retry timer is new: the loop re-arms to it
  }

  private now(): number {
    return this.clock.now();
  }

  /** This life's epoch, once its second has begun (restore.ts says why). */
  private async chooseEpoch(): Promise<number> {
    const { epoch, startsAt } = chooseEpoch(this.store, this.now(), !this.options.ephemeral);
    const waitMs = startsAt - this.now();
    if (waitMs > 0) await new Promise((resolve) => this.clock.setTimer(() => resolve(undefined), waitMs));
    return epoch;
  }

  private loadPeerStates(): Map<PeerId, PeerSnapshot> {
    return this.options.ephemeral ? new Map() : loadPeerSnapshots(this.store);
  }

  // ---- sending ----------------------------------------------------------------------------------------------

  broadcast(text: string): SentView {
    return this.send("broadcast", text);
  }

  /** Sends to one peer, named by user name, port or key id. */
  sendPrivate(peer: string | number, text: string): SentView {
    return this.send("private", text, [this.resolvePeer(peer).id]);
  }

  resolvePeer(peer: string | number): Contact {
    return resolvePeer(peer, [...this.contactsById.values()], this.options.self);
  }

  private send(kind: MessageKind, text: string, to?: PeerId[]): SentView {
    const engine = this.running();
    const now = this.now();
    const result = engine.send(now, to ? { kind, text, to } : { kind, text });
    // Group commit: the outbox row is written by the pump, which runs once the caller's synchronous code is done,
    // in the same store transaction as the engine state and before the first datagram leaves or `queued` is
    // reported. A burst of sends shares that one transaction (a commit is most of what a send costs) and one
    // timer re-arm.
    this.pump?.queueOutgoing({
      msgId: result.msgId,
      kind,
      text,
      sentAt: now,
      recipients: result.to.map((peer) => ({ peer, state: "pending", updatedAt: now })),
    });
    const view = {
      msgId: result.msgId,
      to: result.to.map((id) => this.nameOf(id)),
      waiting: result.waiting.map((id) => this.nameOf(id)),
    };
    this.waitingAtSend.set(result.msgId, view.waiting);
    this.loop?.sent();
    return view;
  }

  /** Recipients not heard from when each message in the outbox was sent, for its `queued` event. */
  private readonly waitingAtSend = new Map<MsgId, string[]>();

  /**
   * Probes now every peer a message waits for (or `peer`), instead of at its backed-off time; messages go as soon
   * as the peer answers. Returns how many (message, peer) pairs wait.
   */
  retryWaiting(peer?: string): number {
    const engine = this.running();
    const count = engine.retryWaiting(this.now(), peer === undefined ? undefined : this.resolvePeer(peer).id);
    this.loop?.pumpNow();
    return count;
  }

  // ---- the loop ---------------------------------------------------------------------------------------------

  private onDatagram(bytes: Buffer, from: string): void {
    const engine = this.engine;
    if (!engine || !this.wire?.admit()) return;
    const now = this.now();
    // Our own probes, sent to a contact whose address hint is ours (a default copied from another machine).
    if (from === this.selfAddress) return;
    if (!this.admission.admit(from, now, () => engine.peerAddresses())) return;
    this.tunnel?.inbound(now, from, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
    this.loop?.datagramHandled();
  }

  /** What the session layer says that a user must hear; its other refusals are counted in stats().sessions. */
  private onSessionEvent(e: SessionEvent): void {
    if (e.type === "old-protocol")
      this.emit("rejected", { reason: `peer speaks protocol v${e.version}`, address: e.from });
    // The client says how to fix it: import their contact.
    else if (e.type === "unknown-key") this.emit("rejected", { reason: "unknown-sender", address: e.from });
  }

  private contactAddresses(): { id: PeerId; address: string }[] {
    return [...this.contactsById.values()].map((c) => ({ id: c.id, address: formatAddress(c.host, c.port) }));
  }

  // ---- contacts ---------------------------------------------------------------------------------------------

  /**
   * Takes the directory as it is now: contacts imported, re-addressed, re-keyed or removed while the node runs
   * take effect at once. A new contact's saved state and its waiting messages are picked up from the store.
   */
  updateContacts(contacts: readonly Contact[]): ContactChanges {
    const engine = this.running();
    const now = this.now();
    const next = new Map<PeerId, Contact>();
    for (const c of contacts) if (c.id !== this.options.self.id) next.set(c.id, c);
    const diff = diffContacts(this.contactsById, next);
    for (const c of diff.removed) engine.removePeer(c.id);
    for (const c of diff.readdressed)
      engine.addPeer({ id: c.id, address: formatAddress(c.host, c.port) }, now);
    this.contactsById.clear();
    for (const [id, c] of next) this.contactsById.set(id, c);
    this.tunnel?.sessions.setPeers(sessionPeers(this.contactAddresses(), this.options.sessionKeys));
    this.lan?.setContacts(next.keys());
    if (diff.added.length > 0) {
      const saved = this.loadPeerStates();
      for (const c of diff.added)
        engine.addPeer({ id: c.id, address: formatAddress(c.host, c.port) }, now, saved.get(c.id));
      const added = new Set(diff.added.map((c) => c.id));
      resubmitOutbox(engine, this.store, now, (peer) => this.contactsById.has(peer), added);
    }
    const changes = describeChanges(diff);
    this.loop?.pumpNow();
    if (!isEmpty(changes)) this.emit("contacts", changes);
    return changes;
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
      sessions: (this.tunnel as Tunnel).sessions.stats(),
      lan: this.lan?.stats(),
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
    const deadline = this.now() + graceMs;
    while (engine && this.now() < deadline && engine.peers().some((p) => p.inFlight > 0 && p.online)) {
      await new Promise((r) => this.clock.setTimer(() => r(undefined), 10));
    }
    this.loop?.stop();
    // Peers that hear from us are told we leave, so they show us offline now rather than 16 s from now.
    engine?.leave(this.now());
    // Persist what is left and send the ACKs we owe, without re-arming the timer.
    this.pump?.flush();
    await this.lan?.close();
    this.tunnel?.sessions.eraseAll();
    this.engine = undefined;
    this.wire?.close();
    await new Promise<void>((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
    this.socket = undefined;
    this.store.close();
    this.emit("closed");
  }
}
