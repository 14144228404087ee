/**
 * Many real nodes in this one process over loopback (real crypto, memory stores): the time from every node
 * broadcasting one message at once until every one of the N × (N - 1) deliveries happened, and memory per node and
 * per peer entry. One process means one core: this measures the protocol's total work for a round, not parallelism.
 */

import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { generateSecretKeys, peerIdOf, publicKeysOf } from "../src/crypto/keys.ts";
import { createCryptoPort, staticKeyDirectory } from "../src/crypto/port.ts";
import type { EngineConfig } from "../src/engine/config.ts";
import { ChatNode } from "../src/node/chat-node.ts";
import type { Contact } from "../src/node/types.ts";
import { keySourceOf } from "../src/session/key-source.ts";
import { createMemoryStore } from "../src/storage/memory.ts";
import { freePorts } from "../test/helpers/loopback-nodes.ts";

export interface ScaleResult {
  nodes: number;
  /** Whether every node received every other node's message within the wait. */
  complete: boolean;
  /** Time from the first broadcast until every node received every other node's message (NaN if it did not). */
  roundMs: number;
  /** How long the round was waited for. */
  waitedMs: number;
  /** ...and until every sender had every ACK. */
  roundAckedMs: number;
  deliveries: number;
  expected: number;
  startMs: number;
  /** Heap + external memory growth after start (all peers online), per node and per peer entry (node × peer). */
  bytesPerNode: number;
  bytesPerPeer: number;
  /** The same after the round (messages stored in the memory stores included). */
  bytesPerNodeAfterRound: number;
  rssPerNode: number;
  /** Engine counters summed over every node, over the round: what the round cost on the wire. */
  round: { datagrams: number; retransmits: number; failed: number; duplicates: number };
}

/** V8's gc(), exposed at run time: the bench measures memory after forced collections. */
export function gcFunction(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

/** Heap + external (and RSS) after three forced collections. */
export function memory(gc: () => void): { used: number; rss: number } {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { used: m.heapUsed + m.external, rss: m.rss };
}

/** A CPU profile of this process between start and stopInto (node --cpu-prof covers a whole process). */
async function startProfiler(): Promise<{ stopInto(path: string): Promise<void> }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return {
    async stopInto(path) {
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(path, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Resolves true when `predicate` holds, false after `timeoutMs`. */
async function within(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setImmediate(r));
  }
  return true;
}

export async function scale(
  count: number,
  textBytes: number,
  log: (s: string) => void,
  roundWaitMs = 30_000,
  config: Partial<EngineConfig> = {},
  /** Where to write a V8 CPU profile of the round alone (start-up left out), if anywhere. */
  profilePath?: string,
): Promise<ScaleResult> {
  const gc = gcFunction();
  const ports = await freePorts(count);
  const secrets = ports.map(() => generateSecretKeys());
  const publicKeys = secrets.map(publicKeysOf);
  const contacts: Contact[] = ports.map((port, i) => ({
    id: peerIdOf(publicKeys[i] as ReturnType<typeof publicKeysOf>),
    name: `s${i}`,
    host: "127.0.0.1",
    port,
  }));
  const directory = staticKeyDirectory(publicKeys);
  const before = memory(gc);
  const t0 = performance.now();
  const nodes = contacts.map(
    (self, i) =>
      new ChatNode({
        self,
        contacts,
        crypto: createCryptoPort({ identity: secrets[i] as (typeof secrets)[number], directory }),
        sessionKeys: keySourceOf(secrets[i] as (typeof secrets)[number], directory),
        store: createMemoryStore(),
        ephemeral: true,
        closeGraceMs: 0,
        config,
      }),
  );
  let online = 0;
  let received = 0;
  let acked = 0;
  let failed = 0;
  for (const n of nodes) {
    n.on("peer-online", () => online++);
    n.on("message", () => received++);
    n.on("delivered", () => acked++);
    n.on("failed", () => failed++);
  }
  const totals = () => {
    const t = { datagrams: 0, retransmits: 0, failed: 0, duplicates: 0, early: 0, hellos: 0, acks: 0 };
    for (const n of nodes) {
      const s = n.stats();
      t.datagrams += s.datagramsOut;
      t.retransmits += s.retransmits;
      t.failed += s.messagesFailed;
      t.duplicates += s.duplicates;
      t.early += s.earlyRetransmits;
      t.hellos += s.hellosSent;
      t.acks += s.acksSent;
    }
    return t;
  };
  const progress = setInterval(() => {
    if (process.env.BENCH_DEBUG) {
      const s = nodes[1]?.stats();
      log(
        `    ${(performance.now() - t0).toFixed(0)} ms: online ${online}, received ${received}, acked ${acked}, failed ${failed}, ${JSON.stringify(totals())} ${process.env.BENCH_DEBUG === "2" ? JSON.stringify({ ...s, faults: undefined }) : ""}`,
      );
    }
  }, 250);
  try {
    await Promise.all(nodes.map((n) => n.start()));
    const expected = count * (count - 1);
    await until(() => online >= expected, 60_000, "every node to see every peer online");
    const startMs = performance.now() - t0;
    // Let the start-up HELLO traffic settle before the round.
    await new Promise((r) => setTimeout(r, 200));
    const started = memory(gc);
    const t1 = totals();
    const text = "x".repeat(textBytes);
    const profiler = profilePath ? await startProfiler() : undefined;
    const r0 = performance.now();
    if (process.env.BENCH_DEBUG) log(`    round starts at ${(r0 - t0).toFixed(0)} ms`);
    for (const n of nodes) n.broadcast(text);
    const complete = await within(() => received >= expected, roundWaitMs);
    const roundMs = complete ? performance.now() - r0 : Number.NaN;
    if (profiler && profilePath) await profiler.stopInto(profilePath);
    const ackedAll = complete && (await within(() => acked >= expected, roundWaitMs));
    const roundAckedMs = ackedAll ? performance.now() - r0 : Number.NaN;
    const waitedMs = performance.now() - r0;
    const t2 = totals();
    const after = memory(gc);
    const result: ScaleResult = {
      nodes: count,
      complete,
      roundMs,
      waitedMs,
      roundAckedMs,
      deliveries: received,
      expected,
      startMs,
      bytesPerNode: (started.used - before.used) / count,
      bytesPerPeer: (started.used - before.used) / expected,
      bytesPerNodeAfterRound: (after.used - before.used) / count,
      rssPerNode: (started.rss - before.rss) / count,
      round: {
        datagrams: t2.datagrams - t1.datagrams,
        retransmits: t2.retransmits - t1.retransmits,
        failed: t2.failed - t1.failed,
        duplicates: t2.duplicates - t1.duplicates,
      },
    };
    log(
      `  ${count} nodes in one process: ${complete ? `round delivered in ${roundMs.toFixed(0)} ms (acked ${roundAckedMs.toFixed(0)} ms)` : `round NOT complete after ${waitedMs.toFixed(0)} ms: ${received} of ${expected} delivered`}, ` +
        `${result.round.retransmits} retransmits, ${result.round.failed} failed, ` +
        `${(result.bytesPerNode / 1024).toFixed(1)} KiB per node, ${(result.bytesPerPeer / 1024).toFixed(2)} KiB per peer entry`,
    );
    return result;
  } finally {
    clearInterval(progress);
    await Promise.allSettled(nodes.map((n) => n.close()));
  }
}
