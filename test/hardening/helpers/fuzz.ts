/**
 * The fuzzer: random datagrams and mutations of real captured ones (bit flips, truncation, extension, field swaps,
 * splices, length lies, type and version changes, exact replays) sent over UDP to a live node in its own process,
 * while an honest peer keeps talking to it. Every datagram the node's socket received is accounted for: rejected
 * with a reason, or (exact replays of captured datagrams only) a duplicate or a replayed ACK that changes nothing.
 * Used by test/hardening/fuzz.test.ts and scripts/fuzz.ts.
 */
import type { Socket } from "node:dgram";
import type { Rng } from "../../../src/engine/ports.ts";
import { MAX_DATAGRAM_BYTES, type PeerId } from "../../../src/engine/types.ts";
import {
  DATA_FIXED_BYTES,
  HEADER_BYTES,
  MAGIC_0,
  MAGIC_1,
  PacketType,
  WIRE_VERSION,
} from "../../../src/engine/wire.ts";
import { SeededRng } from "../../../src/faults/seeded-rng.ts";
import { ChatNode } from "../../../src/node/chat-node.ts";
import { createMemoryStore } from "../../../src/storage/memory.ts";
import { freePorts } from "../../helpers/loopback-nodes.ts";
import { addressOf, Capture, type Captured, captureProxy, closeSocket, udpSocket } from "./capture.ts";
import { at, contactOf, cryptoFor, newPeerSpec, sessionKeysFor } from "./spec.ts";
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
  "version-change",
  "magic-change",
  "recipient-change",
  "sender-change",
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
  "type-change": 4,
  "version-change": 2,
  "magic-change": 2,
  "recipient-change": 4,
  "sender-change": 6,
  replay: 4,
};

function below(rng: Rng, n: number): number {
  return Math.floor((rng.nextU32() / 2 ** 32) * n);
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[below(rng, items.length)] as T;
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

export interface FuzzContext {
  corpus: readonly Captured[];
  /** Key ids worth claiming: the target's and its peers'. */
  ids: readonly PeerId[];
  target: PeerId;
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
      const n = HEADER_BYTES + below(rng, 400);
      const out = rng.bytes(n);
      out[0] = MAGIC_0;
      out[1] = MAGIC_1;
      out[2] = WIRE_VERSION;
      out[3] = 1 + below(rng, 4); // mostly real types, sometimes 4
      out.set(hexBytes(pick(rng, ctx.ids)), 4);
      out.set(hexBytes(below(rng, 4) === 0 ? pick(rng, ctx.ids) : ctx.target), 12);
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
      } else if (base.type === PacketType.Ack && b.length > 29) {
        // The range count, or the reject count after the ranges.
        const ranges = b[28] as number;
        const rejectAt = 29 + ranges * 6;
        if (below(rng, 2) === 0 || rejectAt >= b.length) b[28] = below(rng, 256);
        else b[rejectAt] = below(rng, 256);
      } else {
        return b.slice(0, Math.max(0, b.length - 1 - below(rng, 8)));
      }
      return b;
    }
    case "field-swap": {
      // Swap two equal-length fields: sender ⇄ recipient, or two random 4-byte words (epoch, seq, floor, ...).
      if (below(rng, 2) === 0) {
        const sender = b.slice(4, 12);
        b.copyWithin(4, 12, 20);
        b.set(sender, 12);
        return b;
      }
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
      if (b.length > 3) b[3] = ((b[3] as number) + 1 + below(rng, 255)) & 0xff;
      return b;
    case "version-change":
      if (b.length > 2) b[2] = ((b[2] as number) + 1 + below(rng, 255)) & 0xff;
      return b;
    case "magic-change":
      if (b.length > 1) b[below(rng, 2)] = below(rng, 256);
      return b;
    case "recipient-change":
      if (b.length >= HEADER_BYTES)
        b.set(below(rng, 2) === 0 ? rng.bytes(8) : hexBytes(pick(rng, ctx.ids)), 12);
      return b;
    case "sender-change":
      if (b.length >= HEADER_BYTES)
        b.set(below(rng, 3) === 0 ? rng.bytes(8) : hexBytes(pick(rng, ctx.ids)), 4);
      return b;
    case "replay":
      return b;
  }
}

// ---- the run ----------------------------------------------------------------------------------------------------

export interface FuzzOptions {
  count: number;
  seed: number;
  /** Datagrams sent before waiting for the target to have received them all. */
  batch?: number;
  /** The honest peer sends a message this often while fuzzing. */
  honestEveryMs?: number;
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  fuzzed: number;
  /** How the datagrams were made. */
  byMutation: Record<string, number>;
  /** Datagrams the target's socket received from the fuzzer; lostInKernel = fuzzed - received. */
  received: number;
  lostInKernel: number;
  /** Rejections the target reported for datagrams from the fuzzer's address, by reason. */
  rejectedByReason: Record<string, number>;
  rejected: number;
  /** Byte-exact copies of captured datagrams, by what the target must make of them. */
  exactReplays: { dataToTarget: number; ackToTarget: number; helloToTarget: number; notForTarget: number };
  /** Duplicate events for the msgIds of captured DATA (all from replays: those messages were long delivered). */
  duplicates: number;
  /** Received - rejected - duplicates: replayed ACKs, authentic and stale, which change nothing. */
  replayedAcks: number;
  /** Datagrams not explained by any of the above: must be 0. */
  unaccounted: number;
  /** Datagrams that made the target deliver, acknowledge or accept a HELLO: must be 0. */
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

/** Sets up alice (here) ⇄ capture proxy ⇄ bob (the target, a child process), captures a session, then fuzzes bob. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const log = options.log ?? (() => {});
  const batch = options.batch ?? 200;
  const rng = new SeededRng(options.seed);
  const started = Date.now();
  const [alicePort, bobPort] = (await freePorts(2)) as [number, number];
  const alice = newPeerSpec("alice", alicePort);
  const bob = newPeerSpec("bob", bobPort);
  const capture = new Capture();
  const { proxy, ports } = await captureProxy([alicePort, bobPort], capture);
  const [viaAlice, viaBob] = ports as [number, number];
  const config = { heartbeatMs: 300 };
  // Admission control is opened wide: this run is about what the engine makes of each datagram (flood.test.ts
  // covers admission). Every fuzz datagram must reach the engine.
  const wide = { sourceRatePerSec: 1e9, sourceBurst: 1e9, globalRatePerSec: 1e9, globalBurst: 1e9 };
  let target: Target | undefined;
  let aliceNode: ChatNode | undefined;
  let fuzzer: Socket | undefined;
  try {
    target = await startTarget({ self: 1, peers: [at(alice, viaAlice), bob], config, admission: wide });
    aliceNode = new ChatNode({
      self: contactOf(alice),
      contacts: [contactOf(alice), contactOf(at(bob, viaBob))],
      crypto: cryptoFor(alice, [alice, bob]),
      sessionKeys: sessionKeysFor(alice, [alice, bob]),
      store: createMemoryStore(),
      ephemeral: true,
      config,
      closeGraceMs: 200,
    });
    const aliceNodeRef = aliceNode;
    const aliceGot: string[] = [];
    const honestIds = new Set<string>();
    let honestAcked = 0;
    aliceNode.on("message", (m) => aliceGot.push(m.text));
    aliceNode.on("delivered", (d) => {
      if (honestIds.has(d.msgId)) honestAcked++;
    });
    await aliceNode.start();

    // 1. A real session to capture: broadcasts and private messages both ways, HELLOs and ACKs.
    for (let i = 0; i < 6; i++) aliceNode.broadcast(`capture-a-${i}`);
    aliceNode.sendPrivate("bob", "capture-a-private");
    aliceNode.broadcast("x".repeat(3000)); // three fragments
    for (let i = 0; i < 4; i++) await target.request("send", { text: `capture-b-${i}` });
    await target.request("send", { text: "capture-b-private", to: "alice" });
    const t = target;
    await eventually(
      () => t.events.filter((e) => e.type === "message").length === 8 && aliceGot.length === 5,
      10_000,
      "the capture session",
    );
    await eventually(async () => aliceNodeRef.stats().pending === 0, 10_000, "alice's messages acknowledged");
    await eventually(async () => (await t.stats()).node.pending === 0, 10_000, "bob's messages acknowledged");
    await new Promise((r) => setTimeout(r, 700)); // two heartbeats: HELLOs both ways
    capture.recording = false;
    const corpus = capture.all;
    const capturedMsgIds = new Set(corpus.flatMap((c) => (c.msgId ? [c.msgId] : [])));
    log(
      `captured ${corpus.length} distinct datagrams: ${[PacketType.Data, PacketType.Ack, PacketType.Hello]
        .map(
          (type) =>
            `${capture.count(type)} ${PacketType.Data === type ? "DATA" : type === PacketType.Ack ? "ACK" : "HELLO"}`,
        )
        .join(", ")}`,
    );

    // 2. The fuzz, with honest traffic going on.
    fuzzer = await udpSocket();
    const fuzzerAddress = addressOf(fuzzer);
    const ctx: FuzzContext = { corpus, ids: [alice.id, bob.id], target: bob.id };
    const before = await target.gcStats();
    const byMutation: Record<string, number> = {};
    const exact = { dataToTarget: 0, ackToTarget: 0, helloToTarget: 0, notForTarget: 0 };
    let honestSent = 0;
    const honestTimer = setInterval(() => {
      honestIds.add(aliceNodeRef.broadcast(`honest-${honestSent++}`).msgId);
    }, options.honestEveryMs ?? 20);
    let sent = 0;
    let lost = 0;
    let lastLog = Date.now();
    try {
      while (sent < options.count) {
        const n = Math.min(batch, options.count - sent);
        for (let i = 0; i < n; i++) {
          const { bytes, mutation } = fuzzOne(rng, ctx);
          const replayed = capture.has(bytes) ? capture.find(Buffer.from(bytes).toString("hex")) : undefined;
          const kind = replayed ? "replay" : mutation === "replay" ? "replay-changed" : mutation;
          byMutation[kind] = (byMutation[kind] ?? 0) + 1;
          if (replayed) {
            if (replayed.recipient !== bob.id) exact.notForTarget++;
            else if (replayed.type === PacketType.Data) exact.dataToTarget++;
            else if (replayed.type === PacketType.Ack) exact.ackToTarget++;
            else exact.helloToTarget++;
          }
          fuzzer.send(bytes, bobPort, "127.0.0.1");
        }
        sent += n;
        // Wait until the target's socket has them all, so that the kernel never has to drop one for lack of room.
        const want = sent - lost;
        const deadline = Date.now() + 3000;
        let got = 0;
        for (;;) {
          got = (await target.request<number>("arrivals", { address: fuzzerAddress })) ?? 0;
          if (got >= want || Date.now() > deadline) break;
          await new Promise((r) => setImmediate(r));
        }
        if (got < want) lost += want - got;
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
    const received = sent - lost;
    const settle = async () => {
      const s = await t.stats();
      const rejectedByReason = s.rejected[fuzzerAddress] ?? {};
      // Counted from the start of the fuzz: the capture session had its own (retransmitted) duplicates.
      const duplicates = Object.entries(s.duplicates)
        .filter(([id]) => capturedMsgIds.has(id as never))
        .reduce((a, [id, n]) => a + n - (before.duplicates[id] ?? 0), 0);
      return { s, rejectedByReason, rejected: sumValues(rejectedByReason), duplicates };
    };
    let final = await settle();
    await eventually(
      async () => {
        final = await settle();
        return final.rejected + final.duplicates + exact.ackToTarget >= received;
      },
      5000,
      "every fuzz datagram to be accounted for",
    ).catch(() => {});
    const after = await t.gcStats();
    const s: TargetStats = final.s;
    const honestTexts = t.events.filter((e) => e.type === "message" && e.text?.startsWith("honest-"));
    const honestRejected = Object.entries(s.rejected)
      .filter(([address]) => address !== fuzzerAddress)
      .reduce((a, [, r]) => a + sumValues(r), 0);
    const delta = (k: "messagesDelivered" | "framesAcked" | "hellosReceived") => s.node[k] - before.node[k];
    // Honest traffic explains every delivery, acknowledgement and HELLO the target accepted during the fuzz.
    const honestDeliveries = honestTexts.length;
    const accepted = delta("messagesDelivered") - honestDeliveries;
    const closeCode = await t.close();
    const report: FuzzReport = {
      seed: options.seed,
      fuzzed: sent,
      byMutation,
      received,
      lostInKernel: lost,
      rejectedByReason: final.rejectedByReason,
      rejected: final.rejected,
      exactReplays: exact,
      duplicates: final.duplicates,
      replayedAcks: received - final.rejected - final.duplicates,
      unaccounted: received - final.rejected - final.duplicates - exact.ackToTarget,
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
    return report;
  } finally {
    if (fuzzer) await closeSocket(fuzzer);
    await aliceNode?.close();
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
  const reasons = Object.entries(r.rejectedByReason)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `    ${reason.padEnd(24)} ${n}`)
    .join("\n");
  const mutations = Object.entries(r.byMutation)
    .sort((a, b) => b[1] - a[1])
    .map(([m, n]) => `${m} ${n}`)
    .join(", ");
  return [
    `seed ${r.seed}, ${(r.durationMs / 1000).toFixed(1)} s`,
    `datagrams fuzzed:      ${r.fuzzed} (${mutations})`,
    `received by the node:  ${r.received} (lost in the kernel: ${r.lostInKernel})`,
    `rejected with a reason: ${r.rejected}`,
    reasons,
    `exact replays:         DATA ${r.exactReplays.dataToTarget}, ACK ${r.exactReplays.ackToTarget}, HELLO ${r.exactReplays.helloToTarget}, addressed to another node ${r.exactReplays.notForTarget}`,
    `  duplicates dropped:  ${r.duplicates}; replayed ACKs (no effect): ${r.replayedAcks}`,
    `unaccounted:           ${r.unaccounted}`,
    `accepted:              ${r.accepted}`,
    `honest messages:       ${r.honest.sent} sent, ${r.honest.delivered} delivered, ${r.honest.shownTwice} shown twice, ${r.honest.acked} acknowledged, ${r.honest.rejected} honest datagrams rejected`,
    `crashes:               ${r.target.crashes} (exit code ${r.target.exitCode}); unhandled rejections: ${r.target.unhandledRejections}`,
    `target memory:         peak RSS ${mb(r.target.peakRssBytes)}, peak heap ${mb(r.target.peakHeapBytes)}, heap after GC ${mb(r.target.heapAfterGcBeforeBytes)} before → ${mb(r.target.heapAfterGcAfterBytes)} after`,
    `target CPU:            ${(r.target.cpuMs / 1000).toFixed(2)} s (${((r.target.cpuMs / r.fuzzed) * 1000).toFixed(1)} µs per datagram); messages stored: ${r.target.storedMessages}`,
  ].join("\n");
}
