/**
 * The simulated cluster: N engines on one virtual clock over a VirtualNetwork, each with the durable store a
 * runtime would keep (peer snapshots, the delivery log, the outbox), crash and restart from that store, and every
 * step reported to an observer (the invariant checker). After every engine call it runs the runtime's own pump
 * (src/node/pump.ts: persist, then report, then transmit) on an in-memory Store, and a restart takes the epoch,
 * the peer state and the outbox from that store with the runtime's own code (src/node/restore.ts). A power loss
 * (crashAtNextCommit) strikes inside the node's next store transaction: nothing of that flush is written, reported
 * or sent, which is what the pump's order must make harmless. Between each engine and the network runs the
 * runtime's session layer (src/node/tunnel.ts): what the network carries is sealed, and a crash loses the sessions.
 */

import { generateSecretKeys, peerIdOf, publicKeysOf, type SecretKeys } from "../src/crypto/keys.ts";
import { createCryptoPort, staticKeyDirectory } from "../src/crypto/port.ts";
import type { EngineConfig } from "../src/engine/config.ts";
import { Engine } from "../src/engine/engine.ts";
import type { EngineEvent } from "../src/engine/events.ts";
import { type PeerSnapshot, parsePeerSnapshot } from "../src/engine/peer.ts";
import type { CryptoPort } from "../src/engine/ports.ts";
import { type EngineStats, newStats } from "../src/engine/stats.ts";
import type { Address, MessageKind, MsgId, PeerId } from "../src/engine/types.ts";
import { WakeQueue } from "../src/engine/wake-queue.ts";
import { decode, PacketType, packetTypeOf } from "../src/engine/wire.ts";
import type { SeededRng } from "../src/faults/seeded-rng.ts";
import { EnginePump } from "../src/node/pump.ts";
import { chooseEpoch, loadPeerSnapshots, resubmitOutbox } from "../src/node/restore.ts";
import { combinedTimers, Tunnel } from "../src/node/tunnel.ts";
import type { SessionStats } from "../src/session/events.ts";
import { staticKeyPair } from "../src/session/handshake.ts";
import { handshakeMemoryIn } from "../src/session/key-source.ts";
import { Sessions } from "../src/session/sessions.ts";
import { DEFAULT_TIMING, type SessionTiming } from "../src/session/timing.ts";
import { createMemoryStore } from "../src/storage/memory.ts";
import type { Store } from "../src/storage/store.ts";
import { ModelCrypto, type ModelKeys, modelKeys } from "./model-crypto.ts";
import { type LinkProfile, VirtualNetwork } from "./network.ts";

/** An outgoing message as the user wrote it, for the observer; the store keeps its recipients' states. */
export interface OutboxEntry {
  msgId: MsgId;
  kind: MessageKind;
  text: string;
  sentAt: number;
  recipients: Map<PeerId, "pending">;
}

export interface SimNode {
  readonly index: number;
  readonly id: PeerId;
  readonly address: Address;
  /** Kept across restarts (restore.ts): the state is kept, so the sequence numbers stay valid. */
  epoch: number;
  engine: Engine | undefined;
  /** What survives a crash: exactly what the runtime persists. */
  readonly store: Store;
  pump: EnginePump | undefined;
  /** The session layer: memory only, so a crash loses it and a restart handshakes afresh. */
  tunnel: Tunnel | undefined;
  /** The node's long-term X25519 key (its Noise static key), kept across restarts. */
  readonly sessionSecret: Uint8Array;
  /** Session counters of earlier incarnations. */
  readonly pastSessions: SessionStats[];
  /** Engine counters of earlier incarnations, added up at each crash. */
  readonly pastStats: EngineStats;
  /** Messages the user wrote that no commit has stored yet: a power loss takes them, so they count as sent only
   * once committed (as the runtime tells its user only then). */
  readonly uncommitted: Map<MsgId, OutboxEntry>;
  /** Set by crashAtNextCommit: called when the power loss strikes. */
  powerLoss: (() => void) | undefined;
}

/** What the checker (or a tracer) sees. `step` numbers every step of the run, for reports and replays. */
export interface ClusterObserver {
  onSend(step: number, now: number, node: number, entry: OutboxEntry): void;
  onEvent(step: number, now: number, node: number, event: EngineEvent): void;
  /** A DATA frame handed to the network (first transmission or a retransmission). */
  onDataFrame(step: number, now: number, node: number, frame: DataFrameInfo): void;
  onCrash(step: number, now: number, node: number): void;
  onRestart(step: number, now: number, node: number): void;
  /** After every step, with the clock at its time. */
  afterStep(step: number, now: number): void;
}

export interface DataFrameInfo {
  recipient: PeerId;
  msgId: MsgId;
  seq: number;
  fragCount: number;
}

export interface ClusterOptions {
  nodes: number;
  seed: number;
  /** The virtual clock's start, in ms. */
  startMs: number;
  /** N × N link profiles, row = sender. */
  links: readonly LinkProfile[];
  config?: Partial<EngineConfig>;
  /** Real Ed25519 / HPKE / HMAC instead of the fast model. */
  realCrypto?: boolean;
  /** Session timers other than the runtime's (the simulator rekeys faster in some seeds). */
  sessionTiming?: Partial<SessionTiming>;
}

export interface SendPlan {
  kind: MessageKind;
  /** Node indices; absent for a broadcast to every peer. */
  to?: readonly number[];
  text: string;
}

/** An exception thrown by the engine (or by the harness while driving it): the seed's run stops. */
export class SimCrash extends Error {
  constructor(
    readonly node: number | undefined,
    readonly step: number,
    readonly now: number,
    readonly what: string,
    readonly error: unknown,
  ) {
    super(`${what} threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    this.name = "SimCrash";
  }
}

/** The power failing while a node's store commits: the transaction writes nothing and the node is down. */
class PowerLoss extends Error {
  constructor(readonly node: number) {
    super(`power loss at node ${node}`);
    this.name = "PowerLoss";
  }
}

/** The engine never lets the clock move on (a timeout that is always due), or a run takes far too many steps. */
export class SimStall extends Error {
  constructor(
    readonly node: number | undefined,
    readonly step: number,
    readonly now: number,
    detail: string,
  ) {
    super(detail);
    this.name = "SimStall";
  }
}

/** Steps allowed at one instant of virtual time before the run counts as spinning. */
const SAME_TIME_STEPS_MAX = 200_000;
const STEPS_MAX = 20_000_000;

type CryptoFactory = (node: SimNode, rng: SeededRng) => CryptoPort;

export class Cluster {
  now: number;
  step = 0;
  readonly nodes: SimNode[];
  readonly network: VirtualNetwork;
  crashes = 0;
  restarts = 0;
  sendsSkipped = 0;
  private sameTimeSteps = 0;
  private readonly byAddress = new Map<Address, number>();
  private readonly byId = new Map<PeerId, number>();
  /** Every running node's next timer, earliest first. */
  private readonly timers = new WakeQueue<SimNode>();
  private readonly makeCrypto: CryptoFactory;
  /** Sees every datagram a node hands to the network, sealed (the network attacker's eyes). */
  tap: ((from: number, to: number, bytes: Uint8Array) => void) | undefined;
  /** Sees every engine datagram before its session seals it (the eyes of one who holds a link's session keys). */
  innerTap: ((from: number, to: number, bytes: Uint8Array) => void) | undefined;

  constructor(
    private readonly options: ClusterOptions,
    private readonly rng: SeededRng,
    private readonly observer: ClusterObserver,
  ) {
    this.now = options.startMs;
    this.network = new VirtualNetwork(rng.fork(), options.nodes, options.links);
    const ids: PeerId[] = [];
    if (options.realCrypto) {
      const secrets: SecretKeys[] = [];
      for (let i = 0; i < options.nodes; i++) secrets.push(generateSecretKeys((n) => rng.bytes(n)));
      const publics = secrets.map(publicKeysOf);
      const directory = staticKeyDirectory(publics);
      for (const p of publics) ids.push(peerIdOf(p));
      this.makeCrypto = (node, engineRng) =>
        createCryptoPort({
          identity: secrets[node.index] as SecretKeys,
          directory,
          randomBytes: (n) => engineRng.bytes(n),
        });
    } else {
      const keys: ModelKeys[] = [];
      for (let i = 0; i < options.nodes; i++) keys.push(modelKeys(options.seed, i));
      const directory = new Map(keys.map((k) => [k.id, k]));
      for (const k of keys) ids.push(k.id);
      this.makeCrypto = (node) => new ModelCrypto(keys[node.index] as ModelKeys, directory);
    }
    if (new Set(ids).size !== ids.length) throw new Error("two simulated nodes drew the same key id");
    this.nodes = ids.map((id, index) => ({
      index,
      id,
      address: `10.${(index >> 8) & 255}.${index & 255}.1:7000`,
      epoch: 0,
      engine: undefined,
      store: createMemoryStore(),
      pump: undefined,
      tunnel: undefined,
      sessionSecret: rng.bytes(32),
      pastSessions: [],
      pastStats: newStats(),
      uncommitted: new Map(),
      powerLoss: undefined,
    }));
    for (const n of this.nodes) {
      this.byAddress.set(n.address, n.index);
      this.byId.set(n.id, n.index);
    }
    for (const n of this.nodes) this.boot(n);
    for (const n of this.nodes) this.flush(n);
  }

  /**
   * Whether `receiver`'s persisted state holds `msgId` from `sender` whole and checked, waiting only for earlier
   * messages to be delivered (the engine acknowledges such a message: it is durable and will be delivered).
   */
  holds(receiver: number, sender: number, msgId: MsgId): boolean {
    const recv = this.savedSnapshot(receiver, sender)?.recv;
    if (!recv) return false;
    return recv.complete.some((c) => c[2] === msgId && c[5] !== null);
  }

  isUp(index: number): boolean {
    return this.node(index).engine !== undefined;
  }

  /** A user at node `index` writes a message. Returns its id, or undefined if the node is down. */
  /** `plans` written by node `index` in one turn of its event loop: queued one after another, then one flush. */
  send(index: number, plans: readonly SendPlan[]): MsgId[] {
    const node = this.node(index);
    const engine = node.engine;
    if (!engine) {
      this.sendsSkipped += plans.length;
      return [];
    }
    this.step++;
    const ids: MsgId[] = [];
    for (const plan of plans) {
      const to = plan.to?.map((j) => this.node(j).id);
      const sentAt = this.now;
      const result = this.guard(node, "send", () =>
        engine.send(
          this.now,
          to ? { kind: plan.kind, to, text: plan.text } : { kind: plan.kind, text: plan.text },
        ),
      );
      const entry: OutboxEntry = {
        msgId: result.msgId,
        kind: plan.kind,
        text: plan.text,
        sentAt,
        recipients: new Map(result.to.map((p) => [p, "pending"])),
      };
      // The pump stores the outgoing message before anything of it goes out; the observer hears of it then.
      node.pump?.queueOutgoing({
        ...entry,
        recipients: result.to.map((peer) => ({ peer, state: "pending", updatedAt: sentAt })),
      });
      node.uncommitted.set(entry.msgId, entry);
      ids.push(entry.msgId);
    }
    this.flush(node);
    return ids;
  }

  /** Drops the engine and every datagram in flight to it; its durable store stays. */
  crash(index: number): void {
    const node = this.node(index);
    const engine = node.engine;
    if (!engine) return;
    this.step++;
    addStats(node.pastStats, engine.stats());
    if (node.tunnel) node.pastSessions.push(node.tunnel.sessions.stats());
    node.tunnel?.sessions.eraseAll();
    node.engine = undefined;
    node.pump = undefined;
    node.tunnel = undefined;
    node.uncommitted.clear();
    node.powerLoss = undefined;
    this.setWake(node, undefined);
    this.crashes++;
    this.network.dropInFlightTo(index);
    this.observer.onCrash(this.step, this.now, index);
  }

  /**
   * Arms a power loss inside `index`'s next store commit (the next flush with anything to write); `strike` is
   * called once it has happened. Returns false if the node is down.
   */
  crashAtNextCommit(index: number, strike: () => void): boolean {
    const node = this.node(index);
    if (!node.engine) return false;
    node.powerLoss = strike;
    return true;
  }

  /** Disarms a power loss that has not struck yet (only `strike`'s, if given). */
  cancelPowerLoss(index: number, strike?: () => void): void {
    const node = this.node(index);
    if (strike === undefined || node.powerLoss === strike) node.powerLoss = undefined;
  }

  /** A new engine from the persisted snapshots; every unfinished outgoing message is submitted again. */
  restart(index: number): void {
    const node = this.node(index);
    if (node.engine) return;
    this.step++;
    this.boot(node);
    this.restarts++;
    this.observer.onRestart(this.step, this.now, index);
    const engine = node.engine as Engine | undefined;
    if (!engine) return;
    this.guard(node, "send (resubmit after restart)", () =>
      resubmitOutbox(engine, node.store, this.now, (peer) => peer !== node.id),
    );
    this.flush(node);
  }

  /**
   * Runs every datagram and timer due at or before `until`, then sets the clock to `until`. Stops early, with the
   * clock where it is, once `stop()` says so (checked between steps).
   */
  runUntil(until: number, stop?: () => boolean): void {
    for (;;) {
      if (stop?.()) return;
      const net = this.network.nextAt();
      const timer = this.nextTimer();
      // A datagram first on a tie: the order is arbitrary but must be fixed, for replays.
      const useNet = net !== undefined && (timer === undefined || net <= timer.at);
      const at = useNet ? net : timer?.at;
      if (at === undefined || at > until) break;
      this.advanceTo(at, useNet ? undefined : timer?.node);
      this.step++;
      if (useNet) this.deliverNext();
      else if (timer) this.fire(timer.node);
      this.observer.afterStep(this.step, this.now);
    }
    if (until > this.now) this.now = until;
  }

  /** Hands a datagram to the network now, as if `from` had sent it (a replay, a forgery). */
  inject(from: number, to: number, bytes: Uint8Array): void {
    this.network.send(this.now, from, to, bytes);
  }

  /**
   * Seals an engine datagram under `from`'s session with `to` and sends it, as `from`'s runtime would: the lies
   * of a peer holding its own keys, or of one holding that link's session keys. Nothing if `from` is down.
   */
  injectInner(from: number, to: number, bytes: Uint8Array): void {
    const node = this.node(from);
    if (!node.tunnel) return;
    node.tunnel.outbound(this.now, this.node(to).id, bytes);
    this.flush(node);
  }

  /** Every node's session counters, past incarnations included. */
  sessionStats(): SessionStats[] {
    const out: SessionStats[] = [];
    for (const n of this.nodes) {
      out.push(...n.pastSessions);
      if (n.tunnel) out.push(n.tunnel.sessions.stats());
    }
    return out;
  }

  /** A crypto port holding `index`'s keys, for an adversary that holds them. */
  cryptoFor(index: number, rng: SeededRng): CryptoPort {
    return this.makeCrypto(this.node(index), rng);
  }

  /** The next seq `sender` will give a frame to `receiver`, as its persisted state says. */
  nextSeqOf(sender: number, receiver: number): number {
    return this.savedSnapshot(sender, receiver)?.nextSeq ?? 0;
  }

  /** What `owner` has persisted about `peer`, as its next start would read it. */
  private savedSnapshot(owner: number, peer: number): PeerSnapshot | undefined {
    const json = this.node(owner).store.loadPeerStates().get(this.node(peer).id);
    return json === undefined ? undefined : parsePeerSnapshot(json);
  }

  /** Every node's engine counters, past incarnations included. */
  totalStats(): EngineStats {
    const total = newStats();
    for (const n of this.nodes) {
      addStats(total, n.pastStats);
      if (n.engine) addStats(total, n.engine.stats());
    }
    return total;
  }

  private indexOf(peer: PeerId): number | undefined {
    return this.byId.get(peer);
  }

  node(index: number): SimNode {
    const node = this.nodes[index];
    if (!node) throw new RangeError(`no node ${index}`);
    return node;
  }

  private advanceTo(at: number, node: SimNode | undefined): void {
    if (at > this.now) {
      this.now = at;
      this.sameTimeSteps = 0;
    } else if (++this.sameTimeSteps > SAME_TIME_STEPS_MAX) {
      throw new SimStall(
        node?.index,
        this.step,
        this.now,
        `virtual time stopped at ${this.now}: ${SAME_TIME_STEPS_MAX} steps without the clock moving` +
          (node ? ` (node ${node.index}'s pollTimeout() stays due)` : ""),
      );
    }
    if (this.step >= STEPS_MAX) throw new SimStall(node?.index, this.step, this.now, "too many steps");
  }

  /**
   * The node whose timer fires first, and when: the earliest whole-ms wake time, the lowest index on a tie. (Of
   * several timers already past, that is the earliest one, not the lowest index: a fixed order either way.)
   */
  private nextTimer(): { at: number; node: SimNode } | undefined {
    const first = this.timers.first();
    // A timer never fires in the past.
    return first && { at: Math.max(this.now, first.at), node: first.peer };
  }

  /** Files the engine's pollTimeout() after its last call; undefined while it is down or idle. */
  private setWake(node: SimNode, wakeAt: number | undefined): void {
    // The runtime's clock ticks in whole ms.
    this.timers.schedule(node, node.index, wakeAt === undefined ? undefined : Math.ceil(wakeAt));
  }

  private deliverNext(): void {
    const d = this.network.pop();
    if (!d) return;
    const node = this.node(d.to);
    const tunnel = node.tunnel;
    if (!tunnel) {
      this.network.noteDropped("down-drop");
      return;
    }
    this.network.datagramsDelivered++;
    const from = this.node(d.from).address;
    this.guard(node, "handleDatagram", () => tunnel.inbound(this.now, from, d.bytes));
    this.flush(node);
  }

  private fire(node: SimNode): void {
    const engine = node.engine;
    const tunnel = node.tunnel;
    if (!engine || !tunnel) return;
    this.guard(node, "handleTimeout", () => combinedTimers(engine, tunnel).handleTimeout(this.now));
    this.flush(node);
  }

  /** A new engine from the node's store, as ChatNode.start builds one. */
  private boot(node: SimNode): void {
    const engineRng = this.rng.fork();
    const crypto = this.makeCrypto(node, engineRng);
    const store = node.store;
    // Each life of a simulated node uses its one store, whose saved epoch + 1 makes it newer than the last: no life
    // without the store exists here, so none needs the wait for the epoch's second.
    node.epoch = this.guard(node, "chooseEpoch", () => chooseEpoch(store, this.now, true).epoch);
    const restore = this.guard(node, "loadPeerSnapshots", () => loadPeerSnapshots(store));
    const engine = this.guard(
      node,
      "new Engine",
      () =>
        new Engine({
          crypto,
          rng: engineRng,
          deliveryLog: {
            has: (from, msgId) => store.hasReceived(from, msgId),
            hasAnyFrom: (from) => store.hasReceivedFrom(from),
          },
          now: this.now,
          epoch: node.epoch,
          peers: this.nodes.filter((n) => n !== node).map((n) => ({ id: n.id, address: n.address })),
          ...(this.options.config ? { config: this.options.config } : {}),
          restore,
        }),
    );
    node.engine = engine;
    const sessions = new Sessions(
      staticKeyPair(node.sessionSecret),
      this.nodes
        .filter((n) => n !== node)
        .map((n) => ({ id: n.id, staticKey: staticKeyPair(n.sessionSecret).publicKey, address: n.address })),
      (n) => engineRng.bytes(n),
      { ...DEFAULT_TIMING, ...this.options.sessionTiming },
      handshakeMemoryIn(store),
    );
    const tunnel = new Tunnel(
      sessions,
      engine,
      (to, bytes) => this.transmit(node, to, bytes),
      () => {},
    );
    node.tunnel = tunnel;
    node.pump = new EnginePump(engine, this.powerCut(node), () => this.now, {
      committed: (queued, events) => {
        for (const q of queued) {
          const entry = node.uncommitted.get(q.msgId);
          if (!entry) continue;
          node.uncommitted.delete(q.msgId);
          this.observer.onSend(this.step, this.now, node.index, entry);
        }
        // Every event, also a message the store already held: the checker judges the engine, not the store.
        for (const { event } of events) this.observer.onEvent(this.step, this.now, node.index, event);
      },
      transmit: (_to, bytes, peer) => {
        if (isData(bytes)) this.observeData(node, peer, bytes);
        const to = this.indexOf(peer);
        if (to !== undefined) this.innerTap?.(node.index, to, bytes);
        tunnel.outbound(this.now, peer, bytes);
      },
    });
  }

  /** The node's store as its pump sees it: a transaction fails, writing nothing, while a power loss is armed. */
  private powerCut(node: SimNode): Store {
    const store = node.store;
    return new Proxy(store, {
      get(target, key) {
        if (key === "transaction")
          return <T>(work: () => T): T => {
            if (node.powerLoss) throw new PowerLoss(node.index);
            return target.transaction(work);
          };
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  /** After every engine call: the runtime's pump, then the engine's next timer. */
  private flush(node: SimNode): void {
    const engine = node.engine;
    const pump = node.pump;
    if (!engine || !pump) return;
    try {
      this.guard(node, "poll", () => {
        pump.flush();
        this.setWake(
          node,
          node.tunnel ? combinedTimers(engine, node.tunnel).pollTimeout() : engine.pollTimeout(),
        );
      });
    } catch (error) {
      if (!(error instanceof PowerLoss)) throw error;
      const strike = node.powerLoss;
      this.crash(node.index);
      strike?.();
    }
  }

  private transmit(node: SimNode, address: Address, bytes: Uint8Array): void {
    const to = this.byAddress.get(address);
    if (to === undefined) this.network.noteDropped("no-route");
    else {
      this.tap?.(node.index, to, bytes);
      this.network.send(this.now, node.index, to, bytes);
    }
  }

  private observeData(node: SimNode, peer: PeerId, bytes: Uint8Array): void {
    const decoded = decode(bytes);
    if (
      !decoded.ok ||
      (decoded.packet.type !== PacketType.Data && decoded.packet.type !== PacketType.Batch)
    ) {
      throw new Error(`node ${node.index} sent a DATA datagram it cannot decode itself`);
    }
    const p = decoded.packet;
    const frames =
      p.type === PacketType.Data ? [p] : p.frames.map((f, i) => ({ ...f, seq: (p.seq + i) >>> 0 }));
    for (const f of frames)
      this.observer.onDataFrame(this.step, this.now, node.index, {
        recipient: peer,
        msgId: f.msgId,
        seq: f.seq,
        fragCount: f.fragCount,
      });
  }

  private guard<T>(node: SimNode | undefined, what: string, body: () => T): T {
    try {
      return body();
    } catch (error) {
      if (error instanceof SimCrash || error instanceof SimStall || error instanceof PowerLoss) throw error;
      throw new SimCrash(node?.index, this.step, this.now, what, error);
    }
  }
}

/** DATA or BATCH: what carries messages. */
function isData(bytes: Uint8Array): boolean {
  const type = packetTypeOf(bytes);
  return type === PacketType.Data || type === PacketType.Batch;
}

function addStats(into: EngineStats, from: EngineStats): void {
  for (const key of Object.keys(from) as (keyof EngineStats)[]) {
    if (key === "rejected") {
      for (const [reason, n] of Object.entries(from.rejected) as [keyof EngineStats["rejected"], number][])
        into.rejected[reason] = (into.rejected[reason] ?? 0) + n;
    } else {
      into[key] += from[key];
    }
  }
}
