/**
 * The fuzzer, in two modes, against a live node in its own process while an honest peer keeps talking to it:
 *   wire:  what an attacker on the network sends, with no keys: random datagrams, mutations of the real sealed
 *          session datagrams captured between the nodes (bit flips, truncation, extension, splices, type, index and
 *          counter changes, exact replays), clear-text datagrams of the old protocol, and handshakes claiming a
 *          pinned key without its secret or made under a key nobody pinned. Every one must be refused by the
 *          session layer with a reason; none may reach the engine.
 *   inner: what one holding a peer's session keys (carol's) sends through that session: random engine datagrams
 *          and mutations of the real engine datagrams captured inside the sessions (length lies, field swaps,
 *          type changes, ...), so that the engine's decoder and checks stay fuzzed. Every one must
 *          be rejected by the engine with a reason, or (exact replays of carol's own) be a duplicate, a replayed
 *          ACK or a replayed HELLO that changes nothing.
 * Used by test/hardening/fuzz.test.ts and scripts/fuzz.ts.
 */
import type { Socket } from "node:dgram";
import { ChaosProxy, type TapRecord } from "../../../src/chaos/proxy.ts";
import { generateSecretKeys } from "../../../src/crypto/keys.ts";
import type { Rng } from "../../../src/engine/ports.ts";
import { MAX_DATAGRAM_BYTES } from "../../../src/engine/types.ts";
import { DATA_FIXED_BYTES, decode, HEADER_BYTES, PacketType } from "../../../src/engine/wire.ts";
import { SeededRng } from "../../../src/faults/seeded-rng.ts";
import { ChatNode } from "../../../src/node/chat-node.ts";
import { SessionPacketType } from "../../../src/session/wire.ts";
import { createMemoryStore } from "../../../src/storage/memory.ts";
import { freePorts } from "../../helpers/loopback-nodes.ts";
import { addressOf, Capture, type Captured, closeSocket, sendInner, tapInner, udpSocket } from "./capture.ts";
import { forgedInitiation, ownInitiation, staticPublicOf, tapOpened, tapWire } from "./forge.ts";
import { at, contactOf, cryptoFor, newPeerSpec, type PeerSpec, secretsOf, sessionKeysFor } from "./spec.ts";
import { eventually, startTarget, sumValues, type Target, type TargetStats } from "./target.ts";

export const MUTATIONS = [
  "random",
  "random-header",
  "bit-flip",
  "truncate",
  "extend",
  "length-lie",
  "field-swap",
  "splice",
  "type-change",
  "replay",
] as const;
export type Mutation = (typeof MUTATIONS)[number];

/** Relative weights: mostly mutations of real datagrams, which reach the deepest checks. */
const WEIGHTS: Record<Mutation, number> = {
  random: 6,
  "random-header": 8,
  "bit-flip": 20,
  truncate: 8,
  extend: 6,
  "length-lie": 10,
  "field-swap": 8,
  splice: 6,
  "type-change": 8,
  replay: 4,
};

function below(rng: Rng, n: number): number {
  return Math.floor((rng.nextU32() / 2 ** 32) * n);
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[below(rng, items.length)] as T;
}

/** Where an ACK's range count is (docs/PROTOCOL.md §4): after its type, epoch and next. */
const ACK_RANGE_COUNT_AT = HEADER_BYTES + 4 + 4;

export interface FuzzContext {
  /** The engine datagrams captured inside the sessions: what the mutations start from. */
  corpus: readonly Captured[];
}

/** One fuzz datagram: returns its bytes and how it was made. */
export function fuzzOne(rng: Rng, ctx: FuzzContext): { bytes: Uint8Array; mutation: Mutation } {
  const total = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);
  let roll = below(rng, total);
  let mutation: Mutation = "random";
  for (const m of MUTATIONS) {
    roll -= WEIGHTS[m];
    if (roll < 0) {
      mutation = m;
      break;
    }
  }
  return { bytes: mutate(rng, ctx, mutation), mutation };
}

function mutate(rng: Rng, ctx: FuzzContext, mutation: Mutation): Uint8Array {
  const base = pick(rng, ctx.corpus);
  const b = Uint8Array.from(base.bytes);
  switch (mutation) {
    case "random": {
      const n = below(rng, 8) === 0 ? below(rng, HEADER_BYTES + 1) : below(rng, MAX_DATAGRAM_BYTES + 300);
      return rng.bytes(n);
    }
    case "random-header": {
      const out = rng.bytes(HEADER_BYTES + below(rng, 400));
      out[0] = 1 + below(rng, 4); // mostly real types, sometimes 4
      return out;
    }
    case "bit-flip": {
      const flips = 1 + below(rng, 8);
      for (let i = 0; i < flips; i++) {
        const bit = below(rng, b.length * 8);
        b[bit >>> 3] = (b[bit >>> 3] as number) ^ (1 << (bit & 7));
      }
      return b;
    }
    case "truncate":
      return b.slice(0, below(rng, b.length));
    case "extend": {
      const extra = rng.bytes(1 + below(rng, below(rng, 4) === 0 ? 1300 : 80));
      const out = new Uint8Array(b.length + extra.length);
      out.set(b);
      out.set(extra, b.length);
      return out;
    }
    case "length-lie": {
      const view = new DataView(b.buffer);
      if (base.type === PacketType.Data && b.length >= DATA_FIXED_BYTES) {
        view.setUint16(DATA_FIXED_BYTES - 2, below(rng, 0x10000));
      } else if (base.type === PacketType.Ack && b.length > ACK_RANGE_COUNT_AT) {
        // The range count, or the reject count after the ranges.
        const ranges = b[ACK_RANGE_COUNT_AT] as number;
        const rejectAt = ACK_RANGE_COUNT_AT + 1 + ranges * 6;
        if (below(rng, 2) === 0 || rejectAt >= b.length) b[ACK_RANGE_COUNT_AT] = below(rng, 256);
        else b[rejectAt] = below(rng, 256);
      } else {
        return b.slice(0, Math.max(0, b.length - 1 - below(rng, 8)));
      }
      return b;
    }
    case "field-swap": {
      // Swap two random 4-byte words (epoch, seq, floor, ...).
      if (b.length < 8) return b;
      const i = below(rng, b.length - 3);
      const j = below(rng, b.length - 3);
      const wi = b.slice(i, i + 4);
      b.copyWithin(i, j, j + 4);
      b.set(wi, j);
      return b;
    }
    case "splice": {
      const other = pick(rng, ctx.corpus).bytes;
      const cutA = below(rng, b.length + 1);
      const cutB = below(rng, other.length + 1);
      const out = new Uint8Array(cutA + other.length - cutB);
      out.set(b.subarray(0, cutA));
      out.set(other.subarray(cutB), cutA);
      return out;
    }
    case "type-change":
      // Another real type (a DATA read as an ACK, ...) as often as a made-up one.
      if (b.length > 0) b[0] = below(rng, 2) === 0 ? 1 + below(rng, 3) : below(rng, 256);
      return b;
    case "replay":
      return b;
  }
}

// ---- wire mutations: sealed session datagrams -----------------------------------------------------------------

export const WIRE_MUTATIONS = [
  "random",
  "random-header",
  "bit-flip",
  "truncate",
  "extend",
  "splice",
  "type-change",
  "index-change",
  "counter-change",
  "old-protocol",
  "claimed-key",
  "unpinned-key",
  "replay",
] as const;
export type WireMutation = (typeof WIRE_MUTATIONS)[number];

const WIRE_WEIGHTS: Record<WireMutation, number> = {
  random: 6,
  "random-header": 8,
  "bit-flip": 20,
  truncate: 6,
  extend: 6,
  splice: 6,
  "type-change": 4,
  "index-change": 10,
  "counter-change": 10,
  "old-protocol": 4,
  "claimed-key": 4,
  "unpinned-key": 4,
  replay: 8,
};

export interface WireFuzzContext {
  /** Sealed datagrams captured on the wire, both ways. */
  corpus: readonly Uint8Array[];
  /** Session indices seen in the corpus: the ones worth naming. */
  indices: readonly number[];
  /** Handshakes claiming a pinned key without its secret, and handshakes under keys nobody pinned (made once). */
  claimed: readonly Uint8Array[];
  unpinned: readonly Uint8Array[];
}

function weighted<M extends string>(rng: Rng, names: readonly M[], weights: Record<M, number>): M {
  const total = names.reduce((a, m) => a + weights[m], 0);
  let roll = below(rng, total);
  for (const m of names) {
    roll -= weights[m];
    if (roll < 0) return m;
  }
  return names[0] as M;
}

/** The session indices a datagram names (sender and receiver). */
export function indicesOf(b: Uint8Array): number[] {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b[0] === SessionPacketType.Initiation && b.length >= 5) return [view.getUint32(1)];
  if (b[0] === SessionPacketType.Response && b.length >= 9) return [view.getUint32(1), view.getUint32(5)];
  if (b[0] === SessionPacketType.Transport && b.length >= 5) return [view.getUint32(1)];
  return [];
}

export function fuzzWire(rng: Rng, ctx: WireFuzzContext): { bytes: Uint8Array; mutation: WireMutation } {
  const mutation = weighted(rng, WIRE_MUTATIONS, WIRE_WEIGHTS);
  const b = Uint8Array.from(pick(rng, ctx.corpus));
  const view = new DataView(b.buffer);
  switch (mutation) {
    case "random":
      return { bytes: rng.bytes(below(rng, 8) === 0 ? below(rng, 30) : below(rng, 1500)), mutation };
    case "random-header": {
      const type = 1 + below(rng, 3);
      const n = type === 1 ? 125 : type === 2 ? 73 : 25 + below(rng, 1200);
      const out = rng.bytes(n);
      out[0] = type;
      if (below(rng, 2) === 0) new DataView(out.buffer).setUint32(type === 2 ? 5 : 1, pick(rng, ctx.indices));
      return { bytes: out, mutation };
    }
    case "bit-flip": {
      const flips = 1 + below(rng, 8);
      for (let i = 0; i < flips; i++) {
        const bit = below(rng, b.length * 8);
        b[bit >>> 3] = (b[bit >>> 3] as number) ^ (1 << (bit & 7));
      }
      return { bytes: b, mutation };
    }
    case "truncate":
      return { bytes: b.slice(0, below(rng, b.length)), mutation };
    case "extend": {
      const extra = rng.bytes(1 + below(rng, below(rng, 4) === 0 ? 1300 : 80));
      const out = new Uint8Array(b.length + extra.length);
      out.set(b);
      out.set(extra, b.length);
      return { bytes: out, mutation };
    }
    case "splice": {
      const other = pick(rng, ctx.corpus);
      const cutA = below(rng, b.length + 1);
      const cutB = below(rng, other.length + 1);
      const out = new Uint8Array(cutA + other.length - cutB);
      out.set(b.subarray(0, cutA));
      out.set(other.subarray(cutB), cutA);
      return { bytes: out, mutation };
    }
    case "type-change":
      b[0] = below(rng, 2) === 0 ? 1 + below(rng, 3) : below(rng, 256);
      return { bytes: b, mutation };
    case "index-change":
      if (b.length >= 9) {
        const at = b[0] === SessionPacketType.Response && below(rng, 2) === 0 ? 5 : 1;
        view.setUint32(at, below(rng, 3) === 0 ? rng.nextU32() : pick(rng, ctx.indices));
      }
      return { bytes: b, mutation };
    case "counter-change":
      if (b.length >= 9) {
        const counter = view.getUint32(5);
        const r = below(rng, 3);
        view.setUint32(
          5,
          r === 0 ? rng.nextU32() : r === 1 ? (counter + 1 + below(rng, 64)) >>> 0 : below(rng, 8),
        );
      }
      return { bytes: b, mutation };
    case "old-protocol": {
      // Protocol v1 ("CN", version 3, a type) or v2 (the older session types 1 … 3).
      const out = rng.bytes(20 + below(rng, 400));
      if (below(rng, 2) === 0) out.set([0x43, 0x4e, 3, 1 + below(rng, 3)]);
      else out[0] = 1 + below(rng, 3);
      return { bytes: out, mutation };
    }
    case "claimed-key":
      return { bytes: pick(rng, ctx.claimed), mutation };
    case "unpinned-key":
      return { bytes: pick(rng, ctx.unpinned), mutation };
    case "replay":
      return { bytes: b, mutation };
  }
}

// ---- the run ----------------------------------------------------------------------------------------------------

export interface FuzzOptions {
  count: number;
  seed: number;
  /** Datagrams sent before waiting for the target to have received them all. */
  batch?: number;
  /** The share of datagrams fuzzed inside carol's session (the rest on the wire); 0.5 unless told. */
  innerShare?: number;
  /** The honest peer sends a message this often while fuzzing. */
  honestEveryMs?: number;
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  fuzzed: number;
  /** How the datagrams were made ("wire:bit-flip", "inner:length-lie", ...). */
  byMutation: Record<string, number>;
  /** Datagrams the target's socket received (both modes); lostInKernel = fuzzed - received. */
  received: number;
  lostInKernel: number;
  /** On the wire, from a stranger's address, without keys. */
  wire: {
    sent: number;
    /** What the target's session layer refused during the fuzz, by reason. */
    refusedByReason: Record<string, number>;
    refused: number;
    /** Datagrams reported as "rejected": the old protocol and keys not pinned (the refusals a user hears of). */
    reported: number;
    /** Received - refused: must be 0. */
    unaccounted: number;
    /** Datagrams the target's sessions opened beyond what its peers sealed: must be 0. */
    opened: number;
  };
  /** Through carol's session (one holding her keys): engine datagrams. */
  inner: {
    sent: number;
    rejectedByReason: Record<string, number>;
    rejected: number;
    /** Byte-exact copies of captured engine datagrams, by what the target must make of them. */
    exactReplays: { dataFromCarol: number; ackFromCarol: number; helloFromCarol: number; other: number };
    /** Duplicate events for the msgIds of carol's captured DATA. */
    duplicates: number;
    /**
     * Datagrams that decode as an ACK or a HELLO: carol's own statements about her own streams (her session says
     * they are hers; an engine datagram names no sender), which the engine may take or refuse; they can mark
     * nothing delivered but her own messages, and she sends none here.
     */
    carolsControl: number;
    /** DATA and undecodable datagrams neither rejected nor a duplicate: must be 0. */
    unaccounted: number;
  };
  /** Fuzz datagrams that made the target deliver a message: must be 0. */
  accepted: number;
  honest: { sent: number; delivered: number; shownTwice: number; acked: number; rejected: number };
  target: {
    exitCode: number | null;
    crashes: number;
    unhandledRejections: number;
    peakRssBytes: number;
    peakHeapBytes: number;
    heapAfterGcBeforeBytes: number;
    heapAfterGcAfterBytes: number;
    cpuMs: number;
    storedMessages: number;
  };
  durationMs: number;
}

function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(after)) if (n - (before[k] ?? 0) > 0) out[k] = n - (before[k] ?? 0);
  return out;
}

/**
 * Sets up alice (here, honest) ⇄ capture proxy ⇄ bob (the target, a child process) and carol (here, the key
 * holder, straight to bob), captures their sessions (sealed on the wire, engine datagrams inside), then fuzzes bob.
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => {});
  const batch = options.batch ?? 200;
  const innerShare = options.innerShare ?? 0.5;
  const rng = new SeededRng(options.seed);
  const started = Date.now();
  const [alicePort, bobPort, carolPort] = (await freePorts(3)) as [number, number, number];
  const alice = newPeerSpec("alice", alicePort);
  const bob = newPeerSpec("bob", bobPort);
  const carol = newPeerSpec("carol", carolPort);
  // The wire: every distinct sealed datagram between alice and bob, both ways.
  const wireSeen = new Set<string>();
  const wireCorpus: Uint8Array[] = [];
  let recordingWire = true;
  const wireTap = (record: TapRecord) => {
    const hex = Buffer.from(record.bytes).toString("hex");
    if (!recordingWire || wireSeen.has(hex)) return;
    wireSeen.add(hex);
    wireCorpus.push(Uint8Array.from(record.bytes));
  };
  // A fault-free proxy (captureProxy's, but tapping raw bytes: Capture decodes engine datagrams, which the wire no
  // longer carries).
  const proxy = await ChaosProxy.start({
    routes: [alicePort, bobPort].map((port) => ({
      listenHost: "127.0.0.1",
      listenPort: 0,
      targetHost: "127.0.0.1",
      targetPort: port,
    })),
    tap: wireTap,
  });
  const [viaAlice, viaBob] = proxy.ports() as [number, number];
  const config = { heartbeatMs: 300 };
  // Admission control is opened wide: this run is about what the session layer and the engine make of each
  // datagram (flood.test.ts covers admission). Every fuzz datagram must get past it.
  const wide = { sourceRatePerSec: 1e9, sourceBurst: 1e9, globalRatePerSec: 1e9, globalBurst: 1e9 };
  let target: Target | undefined;
  let aliceNode: ChatNode | undefined;
  let carolNode: ChatNode | undefined;
  let fuzzer: Socket | undefined;
  const nodeOf = (self: PeerSpec, peer: PeerSpec, peerAt: PeerSpec) =>
    new ChatNode({
      self: contactOf(self),
      contacts: [contactOf(self), contactOf(peerAt)],
      crypto: cryptoFor(self, [self, peer]),
      sessionKeys: sessionKeysFor(self, [self, peer]),
      store: createMemoryStore(),
      ephemeral: true,
      config,
      closeGraceMs: 200,
    });
  try {
    target = await startTarget({
      self: 1,
      peers: [at(alice, viaAlice), bob, carol],
      config,
      admission: wide,
    });
    aliceNode = nodeOf(alice, bob, at(bob, viaBob));
    carolNode = nodeOf(carol, bob, bob);
    const aliceNodeRef = aliceNode;
    const carolNodeRef = carolNode;
    const aliceGot: string[] = [];
    const carolGot: string[] = [];
    const honestIds = new Set<string>();
    let honestAcked = 0;
    aliceNode.on("message", (m) => aliceGot.push(m.text));
    carolNode.on("message", (m) => carolGot.push(m.text));
    aliceNode.on("delivered", (d) => {
      if (honestIds.has(d.msgId)) honestAcked++;
    });
    await aliceNode.start();
    await carolNode.start();
    // Inside the sessions: the engine datagrams each side sealed and opened.
    const inner = new Capture();
    for (const node of [aliceNode, carolNode]) {
      tapInner(node, inner);
      tapOpened(node, inner);
    }
    const carolWire: Uint8Array[] = [];
    tapWire(carolNode, carolWire);

    // 1. Real sessions to capture: broadcasts, private and fragmented messages both ways, HELLOs and ACKs.
    for (const [node, name] of [
      [aliceNode, "a"],
      [carolNode, "c"],
    ] as const) {
      for (let i = 0; i < 4; i++) node.broadcast(`capture-${name}-${i}`);
      node.sendPrivate("bob", `capture-${name}-private`);
      node.broadcast("x".repeat(3000)); // three fragments
    }
    for (let i = 0; i < 3; i++) await target.request("send", { text: `capture-b-${i}` });
    await target.request("send", { text: "capture-b-private", to: "alice" });
    await target.request("send", { text: "capture-b-private", to: "carol" });
    const t = target;
    await eventually(
      () =>
        t.events.filter((e) => e.type === "message").length === 12 &&
        aliceGot.length === 4 &&
        carolGot.length === 4,
      10_000,
      "the capture sessions",
    );
    await eventually(
      async () => aliceNodeRef.stats().pending === 0 && carolNodeRef.stats().pending === 0,
      10_000,
      "alice's and carol's messages acknowledged",
    );
    await eventually(async () => (await t.stats()).node.pending === 0, 10_000, "bob's messages acknowledged");
    await new Promise((r) => setTimeout(r, 700)); // two heartbeats: HELLOs both ways
    recordingWire = false;
    inner.recording = false;
    const corpus = inner.all;
    const carolMsgIds = new Set(corpus.flatMap((c) => (c.msgId && c.sender === carol.id ? [c.msgId] : [])));
    const typeName = (type: PacketType) =>
      type === PacketType.Data ? "DATA" : type === PacketType.Ack ? "ACK" : "HELLO";
    log(
      `captured ${wireCorpus.length} distinct sealed datagrams on the wire and ${corpus.length} engine datagrams ` +
        `inside the sessions (${[PacketType.Data, PacketType.Ack, PacketType.Hello].map((x) => `${inner.count(x)} ${typeName(x)}`).join(", ")})`,
    );

    // 2. The fuzz, with honest traffic going on.
    fuzzer = await udpSocket();
    const fuzzerAddress = addressOf(fuzzer);
    const carolAddress = `127.0.0.1:${carolPort}`;
    const bobStatic = staticPublicOf(secretsOf(bob).x25519PrivateKey);
    const wireCtx: WireFuzzContext = {
      corpus: wireCorpus,
      indices: [...new Set(wireCorpus.flatMap(indicesOf))],
      claimed: [alice, carol].flatMap((p) =>
        Array.from({ length: 32 }, () =>
          forgedInitiation(
            staticPublicOf(secretsOf(p).x25519PrivateKey),
            generateSecretKeys().x25519PrivateKey,
            bobStatic,
          ),
        ),
      ),
      unpinned: Array.from({ length: 64 }, () =>
        ownInitiation(generateSecretKeys().x25519PrivateKey, bobStatic),
      ),
    };
    const innerCtx: FuzzContext = { corpus };
    const before = await target.gcStats();
    const byMutation: Record<string, number> = {};
    const exact = { dataFromCarol: 0, ackFromCarol: 0, helloFromCarol: 0, other: 0 };
    let honestSent = 0;
    const honestTimer = setInterval(() => {
      honestIds.add(aliceNodeRef.broadcast(`honest-${honestSent++}`).msgId);
    }, options.honestEveryMs ?? 20);
    let sent = 0;
    let wireSent = 0;
    let innerSent = 0;
    let carolsControl = 0;
    let lostWire = 0;
    let lostCarol = 0;
    const carolWireBefore = carolWire.length;
    const carolArrivalsBefore = (await target.request<number>("arrivals", { address: carolAddress })) ?? 0;
    let lastLog = Date.now();
    try {
      while (sent < options.count) {
        const n = Math.min(batch, options.count - sent);
        for (let i = 0; i < n; i++) {
          if (rng.nextU32() / 2 ** 32 < innerShare) {
            const { bytes: made, mutation } = fuzzOne(rng, innerCtx);
            // An empty datagram in a session is a keepalive, never handed to the engine: one byte instead.
            const bytes = made.length === 0 ? rng.bytes(1) : made;
            const replayed = inner.has(bytes) ? inner.find(Buffer.from(bytes).toString("hex")) : undefined;
            const kind = `inner:${replayed ? "replay" : mutation === "replay" ? "replay-changed" : mutation}`;
            byMutation[kind] = (byMutation[kind] ?? 0) + 1;
            if (replayed) {
              if (replayed.sender !== carol.id || replayed.recipient !== bob.id) exact.other++;
              else if (replayed.type === PacketType.Data) exact.dataFromCarol++;
              else if (replayed.type === PacketType.Ack) exact.ackFromCarol++;
              else exact.helloFromCarol++;
            }
            const decoded = decode(bytes);
            if (decoded.ok && decoded.packet.type !== PacketType.Data) carolsControl++;
            sendInner(carolNodeRef, bob.id, bytes);
            innerSent++;
          } else {
            const { bytes, mutation } = fuzzWire(rng, wireCtx);
            const kind = `wire:${mutation !== "replay" && wireSeen.has(Buffer.from(bytes).toString("hex")) ? "replay" : mutation}`;
            byMutation[kind] = (byMutation[kind] ?? 0) + 1;
            fuzzer.send(bytes, bobPort, "127.0.0.1");
            wireSent++;
          }
        }
        sent += n;
        // Wait until the target's socket has them all, so that the kernel never has to drop one for lack of room.
        const deadline = Date.now() + 3000;
        for (;;) {
          const gotWire = (await target.request<number>("arrivals", { address: fuzzerAddress })) ?? 0;
          const gotCarol =
            ((await target.request<number>("arrivals", { address: carolAddress })) ?? 0) -
            carolArrivalsBefore;
          const wantCarol = carolWire.length - carolWireBefore - lostCarol;
          if ((gotWire >= wireSent - lostWire && gotCarol >= wantCarol) || Date.now() > deadline) {
            if (gotWire < wireSent - lostWire) lostWire = wireSent - gotWire;
            if (gotCarol < wantCarol) lostCarol += wantCarol - gotCarol;
            break;
          }
          await new Promise((r) => setImmediate(r));
        }
        if (Date.now() - lastLog > 2000) {
          lastLog = Date.now();
          log(`  ${sent} fuzzed, ${honestSent} honest messages sent`);
        }
      }
    } finally {
      clearInterval(honestTimer);
    }

    // 3. Let the honest traffic finish, then account for every datagram.
    await eventually(
      () =>
        t.events.filter((e) => e.type === "message" && e.text?.startsWith("honest-")).length >= honestSent,
      20_000,
      "bob to receive every honest message",
    );
    await eventually(
      async () => aliceNodeRef.stats().pending === 0,
      20_000,
      "alice's honest messages acknowledged",
    );
    const refusals = (x: TargetStats) => x.node.sessions.refused as Record<string, number>;
    const settle = async () => {
      const sealed = aliceNodeRef.stats().sessions.sealed + carolNodeRef.stats().sessions.sealed;
      const x = await t.stats();
      const sealedAfter = aliceNodeRef.stats().sessions.sealed + carolNodeRef.stats().sessions.sealed;
      const refusedByReason = diff(refusals(x), refusals(before));
      const rejectedByReason = diff(x.rejected[carolAddress] ?? {}, before.rejected[carolAddress] ?? {});
      // Counted from the start of the fuzz: the capture session had its own (retransmitted) duplicates.
      const duplicates = Object.entries(x.duplicates)
        .filter(([id]) => carolMsgIds.has(id as never))
        .reduce((a, [id, n]) => a + n - (before.duplicates[id] ?? 0), 0);
      return {
        s: x,
        refusedByReason,
        refused: sumValues(refusedByReason),
        rejectedByReason,
        rejected: sumValues(rejectedByReason),
        duplicates,
        // Meaningful only when nothing was sealed meanwhile (sealed === sealedAfter). Totals, not deltas from the
        // start of the fuzz: alice and carol seal only to bob, so at rest he has opened exactly what they sealed
        // since they started, and a baseline taken while a datagram was in flight would be off.
        quiet: sealed === sealedAfter,
        opened: x.node.sessions.opened - sealed,
      };
    };
    const wireReceived = wireSent - lostWire;
    const innerReceived = innerSent - lostCarol;
    let final = await settle();
    await eventually(
      async () => {
        final = await settle();
        return (
          final.quiet &&
          final.opened === 0 &&
          final.refused >= wireReceived &&
          final.rejected + final.duplicates + carolsControl >= innerReceived
        );
      },
      5000,
      "every fuzz datagram to be accounted for",
    ).catch(() => {});
    const after = await t.gcStats();
    const s: TargetStats = final.s;
    const honestTexts = t.events.filter((e) => e.type === "message" && e.text?.startsWith("honest-"));
    const honestRejected = Object.entries(s.rejected)
      .filter(([address]) => address !== fuzzerAddress && address !== carolAddress)
      .reduce((a, [address, r]) => a + sumValues(r) - sumValues(before.rejected[address]), 0);
    // Honest traffic explains every delivery the target made during the fuzz.
    const accepted = s.node.messagesDelivered - before.node.messagesDelivered - honestTexts.length;
    const closeCode = await t.close();
    return {
      seed: options.seed,
      fuzzed: sent,
      byMutation,
      received: wireReceived + innerReceived,
      lostInKernel: lostWire + lostCarol,
      wire: {
        sent: wireSent,
        refusedByReason: final.refusedByReason,
        refused: final.refused,
        reported: sumValues(s.rejected[fuzzerAddress]),
        unaccounted: wireReceived - final.refused,
        opened: final.opened,
      },
      inner: {
        sent: innerSent,
        rejectedByReason: final.rejectedByReason,
        rejected: final.rejected,
        exactReplays: exact,
        duplicates: final.duplicates,
        carolsControl,
        unaccounted: Math.max(0, innerReceived - carolsControl - final.rejected - final.duplicates),
      },
      accepted,
      honest: {
        sent: honestSent,
        delivered: new Set(honestTexts.map((e) => e.text)).size,
        shownTwice: honestTexts.length - new Set(honestTexts.map((e) => e.text)).size,
        acked: honestAcked,
        rejected: honestRejected,
      },
      target: {
        exitCode: closeCode,
        crashes: t.events.filter((e) => e.type === "crash").length + (closeCode === 0 ? 0 : 1),
        unhandledRejections: s.unhandled,
        peakRssBytes: Math.max(s.peakRss, after.peakRss, s.maxRssKb * 1024),
        peakHeapBytes: Math.max(s.peakHeap, after.peakHeap),
        heapAfterGcBeforeBytes: before.memory.heapUsed,
        heapAfterGcAfterBytes: after.memory.heapUsed,
        cpuMs: (after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / 1000,
        storedMessages: s.history,
      },
      durationMs: Date.now() - started,
    };
  } finally {
    if (fuzzer) await closeSocket(fuzzer);
    await aliceNode?.close();
    await carolNode?.close();
    if (target && target.exitCode() === null) {
      await Promise.race([target.close(), new Promise((r) => setTimeout(r, 2000))]);
      target.kill();
    }
    await proxy.close();
  }
}

/** The figures, one per line, for people. */
export function formatFuzzReport(r: FuzzReport): string {
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  const reasons = (byReason: Record<string, number>) =>
    Object.entries(byReason)
      .sort((a, b) => b[1] - a[1])
      .map(([reason, n]) => `    ${reason.padEnd(24)} ${n}`)
      .join("\n");
  const mutations = (prefix: string) =>
    Object.entries(r.byMutation)
      .filter(([m]) => m.startsWith(prefix))
      .sort((a, b) => b[1] - a[1])
      .map(([m, n]) => `${m.slice(prefix.length)} ${n}`)
      .join(", ");
  const x = r.inner.exactReplays;
  return [
    `seed ${r.seed}, ${(r.durationMs / 1000).toFixed(1)} s`,
    `datagrams fuzzed:      ${r.fuzzed}; received by the node: ${r.received} (lost in the kernel: ${r.lostInKernel})`,
    `on the wire, no keys:  ${r.wire.sent} (${mutations("wire:")})`,
    `  refused by the session layer: ${r.wire.refused} (${r.wire.reported} reported to the user: old protocol, or a key not pinned)`,
    reasons(r.wire.refusedByReason),
    `  unaccounted: ${r.wire.unaccounted}; opened by a session: ${r.wire.opened}`,
    `inside carol's session: ${r.inner.sent} (${mutations("inner:")})`,
    `  rejected by the engine: ${r.inner.rejected}`,
    reasons(r.inner.rejectedByReason),
    `  exact replays of carol's: DATA ${x.dataFromCarol}, ACK ${x.ackFromCarol}, HELLO ${x.helloFromCarol}; of others' ${x.other}`,
    `  duplicates dropped: ${r.inner.duplicates}; carol's own ACKs and HELLOs: ${r.inner.carolsControl}; unaccounted: ${r.inner.unaccounted}`,
    `accepted:              ${r.accepted}`,
    `honest messages:       ${r.honest.sent} sent, ${r.honest.delivered} delivered, ${r.honest.shownTwice} shown twice, ${r.honest.acked} acknowledged, ${r.honest.rejected} honest datagrams rejected`,
    `crashes:               ${r.target.crashes} (exit code ${r.target.exitCode}); unhandled rejections: ${r.target.unhandledRejections}`,
    `target memory:         peak RSS ${mb(r.target.peakRssBytes)}, peak heap ${mb(r.target.peakHeapBytes)}, heap after GC ${mb(r.target.heapAfterGcBeforeBytes)} before → ${mb(r.target.heapAfterGcAfterBytes)} after`,
    `target CPU:            ${(r.target.cpuMs / 1000).toFixed(2)} s (${((r.target.cpuMs / r.fuzzed) * 1000).toFixed(1)} µs per datagram); messages stored: ${r.target.storedMessages}`,
  ].join("\n");
}
