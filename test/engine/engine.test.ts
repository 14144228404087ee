/**
 * Whole-engine tests: two or three Engines wired through an in-memory network with a virtual clock that jumps
 * to the next datagram arrival or to the earliest pollTimeout() (in the style of quinn-proto's tests). No timers,
 * no sockets, no real time; loss and tampering are seeded, so every run is the same.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ModelCrypto, type ModelKeys, modelKeys } from "../../sim/model-crypto.ts";
import { DEFAULT_CONFIG, type EngineConfig, giveUpBoundMs } from "../../src/engine/config.ts";
import { Engine, SendError, type SendRequest } from "../../src/engine/engine.ts";
import type { EngineEvent, RejectReason } from "../../src/engine/events.ts";
import type { PeerSnapshot } from "../../src/engine/peer.ts";
import type { BatchProof, CryptoPort } from "../../src/engine/ports.ts";
import { RECV_WINDOW } from "../../src/engine/recv-stream.ts";
import {
  type Address,
  MAX_TEXT_BYTES,
  type Millis,
  type MsgId,
  type PeerId,
} from "../../src/engine/types.ts";
import {
  type AckPacket,
  BATCH_FRAME_FIXED_BYTES,
  type BatchPacket,
  DATA_FIXED_BYTES,
  DataFlags,
  type DataPacket,
  dataSignedBytes,
  decode,
  encodeAck,
  encodeData,
  encodeHello,
  HelloFlags,
  type HelloPacket,
  type Packet,
  PacketType,
} from "../../src/engine/wire.ts";
import { SeededRng } from "../../src/faults/seeded-rng.ts";
import { signedAlone } from "../helpers/batch.ts";

// ---- harness ----------------------------------------------------------------------------------------------------

interface Datagram {
  from: Address;
  to: Address;
  bytes: Uint8Array;
  at: Millis;
  src: Node;
  packet: Packet | undefined;
}

/** Decides the fate of a datagram on the wire: the bytes to deliver, or undefined to lose it. */
type Tamper = (d: Datagram) => Uint8Array | undefined;

type EventOf<T extends EngineEvent["type"]> = Extract<EngineEvent, { type: T }>;

/** Delegates to the model crypto; while `misaddress` is set, seals private messages to that peer's key instead. */
class MisaddressingCrypto implements CryptoPort {
  misaddress: PeerId | undefined;
  readonly selfId: PeerId;
  constructor(private readonly inner: CryptoPort) {
    this.selfId = inner.selfId;
  }
  knows(peer: PeerId): boolean {
    return this.inner.knows(peer);
  }
  signBatch(messages: readonly Uint8Array[]): BatchProof[] {
    return this.inner.signBatch(messages);
  }
  verify(author: PeerId, message: Uint8Array, proof: BatchProof): boolean {
    return this.inner.verify(author, message, proof);
  }
  verifyBatch(author: PeerId, messages: readonly Uint8Array[], signature: Uint8Array): boolean {
    return this.inner.verifyBatch(author, messages, signature);
  }
  seal(recipient: PeerId, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    return this.inner.seal(this.misaddress ?? recipient, plaintext, aad);
  }
  open(ciphertext: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
    return this.inner.open(ciphertext, aad);
  }
}

class Node {
  engine!: Engine;
  readonly timeline: { at: Millis; event: EngineEvent }[] = [];
  /** The runtime's durable state: peer snapshots and the DeliveryLog. They survive restart(). */
  readonly snapshots = new Map<PeerId, PeerSnapshot>();
  readonly delivered = new Set<string>();
  /** Calls of the delivery log's `has`: each is a database read in the runtime. */
  logReads = 0;
  readonly crypto: MisaddressingCrypto;
  restarts = 0;

  constructor(
    readonly net: Net,
    readonly name: string,
    readonly keys: ModelKeys,
    public address: Address,
    directory: ReadonlyMap<PeerId, ModelKeys>,
    public peers: Node[],
  ) {
    this.crypto = new MisaddressingCrypto(new ModelCrypto(keys, directory));
  }

  get id(): PeerId {
    return this.keys.id;
  }

  start(epoch: number, keepState: boolean): void {
    if (!keepState) this.snapshots.clear();
    this.engine = new Engine({
      crypto: this.crypto,
      rng: new SeededRng(this.net.seed * 1000 + this.name.charCodeAt(0) * 10 + this.restarts++),
      deliveryLog: {
        has: (from, msgId) => {
          this.logReads++;
          return this.delivered.has(`${from}/${msgId}`);
        },
        hasAnyFrom: (from) => [...this.delivered].some((key) => key.startsWith(`${from}/`)),
      },
      now: this.net.now,
      epoch,
      peers: this.peers.map((p) => ({ id: p.id, address: p.address })),
      config: this.net.config,
      ...(keepState ? { restore: new Map(this.snapshots) } : {}),
    });
  }

  /** Drains the engine as a runtime would: events and state persisted first, then datagrams sent. */
  collect(): void {
    for (let e = this.engine.pollEvent(); e; e = this.engine.pollEvent()) {
      this.timeline.push({ at: this.net.now, event: e });
      if (e.type === "message") this.delivered.add(`${e.from}/${e.msgId}`);
    }
    for (const [id, snapshot] of this.engine.drainDirtyState()) this.snapshots.set(id, snapshot);
    for (let t = this.engine.pollTransmit(); t; t = this.engine.pollTransmit())
      this.net.emit(this, t.to, t.bytes);
  }

  events<T extends EngineEvent["type"]>(type: T): EventOf<T>[] {
    return this.timeline.filter((x) => x.event.type === type).map((x) => x.event as EventOf<T>);
  }

  timeOf(pred: (e: EngineEvent) => boolean): Millis | undefined {
    return this.timeline.find((x) => pred(x.event))?.at;
  }

  messages(): EventOf<"message">[] {
    return this.events("message");
  }

  rejected(reason: RejectReason): EventOf<"rejected">[] {
    return this.events("rejected").filter((e) => e.reason === reason);
  }

  send(request: SendRequest): MsgId {
    const { msgId } = this.engine.send(this.net.now, request);
    this.net.collectAll();
    return msgId;
  }

  peerInfo(peer: Node) {
    const info = this.engine.peers().find((p) => p.id === peer.id);
    assert.ok(info);
    return info;
  }
}

class Net {
  now: Millis = 1_000;
  readonly nodes: Node[] = [];
  readonly sent: Datagram[] = [];
  tamper: Tamper = (d) => d.bytes;
  /** One-way delay of a datagram, ms. */
  latency: (d: Datagram) => Millis = () => 1;
  readonly rng: SeededRng;
  private queue: Datagram[] = [];

  constructor(
    readonly seed: number,
    names: string[],
    /** Names of nodes that know everyone but that nobody else knows (not in their directories). */
    strangers: string[] = [],
    readonly config: Partial<EngineConfig> = {},
  ) {
    this.rng = new SeededRng(seed);
    const keys = names.map((_, i) => modelKeys(seed, i));
    names.forEach((name, i) => {
      const key = keys[i] as ModelKeys;
      const knows = names.flatMap((other, j) =>
        j !== i && (strangers.includes(name) || !strangers.includes(other)) ? [j] : [],
      );
      const directory = new Map(knows.map((j) => [(keys[j] as ModelKeys).id, keys[j] as ModelKeys]));
      this.nodes.push(new Node(this, name, key, `10.0.0.${i + 1}:7000`, directory, []));
    });
    this.nodes.forEach((node, i) => {
      node.peers = this.nodes.filter(
        (other, j) => j !== i && (strangers.includes(node.name) || !strangers.includes(other.name)),
      );
    });
    for (const node of this.nodes) node.start(1, false);
  }

  node(name: string): Node {
    const n = this.nodes.find((x) => x.name === name);
    assert.ok(n);
    return n;
  }

  emit(src: Node, to: Address, bytes: Uint8Array): void {
    const decoded = decode(bytes);
    const d: Datagram = {
      from: src.address,
      to,
      bytes,
      at: this.now,
      src,
      packet: decoded.ok ? decoded.packet : undefined,
    };
    this.sent.push(d);
    const out = this.tamper(d);
    if (out) this.queue.push({ ...d, bytes: out, at: this.now + this.latency(d) });
  }

  collectAll(): void {
    for (const n of this.nodes) n.collect();
  }

  /**
   * Hands `bytes` to `node` now, as if they had arrived from `from` in the session of `sender` (by default, the node
   * at that address).
   */
  inject(node: Node, from: Address, bytes: Uint8Array, sender?: Node): void {
    const by = sender ?? this.nodes.find((n) => n.address === from);
    assert.ok(by, `no node at ${from}: name the sender`);
    node.engine.handleDatagram(this.now, from, bytes, by.id);
    this.collectAll();
  }

  private step(limit: Millis): void {
    this.collectAll();
    let next: Millis | undefined;
    for (const d of this.queue) if (next === undefined || d.at < next) next = d.at;
    for (const n of this.nodes) {
      const t = n.engine.pollTimeout();
      if (t !== undefined && (next === undefined || t < next)) next = t;
    }
    if (next === undefined || next > limit) {
      this.now = Math.max(this.now, limit);
      return;
    }
    this.now = Math.max(this.now, next);
    const due = this.queue.filter((d) => d.at <= this.now);
    this.queue = this.queue.filter((d) => d.at > this.now);
    for (const d of due) {
      const dst = this.nodes.find((n) => n.address === d.to);
      dst?.engine.handleDatagram(this.now, d.from, d.bytes, d.src.id);
    }
    for (const n of this.nodes) {
      const t = n.engine.pollTimeout();
      if (t !== undefined && t <= this.now) n.engine.handleTimeout(this.now);
    }
    this.collectAll();
  }

  /** Runs until `done()` or until `limitMs` of virtual time have passed; returns whether `done()` holds. */
  runUntil(done: () => boolean, limitMs: Millis): boolean {
    const end = this.now + limitMs;
    for (let steps = 0; !done(); steps++) {
      if (this.now >= end) return false;
      assert.ok(steps < 1_000_000, "the virtual clock is stuck");
      this.step(end);
    }
    return true;
  }

  runFor(ms: Millis): void {
    this.runUntil(() => false, ms);
  }

  /** Starts every node and waits until each sees every peer online. */
  settle(): void {
    const ok = this.runUntil(() => this.nodes.every((n) => n.engine.peers().every((p) => p.online)), 1_000);
    assert.ok(ok, "peers did not come online");
  }

  /** Loses every datagram matching `pred`. */
  drop(pred: (d: Datagram) => boolean): void {
    this.tamper = (d) => (pred(d) ? undefined : d.bytes);
  }

  heal(): void {
    this.tamper = (d) => d.bytes;
  }

  /** Loses each datagram independently with probability `p`. */
  lossy(p: number): void {
    this.tamper = (d) => (this.rng.chance(Math.round(p * 1e6)) ? undefined : d.bytes);
  }
}

const isData = (d: Datagram): boolean => d.packet?.type === PacketType.Data;
const isBatch = (d: Datagram): boolean => d.packet?.type === PacketType.Batch;
/** The seqs a DATA or a BATCH carries. */
const seqsIn = (d: Datagram): number[] => {
  const p = d.packet;
  if (p?.type === PacketType.Data) return [p.seq];
  if (p?.type === PacketType.Batch) return p.frames.map((_, i) => (p.seq + i) >>> 0);
  return [];
};
const isAck = (d: Datagram): boolean => d.packet?.type === PacketType.Ack;
const isHello = (d: Datagram): boolean => d.packet?.type === PacketType.Hello;
const between = (d: Datagram, from: Node, to: Node): boolean => d.src === from && d.to === to.address;

function net3(seed = 1, strangers: string[] = []): { net: Net; a: Node; b: Node; c: Node } {
  const net = new Net(seed, ["A", "B", "C"], strangers);
  return { net, a: net.node("A"), b: net.node("B"), c: net.node("C") };
}

function net2(seed = 1): { net: Net; a: Node; b: Node } {
  const net = new Net(seed, ["A", "B"]);
  return { net, a: net.node("A"), b: net.node("B") };
}

function deliveredTo(node: Node, msgId: MsgId, peer: Node): boolean {
  return node.events("delivered").some((e) => e.msgId === msgId && e.to === peer.id);
}

function messagesWith(node: Node, msgId: MsgId): EventOf<"message">[] {
  return node.messages().filter((m) => m.msgId === msgId);
}

/** The decoded packet of a datagram that must exist. */
function packetOf<T extends Packet>(d: Datagram | undefined): T {
  assert.ok(d?.packet, "no such datagram");
  return d.packet as T;
}

function flipBit(bytes: Uint8Array, offset: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[offset] = (out[offset] ?? 0) ^ 0x01;
  return out;
}

/** A DATA datagram signed with `author`'s real (model) key, as its engine would have produced it. */
function craftData(
  author: Node,
  f: {
    epoch: number;
    seq: number;
    floor: number;
    msgId: string;
    text?: string;
    payload?: Uint8Array;
    fragIndex?: number;
    fragCount?: number;
  },
): Uint8Array {
  const fields = {
    epoch: f.epoch,
    seq: f.seq,
    floor: f.floor,
    flags: 0,
    fragIndex: f.fragIndex ?? 0,
    fragCount: f.fragCount ?? 1,
    msgId: f.msgId as MsgId,
    payload: f.payload ?? new TextEncoder().encode(f.text ?? ""),
  };
  return encodeData(fields, signedAlone(author.crypto, dataSignedBytes(author.id, fields)));
}

/** The size of every batch `node` signs from now on, in order. */
function batchSizesSignedBy(node: Node): number[] {
  const sizes: number[] = [];
  const signBatch = node.crypto.signBatch.bind(node.crypto);
  node.crypto.signBatch = (messages) => {
    sizes.push(messages.length);
    return signBatch(messages);
  };
  return sizes;
}

// ---- tests ------------------------------------------------------------------------------------------------------

describe("engine: delivery", () => {
  it("a msgId is the send time in ms (48 bits) then 80 random bits: later ids sort after earlier ones", () => {
    const { a } = net2();
    const at = (now: number) => a.engine.send(now, { kind: "broadcast", text: "t" }).msgId;
    const times = [0, 1, 255, 256, 1_764_000_000_000, 1_764_000_000_001, 2 ** 48 - 1];
    const ids = times.map(at);
    assert.deepEqual(
      ids.map((id) => Number.parseInt(id.slice(0, 12), 16)),
      times,
    );
    assert.deepEqual([...ids].sort(), ids);
    const sameMs = [at(5_000), at(5_000), at(5_000)];
    assert.equal(new Set(sameMs.map((id) => id.slice(12))).size, 3, "the random part differs");
    assert.equal(
      Number.parseInt(at(2 ** 50).slice(0, 12), 16),
      2 ** 48 - 1,
      "a clock past 2^48 ms is clamped",
    );
  });

  it("a broadcast reaches every peer exactly once and the sender hears `delivered` from each", () => {
    const { net, a, b, c } = net3();
    net.settle();
    const msgId = a.send({ kind: "broadcast", text: "hello, all" });
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b) && deliveredTo(a, msgId, c), 1_000));
    net.runFor(2_000);
    for (const peer of [b, c]) {
      const got = messagesWith(peer, msgId);
      assert.equal(got.length, 1);
      assert.deepEqual(
        { from: got[0]?.from, kind: got[0]?.kind, text: got[0]?.text },
        { from: a.id, kind: "broadcast", text: "hello, all" },
      );
    }
    assert.equal(a.events("delivered").filter((e) => e.msgId === msgId).length, 2);
    assert.equal(a.events("failed").length, 0);
  });

  it("a private message reaches only its recipient, once, and never crosses the wire in clear", () => {
    const { net, a, b, c } = net3();
    net.settle();
    const text = "meet at the usual place";
    const msgId = a.send({ kind: "private", to: [b.id], text });
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 1_000));
    net.runFor(1_000);
    assert.deepEqual(
      messagesWith(b, msgId).map((m) => [m.kind, m.text]),
      [["private", text]],
    );
    assert.equal(c.messages().length, 0);
    const data = net.sent.filter((d) => isData(d) && d.src === a);
    assert.ok(data.length > 0 && data.every((d) => d.to === b.address));
    const clear = Buffer.from(text);
    assert.ok(data.every((d) => Buffer.from(d.bytes).indexOf(clear) < 0));
    assert.ok(data.every((d) => ((d.packet as DataPacket).flags & DataFlags.Private) !== 0));
  });

  it("messages from one sender are delivered in its order under reordering and 20% loss", () => {
    for (const seed of [11, 12, 13]) {
      const { net, a, b } = net2(seed);
      net.settle();
      net.latency = () => 1 + net.rng.below(40);
      net.lossy(0.2);
      const ids: MsgId[] = [];
      for (let i = 0; i < 30; i++) {
        ids.push(a.send({ kind: "broadcast", text: `m${i} ${"x".repeat(i * 97)}` }));
        net.runFor(3);
      }
      assert.ok(
        net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 30_000),
        `seed ${seed}`,
      );
      assert.deepEqual(
        b.messages().map((m) => m.msgId),
        ids,
        `seed ${seed}`,
      );
    }
  });

  it("a 64 KiB private message (multi-byte UTF-8 split across fragments) arrives intact under 30% loss", () => {
    const { net, a, b } = net2(5);
    net.settle();
    net.lossy(0.3);
    const text = "é".repeat(MAX_TEXT_BYTES / 2);
    assert.equal(Buffer.byteLength(text), MAX_TEXT_BYTES);
    const msgId = a.send({ kind: "private", to: [b.id], text });
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 60_000));
    net.runFor(2_000);
    const got = messagesWith(b, msgId);
    assert.equal(got.length, 1);
    assert.ok(got[0]?.text === text);
    assert.equal(a.events("failed").length, 0);
    assert.ok(a.engine.stats().retransmits > 0);
  });

  it("send refuses text over 64 KiB (too-large) and empty text (empty), sending nothing", () => {
    const { net, a, b } = net2();
    net.settle();
    const before = net.sent.length;
    assert.throws(
      () => a.engine.send(net.now, { kind: "broadcast", text: "x".repeat(MAX_TEXT_BYTES + 1) }),
      (e: unknown) => e instanceof SendError && e.code === "too-large",
    );
    assert.throws(
      () => a.engine.send(net.now, { kind: "private", to: [b.id], text: "é".repeat(MAX_TEXT_BYTES / 2 + 1) }),
      (e: unknown) => e instanceof SendError && e.code === "too-large",
    );
    assert.throws(
      () => a.engine.send(net.now, { kind: "broadcast", text: "" }),
      (e: unknown) => e instanceof SendError && e.code === "empty",
    );
    net.collectAll();
    assert.equal(net.sent.length, before);
    assert.equal(a.engine.pendingCount(), 0);
  });
});

describe("engine: reliability", () => {
  it("a lost DATA is retransmitted after the RTO and delivered once", () => {
    const { net, a, b } = net2();
    net.settle();
    let lost = 0;
    net.tamper = (d) => (isData(d) && lost++ === 0 ? undefined : d.bytes);
    const t0 = net.now;
    const msgId = a.send({ kind: "broadcast", text: "second time lucky" });
    assert.ok(net.runUntil(() => messagesWith(b, msgId).length > 0, 1_000));
    const at = b.timeOf((e) => e.type === "message") ?? 0;
    assert.ok(at - t0 >= DEFAULT_CONFIG.rtoMsMin, `${at - t0}`);
    net.runFor(1_000);
    assert.equal(messagesWith(b, msgId).length, 1);
    assert.equal(a.engine.stats().retransmits, 1);
    assert.ok(deliveredTo(a, msgId, b));
  });

  it("an ACK with ranges (a hole: the path loses datagrams) goes out twice; a plain cumulative ACK once", () => {
    const { net, a, b } = net2();
    net.settle();
    let lost = 0;
    net.tamper = (d) => (isData(d) && d.src === a && lost++ === 0 ? undefined : d.bytes);
    // One poll each: each its own DATA, so that losing the first leaves a hole before the others.
    const ids = ["one", "two", "three"].map((text) => a.send({ kind: "private", to: [b.id], text }));
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 1_000));
    const acks = net.sent.filter((d) => isAck(d) && d.src === b).map((d) => d.packet as AckPacket);
    const withRanges = acks.filter((p) => p.ranges.length > 0);
    assert.ok(withRanges.length >= 2);
    assert.equal(withRanges.length % 2, 0, "every ACK with ranges has its copy");
    assert.deepEqual(withRanges[0], withRanges[1]);
    const plain = acks.filter((p) => p.ranges.length === 0);
    assert.ok(plain.length >= 1);
    assert.equal(b.engine.stats().acksSent, withRanges.length / 2 + plain.length);
  });

  it("a lost ACK makes the sender retransmit; the copy is re-acknowledged, never redelivered", () => {
    const { net, a, b } = net2();
    net.settle();
    let lost = 0;
    net.tamper = (d) => (isAck(d) && d.src === b && lost++ === 0 ? undefined : d.bytes);
    const msgId = a.send({ kind: "broadcast", text: "did you get it?" });
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 1_000));
    net.runFor(1_000);
    assert.equal(messagesWith(b, msgId).length, 1);
    assert.ok(a.engine.stats().retransmits >= 1);
    assert.ok(b.engine.stats().duplicates >= 1);
    assert.ok(b.events("duplicate").some((e) => e.msgId === msgId));
    assert.equal(b.engine.stats().acksSent, 2);
  });

  it("a burst costs fewer ACKs than messages; a hole is acked around (ranges) and early-retransmitted", () => {
    const { net, a, b } = net2();
    net.settle();
    let data = 0;
    net.tamper = (d) => (isData(d) && d.src === a && data++ === 4 ? undefined : d.bytes);
    const acksBefore = b.engine.stats().acksSent;
    const ids: MsgId[] = [];
    // One poll each (Node.send), so that each is its own DATA: the fifth is the hole.
    for (let i = 0; i < 20; i++) ids.push(a.send({ kind: "broadcast", text: `burst ${i}` }));
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 1_000));
    const acks = b.engine.stats().acksSent - acksBefore;
    assert.ok(acks < ids.length / 4, `${acks} ACKs for ${ids.length} messages`);
    const withRange = net.sent.find(
      (d) => isAck(d) && d.src === b && (d.packet as AckPacket).ranges.length > 0,
    );
    assert.ok(withRange, "an ACK carried a selective range");
    assert.deepEqual((withRange.packet as AckPacket).ranges, [{ start: 5, length: 15 }]);
    const stats = a.engine.stats();
    assert.equal(stats.earlyRetransmits, 1);
    assert.equal(stats.retransmits, 1, "the hole was filled before any RTO fired");
    const dataBytes = net.sent
      .filter((d) => isData(d) && d.src === a)
      .reduce((n, d) => n + d.bytes.length, 0);
    assert.equal(stats.dataBytesOut, dataBytes);
    assert.ok(stats.bytesOut > stats.dataBytesOut, "HELLOs are counted in bytesOut only");
    assert.deepEqual(
      b.messages().map((m) => m.msgId),
      ids,
    );
  });

  it("a late ACK of a timed-out frame's first copy does not make the frames sent after that copy look lost", () => {
    const { net, a, b } = net2();
    net.latency = () => 10;
    net.settle();
    // b's ACKs are held back, to be handed over by hand: the first one answers F's first copy only.
    const held: Uint8Array[] = [];
    net.tamper = (d) => {
      if (!isAck(d) || d.src !== b) return d.bytes;
      held.push(d.bytes);
      return undefined;
    };
    const copiesOf = (id: MsgId) =>
      net.sent.filter((d) => isData(d) && (d.packet as DataPacket).msgId === id).length;
    const rto = a.peerInfo(b).rtoMs;
    const f = a.send({ kind: "broadcast", text: "F" });
    net.runFor(rto * 0.55); // past F's arrival (10 ms), short of its timeout (at most 1.25 RTO with jitter)
    assert.equal(messagesWith(b, f).length, 1);
    const ackOfF = held.length;
    assert.ok(ackOfF > 0);
    const g = a.send({ kind: "broadcast", text: "G" });
    // F times out before G does: its second copy goes out after G's first.
    assert.ok(net.runUntil(() => copiesOf(f) === 2, 1_000));
    assert.equal(copiesOf(g), 1);
    assert.equal(messagesWith(b, g).length, 1);
    net.inject(a, b.address, held[ackOfF - 1] as Uint8Array);
    assert.ok(deliveredTo(a, f, b));
    assert.ok(!deliveredTo(a, g, b));
    // The ACK may answer F's first copy, sent before G: it says nothing about G, which is not sent again early.
    assert.equal(a.engine.stats().earlyRetransmits, 0);
    assert.equal(copiesOf(g), 1);
    net.heal();
    assert.ok(net.runUntil(() => deliveredTo(a, g, b), 1_000));
    assert.equal(messagesWith(b, f).length + messagesWith(b, g).length, 2);
  });

  it("an early retransmit lost again is sent early again when a copy sent after it is acknowledged", () => {
    const { net, a, b } = net2();
    net.settle();
    const copies = new Map<MsgId, number>();
    const lose = new Map<MsgId, number>(); // how many first copies of each message are lost
    net.tamper = (d) => {
      if (!isData(d) || d.src !== a) return d.bytes;
      const id = (d.packet as DataPacket).msgId;
      const n = (copies.get(id) ?? 0) + 1;
      copies.set(id, n);
      return n <= (lose.get(id) ?? 0) ? undefined : d.bytes;
    };
    const [x, y, z] = ["X", "Y", "Z"].map((text) => {
      const id = a.engine.send(net.now, { kind: "broadcast", text }).msgId;
      if (text === "X") lose.set(id, 2);
      if (text === "Y") lose.set(id, 1);
      net.collectAll(); // one poll each: each its own DATA
      return id;
    });
    assert.ok(net.runUntil(() => [x, y, z].every((id) => deliveredTo(a, id as MsgId, b)), 1_000));
    // Z's ACK sends X and Y again early; Y's second copy, sent after X's, is acknowledged: X's is lost, and goes
    // again at once (its third try, two copies), not at its timeout.
    const stats = a.engine.stats();
    assert.equal(stats.earlyRetransmits, 3);
    assert.equal(stats.retransmits, 4);
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ["X", "Y", "Z"],
    );
  });

  it("total loss ends in `waiting` (no answer, 30 tries) within giveUpBoundMs, and the peer goes offline", () => {
    const { net, a, b } = net2();
    net.settle();
    net.drop(() => true);
    const t0 = net.now;
    const msgId = a.send({ kind: "broadcast", text: "anyone?" });
    assert.ok(net.runUntil(() => a.events("waiting").length > 0, 20_000));
    const waiting = a.events("waiting")[0];
    const at = a.timeOf((e) => e.type === "waiting") ?? 0;
    assert.equal(waiting?.msgId, msgId);
    assert.equal(waiting?.cause, "no-answer");
    assert.equal(waiting?.tries, DEFAULT_CONFIG.triesMax);
    assert.equal(a.events("failed").length, 0, "a give-up is not a failure");
    assert.ok(at - t0 <= giveUpBoundMs(a.engine.config), `gave up after ${at - t0} ms`);
    // 17 of the 30 waits are at the 200 ms cap: the give-up cannot come before 3.4 s.
    assert.ok(at - t0 >= 3_400, `gave up after ${at - t0} ms`);
    assert.ok(a.events("peer-offline").some((e) => e.peer === b.id));
    assert.equal(a.peerInfo(b).parked, 1);
    assert.equal(a.engine.pendingCount(), 0);
  });

  it("40% loss both ways, a message every 10 ms: lost frames are retried at the plain RTO, p99 latency < 50 ms", () => {
    const { net, a, b } = net2(7);
    net.settle();
    net.lossy(0.4);
    const sentAt = new Map<MsgId, Millis>();
    for (let i = 0; i < 400; i++) {
      sentAt.set(a.send({ kind: "broadcast", text: `chat ${i}` }), net.now);
      net.runFor(10);
    }
    assert.ok(net.runUntil(() => [...sentAt.keys()].every((id) => deliveredTo(a, id, b)), 10_000));
    const latencies = [...sentAt].map(([id, at]) => {
      const shown = b.timeOf((e) => e.type === "message" && e.msgId === id);
      assert.ok(shown !== undefined, `${id} shown`);
      return shown - at;
    });
    latencies.sort((x, y) => x - y);
    const p99 = latencies[Math.floor(0.99 * latencies.length)] as number;
    assert.ok(p99 < 50, `p99 ${p99} ms`);
    assert.equal(b.messages().length, 400, "each exactly once");
    // One sample per ACK from the newest frame it answers: the estimate stays at the 2 ms round trip, not at the
    // age of frames whose own ACKs were lost.
    assert.ok((a.peerInfo(b).srttMs ?? 99) < 4, `srtt ${a.peerInfo(b).srttMs}`);
  });

  it("an ACK of anything new ends the backoff of what is still in flight", () => {
    const { net, a, b } = net2();
    net.settle();
    const copies: Millis[] = [];
    // The first 14 tries of the first message (seq 0) are lost; nothing else is. A try from the third on is two
    // copies at the same moment (PROTOCOL.md §9.7): one entry here.
    net.tamper = (d) => {
      if (!isData(d) || d.src !== a || (d.packet as DataPacket).seq !== 0) return d.bytes;
      if (copies.at(-1) !== d.at) copies.push(d.at);
      return copies.length <= 14 ? undefined : d.bytes;
    };
    const stuck = a.send({ kind: "broadcast", text: "unlucky" });
    net.runFor(250); // the peer answers nothing: past the linear timeouts, the waits double
    const backedOff = copies.length;
    assert.ok(backedOff >= a.engine.config.linearTimeouts + 4 && backedOff < 14, `${backedOff} copies`);
    const lastGap = (copies[backedOff - 1] as number) - (copies[backedOff - 2] as number);
    const luckyAt = net.now;
    a.send({ kind: "broadcast", text: "lucky" }); // acknowledged: the link works
    assert.ok(net.runUntil(() => deliveredTo(a, stuck, b), 1_000));
    const after = [luckyAt, ...copies.slice(backedOff)];
    assert.ok(after.length >= 3, `${after.length - 1} copies after the ACK`);
    const gaps = after.slice(1).map((t, i) => t - (after[i] as number));
    const rto = a.peerInfo(b).rtoMs;
    for (const gap of gaps)
      assert.ok(gap <= 1.25 * rto + 1, `gap ${gap} ms after the ACK; RTO ${rto}, before ${lastGap}`);
    assert.ok(lastGap > 4 * rto, `the backoff had grown: ${lastGap} ms`);
  });

  it("a frame lost twice is sent as two copies from its third try on; a first retransmit is one", () => {
    const { net, a, b } = net2();
    net.settle();
    const tries: number[] = [];
    net.tamper = (d) => {
      if (!isData(d) || d.src !== a) return d.bytes;
      tries.push(d.at);
      return new Set(tries).size <= 3 ? undefined : d.bytes; // the first three tries are lost
    };
    const msgId = a.send({ kind: "broadcast", text: "persistent" });
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 2_000));
    const perTry = [...new Set(tries)].map((at) => tries.filter((t) => t === at).length);
    assert.deepEqual(perTry.slice(0, 4), [1, 1, 2, 2]);
    assert.equal(b.messages().length, 1);
    assert.equal(a.engine.stats().retransmits, tries.length - 1);
  });

  it("a silent peer still gets a doubling wait between tries, up to rtoMsMax", () => {
    const { net, a, b } = net2();
    net.settle();
    net.drop(() => true);
    a.send({ kind: "broadcast", text: "anyone?" });
    net.runFor(3_000);
    // From the second copy on: the first wait may use the RTO from before the HELLO reply still in flight.
    // One entry per try: from the third on, a try is two copies sent at the same moment.
    const copies = net.sent
      .filter((d) => isData(d) && between(d, a, b))
      .map((d) => d.at)
      .filter((at, i, all) => i === 0 || at !== all[i - 1])
      .slice(1);
    const gaps = copies.slice(1).map((t, i) => t - (copies[i] as number));
    const linear = a.engine.config.linearTimeouts;
    assert.ok(gaps.length >= linear + 8, `${gaps.length} gaps`);
    // Gap i follows timeout i + 1: the plain RTO (± jitter) up to the linear count, doubling after it.
    for (let i = 1; i < linear; i++) {
      const [before, after] = [gaps[i - 1] as number, gaps[i] as number];
      assert.ok(
        after <= 1.25 * before + 0.5 && before <= 1.25 * after + 0.5,
        `gap ${i}: ${before} then ${after}`,
      );
    }
    for (let i = linear; i < gaps.length; i++) {
      const [before, after] = [gaps[i - 1] as number, gaps[i] as number];
      if (after >= a.engine.config.rtoMsMax) continue; // capped (and jittered above the cap)
      assert.ok(after >= 1.6 * before, `gap ${i}: ${before} then ${after} ms`);
    }
  });

  it("a given-up message does not block later ones: the floor lets them through, then it is re-sent", () => {
    const { net, a, b } = net2();
    net.settle();
    // Only the first message's frames are lost, until it has been given up once.
    net.tamper = (d) =>
      isData(d) && (d.packet as DataPacket).seq === 0 && a.events("waiting").length === 0
        ? undefined
        : d.bytes;
    const first = a.send({ kind: "broadcast", text: "stuck" });
    const second = a.send({ kind: "broadcast", text: "behind it" });
    assert.ok(net.runUntil(() => messagesWith(b, second).length > 0, 10_000));
    const failedAt = a.timeOf((e) => e.type === "waiting" && e.msgId === first);
    assert.ok(failedAt !== undefined, "the first message was given up");
    assert.ok(
      net.runUntil(() => deliveredTo(a, first, b), 10_000),
      "and delivered once the peer was heard",
    );
    net.runFor(1_000);
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ["behind it", "stuck"],
    );
  });
});

describe("engine: offline delivery and restarts", () => {
  it("a message given up during an outage is delivered exactly once after the peer is heard again", () => {
    const { net, a, b } = net2();
    net.settle();
    net.drop(() => true);
    const msgId = a.send({ kind: "broadcast", text: "left while you were out" });
    assert.ok(net.runUntil(() => a.events("waiting").some((e) => e.msgId === msgId), 10_000));
    net.runFor(3_000);
    net.heal();
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 20_000));
    net.runFor(10_000);
    assert.equal(messagesWith(b, msgId).length, 1);
    const failedAt = a.timeOf((e) => e.type === "waiting" && e.msgId === msgId) ?? Infinity;
    const deliveredAt = a.timeOf((e) => e.type === "delivered" && e.msgId === msgId) ?? -1;
    assert.ok(deliveredAt > failedAt);
    assert.ok(a.events("peer-online").length >= 2);
    assert.equal(a.peerInfo(b).parked, 0);
  });

  it("when only the ACKs were lost, the re-sent copy (new seqs, same msgId) is dropped by msgId", () => {
    const { net, a, b } = net2();
    net.settle();
    net.drop((d) => d.src === b);
    const msgId = a.send({ kind: "broadcast", text: "you already have this" });
    assert.ok(net.runUntil(() => a.events("waiting").some((e) => e.msgId === msgId), 10_000));
    assert.equal(messagesWith(b, msgId).length, 1);
    net.heal();
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 20_000));
    net.runFor(5_000);
    assert.equal(messagesWith(b, msgId).length, 1);
    assert.ok(b.events("duplicate").some((e) => e.msgId === msgId));
  });

  it("a message re-sent after a restart with the same msgId is not delivered twice (the DeliveryLog)", () => {
    const { net, a, b } = net2();
    net.settle();
    net.runFor(1_000); // past the start-up HELLOs
    net.drop((d) => isAck(d) && d.src === b);
    const text = "exactly once, please";
    const msgId = a.send({ kind: "broadcast", text });
    assert.ok(net.runUntil(() => messagesWith(b, msgId).length === 1, 1_000));
    const sentAt = messagesWith(b, msgId)[0]?.sentAt;
    // Both crash: A loses everything (a newer epoch), B keeps its snapshot but its memory of recent msgIds is gone.
    a.start(2, false);
    b.start(1, true);
    net.heal();
    // A's runtime re-submits what its outbox still holds, under the same msgId.
    a.send({ kind: "broadcast", to: [b.id], text, msgId, ...(sentAt === undefined ? {} : { sentAt }) });
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 2_000));
    net.runFor(1_000);
    assert.equal(messagesWith(b, msgId).length, 1);
    assert.ok(b.events("duplicate").some((e) => e.msgId === msgId));
  });

  it("a restart from the saved snapshot keeps dedup: replaying every captured datagram delivers nothing new", () => {
    const { net, a, b } = net2();
    net.settle();
    net.lossy(0.2);
    const toB = [
      a.send({ kind: "broadcast", text: "one" }),
      a.send({ kind: "broadcast", text: "two ".repeat(900) }),
      a.send({ kind: "private", to: [b.id], text: "three" }),
    ];
    const toA = [b.send({ kind: "broadcast", text: "four" })];
    assert.ok(
      net.runUntil(
        () => toB.every((id) => deliveredTo(a, id, b)) && toA.every((id) => deliveredTo(b, id, a)),
        20_000,
      ),
    );
    net.heal();
    net.runFor(6_000);
    const captured = net.sent.filter((d) => d.to === b.address);
    assert.ok(captured.some(isData) && captured.some(isAck) && captured.some(isHello));
    b.start(1, true);
    const messages = b.messages().length;
    const delivered = b.events("delivered").length;
    const hellosBefore = b.rejected("replayed-hello").length;
    for (const d of captured) net.inject(b, d.from, d.bytes);
    assert.equal(b.messages().length, messages, "no message delivered twice");
    assert.equal(b.events("delivered").length, delivered, "no old ACK resolves anything");
    assert.equal(b.rejected("replayed-hello").length - hellosBefore, captured.filter(isHello).length);
    assert.ok(b.engine.stats().duplicates >= captured.filter(isData).length);
    // The stream goes on where it stopped.
    const later = a.send({ kind: "broadcast", text: "after the restart" });
    assert.ok(net.runUntil(() => deliveredTo(a, later, b), 2_000));
    assert.equal(messagesWith(b, later).length, 1);
  });

  it("a sender restarted from its snapshot re-sends an unfinished message under new seqs; the floor skips the old", () => {
    const { net, a, b } = net2();
    net.settle();
    net.drop((d) => isData(d) && d.src === a);
    const text = "interrupted";
    const msgId = a.send({ kind: "broadcast", text });
    const oldSeq = packetOf<DataPacket>(net.sent.find((d) => isData(d) && d.src === a)).seq;
    net.runFor(300);
    a.start(1, true); // same epoch: the state was kept
    net.heal();
    // A restarted engine has heard from nobody: it re-sends once the peer answers its HELLO.
    assert.ok(net.runUntil(() => a.peerInfo(b).online, 1_000));
    a.send({ kind: "broadcast", to: [b.id], text, msgId });
    const resent = packetOf<DataPacket>(net.sent.filter((d) => isData(d) && d.src === a).at(-1));
    assert.ok(resent.seq > oldSeq && resent.floor === resent.seq, "new seq, floor past the abandoned one");
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 1_000));
    const later = a.send({ kind: "broadcast", text: "and then" });
    assert.ok(net.runUntil(() => deliveredTo(a, later, b), 1_000));
    assert.deepEqual(
      b.messages().map((m) => m.text),
      [text, "and then"],
    );
  });

  it("sequence numbers wrap from 2^32 − 1 to 0 in the middle of a conversation", () => {
    const { net, a, b } = net2();
    net.settle();
    const saved = a.snapshots.get(b.id);
    assert.ok(saved);
    a.snapshots.set(b.id, { ...saved, nextSeq: 2 ** 32 - 3 });
    a.start(2, true);
    net.lossy(0.2);
    const ids: MsgId[] = [];
    for (let i = 0; i < 8; i++) ids.push(a.send({ kind: "broadcast", text: `w${i} ${"~".repeat(i * 300)}` }));
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 10_000));
    assert.deepEqual(
      b.messages().map((m) => m.msgId),
      ids,
    );
    const seqs = net.sent.filter((d) => d.src === a).flatMap(seqsIn);
    assert.ok(seqs.includes(2 ** 32 - 1) && seqs.includes(0));
  });

  it("the delivery log is read only for a message its sender marks as re-sent, which it then recognises", () => {
    const { net, a, b } = net2();
    net.settle();
    const ids = ["one", "two", "three"].map((text) => a.send({ kind: "broadcast", text }));
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 1_000));
    assert.equal(b.logReads, 0, "first sendings need no database read");
    // b restarts from its saved state (its memory of recent msgIds is gone), then a re-sends a stored message under
    // its own id, as the runtime does after a restart: b cannot rule out a copy and must ask its log.
    b.start(b.engine.epoch, true);
    net.settle();
    const again = a.engine.send(net.now, {
      kind: "broadcast",
      text: "one",
      msgId: ids[0] as MsgId,
    });
    net.collectAll();
    assert.ok(net.runUntil(() => b.events("duplicate").some((e) => e.msgId === again.msgId), 1_000));
    const resent = net.sent.filter((d) => isData(d) && d.src === a).at(-1)?.packet as DataPacket;
    assert.equal(resent.flags & DataFlags.Resent, DataFlags.Resent);
    assert.equal(b.messages().length, 3);
    assert.equal(b.logReads, 1);
  });

  it("a node that lost its state still delivers nothing twice from replays (the DeliveryLog)", () => {
    const { net, a, b } = net2();
    net.settle();
    const ids = [a.send({ kind: "broadcast", text: "alpha" }), a.send({ kind: "broadcast", text: "beta" })];
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 1_000));
    const captured = net.sent.filter((d) => d.to === b.address && isData(d));
    b.start(2, false);
    for (const d of captured) net.inject(b, d.from, d.bytes);
    assert.equal(b.messages().length, 2);
  });
});

describe("engine: authentication and replay", () => {
  it("an ACK in a third party's session speaks for that party's stream only: nothing to another peer resolves", () => {
    const { net, a, b, c } = net3();
    net.settle();
    net.drop((d) => d.src === b && d.to === a.address);
    const msgId = a.send({ kind: "broadcast", to: [b.id], text: "unconfirmed" });
    net.runFor(5);
    // c holds no message of a's: its ACKs, however generous, and its rejections concern a's stream to c alone.
    const fields = { epoch: a.engine.epoch, next: 1000 };
    const lies = [
      encodeAck({ ...fields, ranges: [], rejects: [] }),
      encodeAck({ ...fields, ranges: [{ start: 0, length: 50 }], rejects: [] }),
      encodeAck({ ...fields, ranges: [], rejects: [{ seq: 0, code: 1 }] }),
    ];
    for (const f of lies) net.inject(a, b.address, f, c);
    assert.ok(!deliveredTo(a, msgId, b));
    assert.equal(a.events("failed").length, 0);
    net.heal();
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 1_000));
  });

  it("an ACK replayed from the sender's previous epoch is stale-epoch and resolves nothing", () => {
    const { net, a, b } = net2();
    net.settle();
    const old = a.send({ kind: "broadcast", text: "epoch one" });
    assert.ok(net.runUntil(() => deliveredTo(a, old, b), 1_000));
    const oldAcks = net.sent.filter((d) => isAck(d) && between(d, b, a));
    assert.ok(
      oldAcks.some((d) => (d.packet as AckPacket).next >= 1),
      "the old ACK covers seq 0",
    );
    a.start(2, false); // lost its state: a newer epoch, and its seqs start again at 0
    net.drop((d) => d.src === b);
    const fresh = a.send({ kind: "broadcast", text: "epoch two, seq 0 again" });
    for (const d of oldAcks) net.inject(a, b.address, d.bytes);
    assert.equal(a.rejected("stale-epoch").length, oldAcks.length);
    assert.ok(!deliveredTo(a, fresh, b));
    net.heal();
    assert.ok(net.runUntil(() => deliveredTo(a, fresh, b), 2_000));
    assert.equal(messagesWith(b, fresh).length, 1);
  });

  it("a flipped bit in a DATA payload or in its signature fails the signature; retransmits deliver", () => {
    const { net, a, b } = net2();
    net.settle();
    const flips = [DATA_FIXED_BYTES, -1]; // the first payload byte, then the last byte of the signature
    net.tamper = (d) => {
      const at = isData(d) ? flips.shift() : undefined;
      return at === undefined ? d.bytes : flipBit(d.bytes, at < 0 ? d.bytes.length + at : at);
    };
    const msgId = a.send({ kind: "broadcast", text: "integrity" });
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 1_000));
    assert.equal(b.rejected("bad-signature").length, 2);
    assert.equal(b.rejected("bad-signature")[0]?.from, a.id);
    assert.deepEqual(
      messagesWith(b, msgId).map((m) => m.text),
      ["integrity"],
    );
  });

  it("a broadcast to several peers is one batch signature, each copy on its own recipient's stream", () => {
    const { net, a, b, c } = net3();
    net.settle();
    const batches = batchSizesSignedBy(a);
    const msgId = a.send({ kind: "broadcast", text: "x".repeat(3000) }); // 4 fragments
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b) && deliveredTo(a, msgId, c), 1_000));
    assert.deepEqual(batches, [4], "one signature over the 4 fragments, not one per fragment or per peer");
    const copies = net.sent.filter((d) => isData(d) && d.src === a);
    const toB = copies.filter((d) => d.to === b.address).map((d) => d.packet as DataPacket);
    const toC = copies.filter((d) => d.to === c.address).map((d) => d.packet as DataPacket);
    assert.deepEqual(
      toB.map((p) => p.proof),
      toC.map((p) => p.proof),
    );
    assert.deepEqual(
      toB.map((p) => [p.proof.index, p.proof.size, p.proof.path.length]),
      [
        [0, 4, 2],
        [1, 4, 2],
        [2, 4, 2],
        [3, 4, 2],
      ],
    );
    assert.equal(new Set(toB.map((p) => Buffer.from(p.proof.signature).toString("hex"))).size, 1);
    assert.deepEqual([a.engine.stats().batchSignatures, a.engine.stats().messagesSigned], [1, 4]);
  });

  it("small messages written together leave as BATCH datagrams: a whole batch, one signature, one datagram", () => {
    const { net, a, b } = net2();
    net.settle();
    const acksBefore = b.engine.stats().acksSent;
    const ids: MsgId[] = [];
    for (let i = 0; i < 20; i++)
      ids.push(a.engine.send(net.now, { kind: "broadcast", text: `small ${i}` }).msgId);
    net.collectAll();
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 1_000));
    const batches = net.sent.filter((d) => isBatch(d) && d.src === a).map((d) => d.packet as BatchPacket);
    assert.equal(
      net.sent.filter((d) => isData(d) && d.src === a).length,
      0,
      "no frame needed a DATA of its own",
    );
    assert.deepEqual(
      batches.flatMap((p) => p.frames.map((f) => f.msgId)),
      ids,
      "every message once, in the order written",
    );
    assert.ok(batches.every((p) => p.frames.length >= 2));
    assert.equal(a.engine.stats().batchesSent, batches.length);
    assert.equal(a.engine.stats().batchSignatures, batches.length, "one signature per BATCH");
    assert.ok(b.engine.stats().acksSent - acksBefore <= batches.length);
    assert.deepEqual(
      b.messages().map((m) => m.msgId),
      ids,
    );
  });

  it("a lost BATCH: its frames go again alone, each a DATA with its audit path, delivered once and in order", () => {
    const { net, a, b } = net2();
    net.settle();
    let lost = 0;
    net.tamper = (d) => (isBatch(d) && d.src === a && lost++ === 0 ? undefined : d.bytes);
    const ids = ["one", "two", "three"].map(
      (text) => a.engine.send(net.now, { kind: "broadcast", text }).msgId,
    );
    net.collectAll();
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 5_000));
    assert.equal(lost, 1);
    // Each at its own timeout (their deadlines differ by the RTO's jitter), so in any order.
    const resent = net.sent.filter((d) => isData(d) && d.src === a).map((d) => d.packet as DataPacket);
    assert.deepEqual(
      resent
        .slice(0, 3)
        .map((p) => [p.msgId, p.proof.index, p.proof.size, p.proof.path.length])
        .sort((x, y) => (x[1] as number) - (y[1] as number)),
      ids.map((id, i) => [id, i, 3, i === 2 ? 1 : 2]),
    );
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ["one", "two", "three"],
    );
    assert.equal(b.events("duplicate").length, 0);
  });

  it("a BATCH with one altered byte is refused whole as bad-signature; its frames sent again are delivered", () => {
    const { net, a, b } = net2();
    net.settle();
    let altered = 0;
    net.tamper = (d) => {
      if (!isBatch(d) || d.src !== a || altered++ > 0) return d.bytes;
      // The first frame's first payload byte: after type, epoch, floor, seq, count and its fixed fields.
      return flipBit(d.bytes, 14 + BATCH_FRAME_FIXED_BYTES);
    };
    const ids = ["alpha", "beta"].map(
      (text) => a.engine.send(net.now, { kind: "private", to: [b.id], text }).msgId,
    );
    net.collectAll();
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 5_000));
    assert.equal(b.rejected("bad-signature").length, 1, "the BATCH, once, for all its frames");
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ["alpha", "beta"],
    );
  });

  it("a burst of broadcasts to two peers is one signature per batch, and a BATCH to each", () => {
    const { net, a, b, c } = net3();
    net.settle();
    const batches = batchSizesSignedBy(a);
    const ids = [0, 1, 2, 3].map(
      (i) => a.engine.send(net.now, { kind: "broadcast", text: `to both ${i}` }).msgId,
    );
    net.collectAll();
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b) && deliveredTo(a, id, c)), 1_000));
    assert.deepEqual(batches, [4]);
    for (const peer of [b, c]) {
      const toPeer = net.sent.filter((d) => isBatch(d) && d.src === a && d.to === peer.address);
      assert.equal(toPeer.length, 1);
      assert.deepEqual(
        ((toPeer[0] as Datagram).packet as BatchPacket).frames.map((f) => f.msgId),
        ids,
      );
    }
  });

  it("messages written together share a signature, 16 at most, and arrive in the order written", () => {
    const { net, a, b } = net3();
    net.settle();
    const batches = batchSizesSignedBy(a);
    // Written in one go, as a runtime's pump hands them over: signed when the first datagram is polled.
    const ids = Array.from(
      { length: 20 },
      (_, i) => a.engine.send(net.now, { kind: "private", to: [b.id], text: `m${i}` }).msgId,
    );
    net.collectAll();
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 2_000));
    assert.deepEqual(batches, [16, 4]);
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ids.map((_, i) => `m${i}`),
    );
  });

  it("a message whose audit path or batch position was altered is refused as bad-signature", () => {
    const { net, a, b } = net3();
    net.settle();
    const tampered = new Set<number>();
    let batches = 0;
    net.tamper = (d) => {
      // The BATCH that carries all three is lost: each is sent again alone, as a DATA with its audit path.
      if (isBatch(d) && d.src === a && batches++ === 0) return undefined;
      if (!isData(d) || d.src !== a) return d.bytes;
      const { index, path } = (d.packet as DataPacket).proof;
      if (tampered.has(index)) return d.bytes;
      tampered.add(index);
      const out = Uint8Array.from(d.bytes);
      // After the payload: index, size, then the path; the batch signature covers them.
      const proofAt = d.bytes.length - 2 - path.length * 32 - 64;
      if (index === 0) out[proofAt + 1] = 4; // "a batch of 4": the same path and root, another statement
      if (index === 1) out[proofAt] = 0; // another position in the same batch
      if (index === 2) out[proofAt + 2] = (out[proofAt + 2] as number) ^ 1; // a bit of the path
      return out;
    };
    const sent = ["one", "two", "three"].map(
      (text) => a.engine.send(net.now, { kind: "private", to: [b.id], text }).msgId,
    );
    net.collectAll();
    assert.ok(net.runUntil(() => sent.every((id) => deliveredTo(a, id, b)), 5_000));
    assert.equal(b.rejected("bad-signature").length, 3);
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ["one", "two", "three"],
    );
  });

  it("every fragment's signature is checked: a middle fragment with altered text is bad-signature, never shown", () => {
    const { net, a, b } = net2();
    net.settle();
    let forged = 0;
    // An attacker holding the a→b session keys (a malicious relay of a's traffic) changes the text of the middle
    // fragment's first copy and seals it again: only the batch signature can tell.
    net.tamper = (d) => {
      if (!isData(d) || d.src !== a || forged > 0) return d.bytes;
      const p = d.packet as DataPacket;
      if (p.fragCount < 3 || p.fragIndex !== 1) return d.bytes;
      forged++;
      const payload = Uint8Array.from(p.payload);
      payload[0] = (payload[0] as number) ^ 0x01;
      return encodeData({ ...p, payload }, p.proof);
    };
    const text = "z".repeat(2_000); // three fragments
    const msgId = a.send({ kind: "broadcast", text });
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 5_000));
    assert.equal(forged, 1);
    assert.equal(b.rejected("bad-signature").length, 1);
    assert.deepEqual(
      messagesWith(b, msgId).map((m) => m.text),
      [text],
    );
  });

  it("a private message sealed to the wrong key: decrypt-failed at the receiver, rejected-decrypt at the sender", () => {
    const { net, a, b, c } = net3();
    net.settle();
    a.crypto.misaddress = c.id;
    const bad = a.send({ kind: "private", to: [b.id], text: "sealed to C's key by mistake" });
    assert.ok(net.runUntil(() => a.events("failed").length > 0, 2_000));
    assert.deepEqual(
      a.events("failed").map((e) => [e.msgId, e.to, e.reason, e.detail]),
      [[bad, b.id, "rejected-decrypt", "recipient could not decrypt it"]],
    );
    assert.equal(b.rejected("decrypt-failed").length, 1);
    assert.equal(b.messages().length, 0);
    assert.ok(!deliveredTo(a, bad, b));
    assert.equal(a.peerInfo(b).parked, 0, "a rejected message is not parked for another try");
    a.crypto.misaddress = undefined;
    const good = a.send({ kind: "private", to: [b.id], text: "sealed properly" });
    assert.ok(net.runUntil(() => deliveredTo(a, good, b), 2_000));
    net.runFor(1_000);
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ["sealed properly"],
    );
    assert.equal(a.events("failed").length, 1);
  });

  it("a message that is not UTF-8, or whose fragments disagree, is skipped in order and reported in ACKs (code 2)", () => {
    const { net, a, b } = net2();
    net.inject(
      b,
      a.address,
      craftData(a, { epoch: 1, seq: 0, floor: 0, msgId: "d0".repeat(16), payload: Uint8Array.of(0xc3) }),
    );
    assert.equal(b.rejected("bad-utf8").length, 1);
    net.inject(
      b,
      a.address,
      craftData(a, {
        epoch: 1,
        seq: 1,
        floor: 0,
        msgId: "d1".repeat(16),
        text: "x",
        fragIndex: 0,
        fragCount: 2,
      }),
    );
    net.inject(
      b,
      a.address,
      craftData(a, {
        epoch: 1,
        seq: 2,
        floor: 0,
        msgId: "d2".repeat(16),
        text: "y",
        fragIndex: 1,
        fragCount: 2,
      }),
    );
    assert.equal(b.rejected("inconsistent-fragments").length, 1);
    net.inject(
      b,
      a.address,
      craftData(a, { epoch: 1, seq: 3, floor: 0, msgId: "d3".repeat(16), text: "fine" }),
    );
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ["fine"],
    );
    const ack = packetOf<AckPacket>(net.sent.filter((d) => isAck(d) && d.src === b).at(-1));
    assert.equal(ack.next, 4);
    assert.deepEqual(ack.rejects, [
      { seq: 0, code: 2 },
      { seq: 1, code: 2 },
    ]);
  });

  it("a rejection (code 2) in an authentic ACK ends the message `failed` rejected-malformed, not parked", () => {
    const { net, a, b } = net2();
    net.settle();
    net.drop((d) => d.src === a && isData(d));
    const msgId = a.send({ kind: "broadcast", text: "judged malformed" });
    const seq = packetOf<DataPacket>(net.sent.filter((d) => isData(d) && d.src === a).at(-1)).seq;
    const ack = encodeAck({ epoch: 1, next: seq + 1, ranges: [], rejects: [{ seq, code: 2 }] });
    net.inject(a, b.address, ack);
    assert.deepEqual(
      a.events("failed").map((e) => [e.msgId, e.reason, e.detail]),
      [[msgId, "rejected-malformed", "recipient refused it as malformed"]],
    );
    assert.ok(!deliveredTo(a, msgId, b));
    assert.equal(a.peerInfo(b).parked, 0);
    assert.equal(a.engine.pendingCount(), 0);
  });

  it("a datagram from a key not in the directory is rejected as unknown-sender and answered with nothing", () => {
    const { net, b, c } = net3(1, ["C"]);
    net.runFor(100);
    c.send({ kind: "broadcast", to: [b.id], text: "let me in" });
    net.runFor(1_000);
    assert.ok(b.rejected("unknown-sender").length >= 2, "its HELLO and its DATA");
    assert.equal(b.messages().length, 0);
    assert.equal(net.sent.filter((d) => d.src === b && d.to === c.address).length, 0);
  });

  it("a replayed HELLO is rejected as replayed-hello", () => {
    const { net, a, b } = net2();
    net.settle();
    net.runFor(6_000);
    const hello = net.sent.filter((d) => isHello(d) && between(d, a, b)).at(-1);
    assert.ok(hello);
    const received = b.engine.stats().hellosReceived;
    net.inject(b, a.address, hello.bytes);
    assert.equal(b.rejected("replayed-hello").length, 1);
    assert.equal(b.engine.stats().hellosReceived, received);
  });
});

describe("engine: presence and roaming", () => {
  it("HELLO at start asks for a reply; heartbeats every 5 s ± 10%; offline after 16 s of silence; back on hearing", () => {
    const { net, a, b } = net2();
    net.settle();
    const first = net.sent.find((d) => isHello(d) && between(d, a, b));
    assert.equal((packetOf<HelloPacket>(first).flags & HelloFlags.ReplyWanted) !== 0, true);
    net.runFor(30_000);
    const times = net.sent.filter((d) => isHello(d) && between(d, a, b)).map((d) => d.at);
    const gaps = times.slice(2).map((t, i) => t - (times[i + 1] ?? 0));
    assert.ok(gaps.length >= 4);
    assert.ok(
      gaps.every((g) => g >= 4_500 && g <= 5_500),
      `${gaps}`,
    );
    assert.equal(a.events("peer-offline").length, 0);
    net.drop((d) => d.src === b);
    const silentFrom = net.now;
    assert.ok(net.runUntil(() => a.events("peer-offline").length > 0, 30_000));
    const offlineAt = a.timeOf((e) => e.type === "peer-offline") ?? 0;
    const lastHeard = Math.max(
      ...net.sent.filter((d) => d.src === b && d.at < silentFrom).map((d) => d.at + 1),
    );
    assert.ok(offlineAt - lastHeard >= DEFAULT_CONFIG.offlineAfterMs, `${offlineAt - lastHeard}`);
    assert.ok(offlineAt - lastHeard <= DEFAULT_CONFIG.offlineAfterMs + 1, `${offlineAt - lastHeard}`);
    assert.equal(a.peerInfo(b).online, false);
    net.heal();
    assert.ok(net.runUntil(() => a.peerInfo(b).online, 10_000));
  });

  it("no heartbeat on a link that carries acknowledged DATA: it resumes 5 s after the last; the other way keeps its own", () => {
    const { net, a, b } = net2();
    net.settle();
    net.runFor(1_000);
    const from = net.now;
    let lastSent = 0;
    for (let i = 0; i < 20; i++) {
      lastSent = net.now;
      a.send({ kind: "broadcast", text: `tick ${i}` });
      net.runFor(1_000);
    }
    net.runFor(10_000);
    const hellos = (x: Node, y: Node) =>
      net.sent.filter((d) => isHello(d) && between(d, x, y) && d.at > from).map((d) => d.at);
    // A → B: nothing while A's messages were being acknowledged, then one a heartbeat after the last of them.
    const fromA = hellos(a, b);
    assert.equal(fromA[0], lastSent + DEFAULT_CONFIG.heartbeatMs, `${fromA}`);
    // B → A: B sent no DATA, so its heartbeats go on every 5 s ± 10%.
    const fromB = hellos(b, a);
    assert.ok(fromB.length >= 5, `${fromB}`);
    assert.ok(fromB.slice(1).every((t, i) => t - (fromB[i] ?? 0) >= 4_500 && t - (fromB[i] ?? 0) <= 5_500));
    assert.equal(a.messages().length + b.messages().length, 20);
    assert.equal(a.events("peer-offline").length + b.events("peer-offline").length, 0);
  });

  it("40% loss both ways, a message every 2 s for 2 minutes: fewer HELLOs, and neither side ever sees the other offline", () => {
    const { net, a, b } = net2(5);
    net.settle();
    net.lossy(0.4);
    const from = net.now;
    for (let i = 0; i < 60; i++) {
      a.send({ kind: "broadcast", text: `a${i}` });
      net.runFor(2_000);
    }
    net.runFor(5_000);
    assert.equal(b.messages().length, 60);
    assert.equal(a.events("peer-offline").length + b.events("peer-offline").length, 0);
    const count = (x: Node, y: Node) =>
      net.sent.filter((d) => isHello(d) && between(d, x, y) && d.at > from).length;
    assert.ok(count(a, b) < count(b, a), `A → B ${count(a, b)}, B → A ${count(b, a)}`);
  });

  it("an ACK changes no state that must be saved: the RTT estimate waits for the next change that must", () => {
    const { net, a, b } = net2();
    net.settle();
    net.runFor(1_000); // past the start-up HELLOs
    net.drop((d) => isAck(d) && d.src === b);
    const before = a.snapshots.get(b.id);
    const msgId = a.send({ kind: "broadcast", text: "hi" });
    const afterSend = a.snapshots.get(b.id);
    assert.notEqual(afterSend, before); // the sequence number moved: saved before the DATA left
    net.runFor(1);
    const ack = net.sent.find((d) => isAck(d) && d.src === b);
    assert.ok(ack);
    net.inject(a, b.address, ack.bytes);
    assert.ok(deliveredTo(a, msgId, b));
    assert.equal(a.snapshots.get(b.id), afterSend);
  });

  it("roaming: after a peer's address changes, replies go to its new address; stale copies do not move it back", () => {
    const { net, a, b } = net2();
    net.settle();
    const oldAddress = a.address;
    const oldData = net.sent.filter((d) => d.src === a && d.to === b.address);
    a.address = "192.168.7.7:7777";
    const msgId = a.send({ kind: "broadcast", text: "from my new address" });
    assert.ok(net.runUntil(() => deliveredTo(a, msgId, b), 1_000));
    assert.equal(b.peerInfo(a).address, "192.168.7.7:7777");
    const acks = net.sent.filter((d) => isAck(d) && d.src === b);
    assert.ok(acks.length > 0 && acks.every((d) => d.to === "192.168.7.7:7777"));
    // A replay of A's traffic from elsewhere (its old address, an attacker's) is not fresh: no address is learnt.
    const data = net.sent.filter((d) => isData(d) && d.src === a);
    for (const d of [...oldData, ...data]) net.inject(b, "203.0.113.66:666", d.bytes, a);
    for (const d of data) net.inject(b, oldAddress, d.bytes, a);
    assert.equal(b.peerInfo(a).address, "192.168.7.7:7777");
    const reply = b.send({ kind: "broadcast", text: "and back" });
    assert.ok(net.runUntil(() => deliveredTo(b, reply, a), 1_000));
    assert.ok(net.sent.filter((d) => isData(d) && d.src === b).every((d) => d.to === "192.168.7.7:7777"));
  });
});

describe("engine: timers", () => {
  it("a port call that throws in handleTimeout leaves no peer unscheduled: every peer keeps its heartbeats", () => {
    const keys = [0, 1, 2, 3].map((i) => modelKeys(7, i));
    const directory = new Map(keys.map((k) => [k.id, k]));
    const crypto = new ModelCrypto(keys[0] as ModelKeys, directory);
    // The randomness port fails once, in the middle of the first HELLO's scheduling.
    const rng = new SeededRng(1);
    const nextU32 = rng.nextU32.bind(rng);
    let failOnce = false;
    rng.nextU32 = () => {
      if (failOnce) {
        failOnce = false;
        throw new Error("a transient failure");
      }
      return nextU32();
    };
    const engine = new Engine({
      crypto,
      rng,
      deliveryLog: { has: () => false, hasAnyFrom: () => false },
      now: 0,
      epoch: 1,
      peers: keys.slice(1).map((k, i) => ({ id: k.id, address: `peer${i + 1}` })),
      // The peers never answer: they are probed, here every second.
      config: { probeMsMax: 1000 },
    });
    // The three peers are due together; the HELLO to the first throws part-way through.
    failOnce = true;
    assert.throws(() => engine.handleTimeout(0), /a transient failure/);
    const hellos = new Map<Address, number>();
    const drain = () => {
      for (let t = engine.pollTransmit(); t; t = engine.pollTransmit())
        hellos.set(t.to, (hellos.get(t.to) ?? 0) + 1);
    };
    drain();
    for (let now = 1; now <= 10_000; now++) {
      const at = engine.pollTimeout();
      if (at === undefined) break;
      now = Math.max(now, Math.ceil(at));
      engine.handleTimeout(now);
      drain();
    }
    for (const address of ["peer1", "peer2", "peer3"])
      assert.ok((hellos.get(address) ?? 0) >= 9, `${address}: ${hellos.get(address) ?? 0} HELLOs in 10 s`);
  });
});

describe("engine: floor and epoch edge cases", () => {
  it("a DATA whose own floor covers the gap is accepted even ≥ RECV_WINDOW past the receiver's next", () => {
    const { net, a, b } = net2();
    // A's engine is only used for its identity here; B gets hand-made (properly signed) datagrams.
    net.inject(
      b,
      a.address,
      craftData(a, { epoch: 1, seq: 0, floor: 0, msgId: "a0".repeat(16), text: "m0" }),
    );
    assert.equal(b.messages().length, 1);
    // Seqs 1..399 were given up by A during an outage (its HELLOs carrying the floor were lost too).
    const seq = 400;
    assert.ok(seq - 1 >= RECV_WINDOW);
    net.inject(b, a.address, craftData(a, { epoch: 1, seq, floor: seq, msgId: "a1".repeat(16), text: "m1" }));
    assert.deepEqual(b.rejected("beyond-window"), []);
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ["m0", "m1"],
    );
  });

  it("a HELLO from an epoch older than the sender's current stream is refused and teaches no address", () => {
    const { net, a, b } = net2();
    // A restarted into epoch 2; B saw its DATA first. A HELLO of epoch 1 that B never saw is then replayed.
    net.inject(
      b,
      a.address,
      craftData(a, { epoch: 2, seq: 0, floor: 0, msgId: "b0".repeat(16), text: "new" }),
    );
    const oldHello = encodeHello({ epoch: 1, floor: 0, timestamp: 99_999_999, flags: 0, echo: 0 });
    net.inject(b, "203.0.113.66:666", oldHello, a);
    assert.equal(b.peerInfo(a).address, a.address);
    assert.equal(b.events("rejected").length, 1);
  });

  it("a frame inside the sender's window is never refused by the receiver as beyond-window", () => {
    const { net, a, b } = net2();
    net.settle();
    // Five 61-fragment messages; the last fragment of the first (seq 60) is lost three times.
    let lost = 0;
    net.tamper = (d) =>
      isData(d) && (d.packet as DataPacket).seq === 60 && lost++ < 3 ? undefined : d.bytes;
    const ids = [0, 1, 2, 3, 4].map((i) => a.send({ kind: "broadcast", text: String(i).repeat(65_000) }));
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, b)), 10_000));
    assert.equal(b.rejected("beyond-window").length, 0);
    assert.ok(a.engine.stats().retransmits <= 10, `${a.engine.stats().retransmits} retransmits for 3 losses`);
  });

  it("DATA of an older epoch than the receiver's stream is stale-epoch", () => {
    const { net, a, b } = net2();
    net.inject(
      b,
      a.address,
      craftData(a, { epoch: 5, seq: 0, floor: 0, msgId: "c0".repeat(16), text: "five" }),
    );
    net.inject(
      b,
      a.address,
      craftData(a, { epoch: 4, seq: 1, floor: 0, msgId: "c1".repeat(16), text: "four" }),
    );
    assert.equal(b.rejected("stale-epoch").length, 1);
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ["five"],
    );
  });
});

describe("engine: presence (quiet toward peers that do not answer)", () => {
  /** A at 10.0.0.1, B answering, and silent peers whose every datagram is lost, as if they never started. */
  function withSilentPeers(silent: number, config: Partial<EngineConfig> = {}) {
    const names = ["A", "B", ...Array.from({ length: silent }, (_, i) => String.fromCharCode(67 + i))];
    const net = new Net(3, names, [], config);
    const quiet = new Set(net.nodes.slice(2).map((n) => n.address));
    net.drop((d) => quiet.has(d.to) || quiet.has(d.from));
    return { net, a: net.node("A"), b: net.node("B"), quiet, silentNodes: net.nodes.slice(2) };
  }
  const bytesFromTo = (net: Net, from: Node, to: Set<Address>, since: Millis) =>
    net.sent
      .filter((d) => d.src === from && to.has(d.to) && d.at >= since)
      .reduce((sum, d) => sum + d.bytes.length, 0);

  it("100 broadcasts with 7 peers never started: no DATA to them, only backed-off probes, far under 100 KB in 60 s", () => {
    const { net, a, b, quiet } = withSilentPeers(7);
    assert.ok(net.runUntil(() => a.peerInfo(b).online, 1_000));
    const t0 = net.now;
    const ids: MsgId[] = [];
    for (let i = 0; i < 100; i++) {
      ids.push(a.send({ kind: "broadcast", text: `broadcast ${i} ${"x".repeat(150)}` }));
      net.runFor(600);
    }
    assert.ok(net.now - t0 >= 60_000);
    const toQuiet = net.sent.filter((d) => d.src === a && quiet.has(d.to) && d.at >= t0);
    assert.equal(toQuiet.filter(isData).length, 0, "no DATA to a peer never heard from");
    assert.ok(toQuiet.every(isHello));
    const bytes = bytesFromTo(net, a, quiet, t0);
    // Per silent peer: probes at about 0, 1, 3, 7, 15, 31 s, then every 30 s: at most 7 in the first minute.
    assert.ok(toQuiet.length <= 7 * 7, `${toQuiet.length} probes`);
    assert.ok(bytes < 100_000, `${bytes} bytes to the silent peers in 60 s`);
    assert.ok(
      ids.every((id) => deliveredTo(a, id, b)),
      "the peer that answers got everything",
    );
    assert.equal(a.events("failed").length, 0);
    assert.equal(a.events("waiting").length, 0, "nothing was given up: nothing was tried");
    for (const p of a.engine.peers()) if (p.id !== b.id) assert.equal(p.parked, 100);
  });

  it("messages that waited for a peer go once it is heard, in the order written, exactly once", () => {
    const { net, a, quiet, silentNodes } = withSilentPeers(2);

    const ids = ["one", "two", "three"].map((text) => a.send({ kind: "broadcast", text }));
    net.runFor(20_000);
    const c = silentNodes[0] as Node;
    quiet.delete(c.address); // C starts
    assert.ok(net.runUntil(() => ids.every((id) => deliveredTo(a, id, c)), 40_000));
    net.runFor(5_000);
    assert.deepEqual(
      c
        .messages()
        .filter((m) => m.from === a.id)
        .map((m) => m.text),
      ["one", "two", "three"],
    );
  });

  it("a peer that stops answering: its messages wait (not failed), later ones are not sent, probation lets one go first", () => {
    const { net, a, b } = net2();
    net.settle();
    net.drop(() => true);
    const first = a.send({ kind: "broadcast", text: "first" });
    assert.ok(net.runUntil(() => a.events("waiting").some((e) => e.msgId === first), 20_000));
    const gaveUpAt = net.now;
    const second = a.send({ kind: "broadcast", text: "second" });
    const third = a.send({ kind: "broadcast", text: "third" });
    net.runFor(20_000);
    const dataSince = net.sent.filter((d) => d.src === a && isData(d) && d.at > gaveUpAt);
    assert.equal(dataSince.length, 0, "nothing but probes while the peer is silent");
    assert.equal(a.peerInfo(b).parked, 3);
    // Only B → A works: A hears B, sends one message, and waits for an ACK before the rest.
    net.drop((d) => d.src === a);
    assert.ok(net.runUntil(() => a.peerInfo(b).online, 20_000));
    const heardAt = net.now;
    net.runFor(15_000);
    const tried = new Set(
      net.sent
        .filter((d) => d.src === a && isData(d) && d.at >= heardAt)
        .map((d) => (d.packet as DataPacket).msgId),
    );
    assert.deepEqual([...tried], [first], "on probation: one message's tries, not the backlog's");
    net.heal();
    assert.ok(net.runUntil(() => [first, second, third].every((id) => deliveredTo(a, id, b)), 40_000));
    assert.deepEqual(
      b.messages().map((m) => m.text),
      ["first", "second", "third"],
    );
    assert.equal(a.events("failed").length, 0);
  });

  it("a Leaving HELLO shows the peer offline at once, and what was on its way to it waits (cause `left`)", () => {
    const { net, a, b } = net2();
    net.settle();
    net.drop((d) => d.src === a && isData(d)); // A's message stays in flight
    const msgId = a.send({ kind: "broadcast", text: "in flight" });
    net.runFor(20);
    b.engine.leave(net.now);
    b.collect();
    net.drop((d) => d.src === b || isData(d)); // B has quit
    assert.ok(net.runUntil(() => a.events("peer-offline").length > 0, 50));
    const waiting = a.events("waiting");
    assert.equal(waiting.length, 1);
    assert.equal(waiting[0]?.msgId, msgId);
    assert.equal(waiting[0]?.cause, "left");
    const leftAt = net.now;
    net.runFor(10_000);
    const sentSince = net.sent.filter((d) => d.src === a && d.at > leftAt);
    assert.ok(sentSince.every(isHello), "no more DATA toward a peer that left");
    assert.ok(sentSince.length <= 5, `${sentSince.length} probes in 10 s`);
  });

  it("a link cut for 3 s with messages both ways: ten give-ups do not stretch the probes; all arrive soon after, in order", () => {
    const config = { heartbeatMs: 200, offlineAfterMs: 1000, triesMax: 10, rtoMsMax: 100 };
    const net = new Net(5, ["A", "B"], [], config);
    const [a, b] = [net.node("A"), net.node("B")];
    net.settle();
    net.drop(() => true);
    const fromA: MsgId[] = [];
    const fromB: MsgId[] = [];
    for (let i = 0; i < 10; i++) {
      fromA.push(a.send({ kind: "broadcast", text: `a${i}` }));
      fromB.push(b.send({ kind: "broadcast", text: `b${i}` }));
      net.runFor(10);
    }
    net.runFor(3_000);
    assert.equal(a.events("waiting").length, 10);
    net.heal();
    const healedAt = net.now;
    const all = () =>
      fromA.every((id) => deliveredTo(a, id, b)) && fromB.every((id) => deliveredTo(b, id, a));
    assert.ok(net.runUntil(all, 30_000));
    // Probes went out at about 0, 1 and 3 s of the outage, the next one about 4 s after the heal.
    assert.ok(net.now - healedAt < 6_000, `${net.now - healedAt} ms after the heal`);
    assert.deepEqual(
      b.messages().map((m) => m.text),
      fromA.map((_, i) => `a${i}`),
    );
  });

  it("a message that waits longer than expireMs fails for that peer, once, as `expired`", () => {
    const { net, a, silentNodes } = withSilentPeers(1, { expireMs: 60_000 });
    const c = silentNodes[0] as Node;
    const msgId = a.send({ kind: "private", to: [c.id], text: "are you there?" });
    net.runFor(59_000);
    assert.equal(a.events("failed").length, 0);
    net.runFor(40_000);
    const failed = a.events("failed");
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.msgId, msgId);
    assert.equal(failed[0]?.reason, "expired");
    assert.equal(failed[0]?.detail, "not delivered within 60 seconds");
    assert.equal(a.peerInfo(c).parked, 0);
  });

  it("probes across many silent peers stay within probesPerSecondMax", () => {
    const { net, a, quiet } = withSilentPeers(60, { probesPerSecondMax: 16 });
    net.runFor(30_000);
    const probes = net.sent.filter((d) => d.src === a && quiet.has(d.to)).map((d) => d.at);
    for (let t = 1_000; t < 31_000; t += 1_000) {
      const inSecond = probes.filter((at) => at >= t && at < t + 1_000).length;
      // A full bucket (16) plus one second's refill at most.
      assert.ok(inSecond <= 32, `${inSecond} probes in [${t}, ${t + 1000}) ms`);
    }
    assert.ok(probes.length <= 16 + 16 * 30, `${probes.length} probes in 30 s`);
    assert.ok(new Set(net.sent.filter((d) => d.src === a).map((d) => d.to)).size >= 60, "every peer probed");
  });

  it("retryWaiting probes a silent peer now and restarts its backoff; it sends no DATA", () => {
    const { net, a, silentNodes } = withSilentPeers(1);
    const c = silentNodes[0] as Node;
    a.send({ kind: "private", to: [c.id], text: "hello?" });
    net.runFor(100_000);
    const before = net.sent.length;
    assert.equal(a.engine.retryWaiting(net.now), 1);
    assert.equal(a.engine.pollTimeout(), net.now, "due now");
    net.runFor(1);
    const now = net.sent.slice(before).filter((d) => d.src === a && d.to === c.address);
    assert.equal(now.length, 1);
    assert.ok(isHello(now[0] as Datagram));
    assert.equal(packetOf<HelloPacket>(now[0]).flags & HelloFlags.ReplyWanted, HelloFlags.ReplyWanted);
  });
});
