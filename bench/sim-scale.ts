/**
 * Scale in the simulator: N real protocol engines (src/engine, the runtime's code) in this process on the
 * simulator's virtual clock and network (sim/cluster.ts), with the simulator's model crypto. Every node starts and
 * sees every peer online; then every node broadcasts one message at the same virtual instant and the clock is
 * stepped until all N × (N − 1) deliveries happened and every sender holds every ACK. What it measures is the
 * protocol's behaviour at a size no real-UDP run reaches (virtual time of the round, datagrams, retransmits,
 * exactly-once) and the engine's own state per peer entry: no sockets, and the stores are the simulator's maps.
 * The wall time is the simulator's, on one core: engines, model crypto and the event loop of the virtual network.
 */
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Cluster, type ClusterObserver } from "../sim/cluster.ts";
import type { LinkProfile } from "../sim/network.ts";
import { DEFAULT_FAULTS } from "../sim/scenario.ts";
import type { EngineStats } from "../src/engine/stats.ts";
import type { PeerId } from "../src/engine/types.ts";
import { ppmOf } from "../src/faults/ppm.ts";
import { SeededRng } from "../src/faults/seeded-rng.ts";
import { gcFunction, memory } from "./scale.ts";

export interface SimScaleResult {
  nodes: number;
  /** Loss on every directed link (0.4: 40% each way). */
  loss: number;
  /** The delay model: each link a fixed 1..delayMsMax ms, and each datagram up to jitterMs more. */
  delayMsMax: number;
  jitterMs: number;
  textBytes: number;
  seed: number;
  /** Every recipient got every message exactly once, and every sender got every ACK. */
  complete: boolean;
  exactlyOnce: boolean;
  /**
   * Virtual ms from the start until every node had seen every peer online (heard from it) at least once. The
   * start is lossless at every loss rate: at 40% loss an idle peer is heard from only by 5 s heartbeats, one of
   * them goes silent for the 16 s that mark it offline now and then, so a large cluster seldom has every entry
   * online at one moment (100 nodes at 40% loss from the start: 9,520 of 9,900 online 120 s in), and the lossy
   * start at N = 300 would cost minutes of wall time more. The loss begins with the broadcasts.
   */
  onlineVirtualMs: number;
  /** Virtual ms from the broadcasts until the last of the N × (N − 1) deliveries (NaN if it did not happen). */
  roundVirtualMs: number;
  /** ...and until the last ACK reached its sender. */
  roundAckedVirtualMs: number;
  /** Wall time of simulating the round (broadcasts until the last ACK, or until it was given up). */
  roundWallMs: number;
  /** Wall time of the whole run: building the cluster, the start until all online, the round, GCs included. */
  totalWallMs: number;
  expected: number;
  deliveries: number;
  acks: number;
  /** Deliveries of a message its recipient already had (must be 0). */
  duplicateDeliveries: number;
  /** Engine counters summed over every node, over the round. */
  round: {
    datagrams: number;
    retransmits: number;
    /** Messages given up for a recipient (must be 0). */
    failed: number;
    /** Frame copies a receiver already had, dropped and re-acknowledged (lost ACKs cause them; not deliveries). */
    duplicateFrames: number;
    hellos: number;
    /** Simulator steps (datagram deliveries and timer firings). */
    steps: number;
  };
  /** Peers marked offline by a node during the round (16 s without a word from them, or a give-up). */
  peerOffline: number;
  /**
   * Heap used + external after forced GCs, once every node saw every peer online, minus the same before the
   * cluster was built, ÷ N × (N − 1): with the simulator's stores (the persisted peer snapshots) and its
   * per-link tables...
   */
  bytesPerPeer: number;
  /** ...and the same with the simulator's snapshot maps emptied: the engines' state (plus the per-link tables). */
  bytesPerPeerEngine: number;
  /** Heap + external in use after the round (MiB), and the process RSS then. */
  heapAfterRoundMiB: number;
  rssAfterRoundMiB: number;
  /** Why the run stopped short, if it did. */
  error?: string;
}

export interface SimScaleOptions {
  nodes: number;
  loss: number;
  textBytes: number;
  seed?: number;
  /** Wall-time budget of the whole run; beyond it the run stops and reports what it reached. */
  wallBudgetMs: number;
  log: (line: string) => void;
}

/** Virtual time allowed to come online (a few heartbeats at 40% loss) and for the round. */
const ONLINE_VIRTUAL_MAX_MS = 120_000;
const ROUND_VIRTUAL_MAX_MS = 60_000;
/** After everyone is online: in-flight HELLO replies land (delay + jitter are well under this). */
const SETTLE_MS = 200;

class BudgetExceeded extends Error {}

export function simScale(o: SimScaleOptions): SimScaleResult {
  const t0 = performance.now();
  const n = o.nodes;
  const seed = o.seed ?? 1;
  const expected = n * (n - 1);
  const gc = gcFunction();
  const rng = new SeededRng(seed);
  const lossPpm = ppmOf(o.loss);
  // The simulator's delay model (sim/scenario.ts): a fixed 1..20 ms per link, plus up to 40 ms per datagram, so
  // that datagrams reorder. One profile per delay value, shared by the links that drew it (N² objects at N = 1000
  // would weigh more than the rest). No duplication, no corruption: loss is the only fault, and it starts with the
  // round (the network reads a link's profile at every send), so the start costs the same at every loss rate.
  const profiles: LinkProfile[] = [];
  for (let d = 1; d <= DEFAULT_FAULTS.delayMs; d++)
    profiles.push({
      lossPpm: 0,
      duplicatePpm: 0,
      corruptPpm: 0,
      delayMs: d,
      jitterMs: DEFAULT_FAULTS.jitterMs,
    });
  const linkRng = rng.fork();
  const links: LinkProfile[] = new Array(n * n);
  for (let i = 0; i < n * n; i++) links[i] = profiles[linkRng.below(profiles.length)] as LinkProfile;

  // Exactly-once bookkeeping without a string per delivery: counts[recipient * n + sender].
  const received = new Uint8Array(n * n);
  const ackedBy = new Uint8Array(n * n);
  /** Whether node a has seen peer b online (heard from it) at least once, at a * n + b; `online` counts them. */
  const heard = new Uint8Array(n * n);
  const sentIds: string[] = new Array(n).fill("");
  let indexOf = new Map<PeerId, number>();
  let phase: "start" | "round" = "start";
  let online = 0;
  let deliveries = 0;
  let acks = 0;
  let duplicateDeliveries = 0;
  let wrongMessages = 0;
  let failed = 0;
  let peerOffline = 0;
  let lastDeliveryAt = Number.NaN;
  let lastAckAt = Number.NaN;
  const text = "x".repeat(o.textBytes);
  const observer: ClusterObserver = {
    onSend: () => {},
    onDataFrame: () => {},
    onCrash: () => {},
    onRestart: () => {},
    afterStep: () => {},
    onEvent: (_step, now, node, event) => {
      switch (event.type) {
        case "peer-online": {
          const k = node * n + (indexOf.get(event.peer) ?? 0);
          if (heard[k] === 0) online++;
          heard[k] = 1;
          return;
        }
        case "peer-offline":
          if (phase === "round") peerOffline++;
          return;
        case "message": {
          if (phase !== "round") return;
          const from = indexOf.get(event.from) ?? -1;
          if (from < 0 || event.msgId !== sentIds[from] || event.text !== text) {
            wrongMessages++;
            return;
          }
          const k = node * n + from;
          const copies = (received[k] ?? 0) + 1;
          received[k] = copies;
          if (copies > 1) {
            duplicateDeliveries++;
            return;
          }
          deliveries++;
          if (deliveries === expected) lastDeliveryAt = now;
          return;
        }
        case "delivered": {
          if (phase !== "round") return;
          const to = indexOf.get(event.to) ?? -1;
          if (to < 0 || event.msgId !== sentIds[node]) return;
          const k = node * n + to;
          if (ackedBy[k] !== 0) return;
          ackedBy[k] = 1;
          acks++;
          if (acks === expected) lastAckAt = now;
          return;
        }
        case "failed":
          if (phase === "round") failed++;
          return;
        default:
          return;
      }
    },
  };

  const deadline = t0 + o.wallBudgetMs;
  let checks = 0;
  const overBudget = () => (++checks & 1023) === 0 && performance.now() > deadline;

  const before = memory(gc);
  const startMs = 1_700_000_000_000;
  const c = new Cluster({ nodes: n, seed, startMs, links, realCrypto: false }, rng.fork(), observer);
  indexOf = new Map(c.nodes.map((node) => [node.id, node.index]));
  let onlineVirtualMs = Number.NaN;
  let roundVirtualMs = Number.NaN;
  let roundAckedVirtualMs = Number.NaN;
  let roundWallMs = Number.NaN;
  let bytesPerPeer = Number.NaN;
  let bytesPerPeerEngine = Number.NaN;
  let error: string | undefined;
  let s0: EngineStats | undefined;
  let s1: EngineStats | undefined;
  let steps0 = 0;
  let after = { used: Number.NaN, rss: Number.NaN };
  try {
    c.runUntil(startMs + ONLINE_VIRTUAL_MAX_MS, () => {
      if (overBudget()) throw new BudgetExceeded();
      return online >= expected;
    });
    if (online < expected)
      throw new Error(
        `only ${online} of ${expected} peer entries online after ${ONLINE_VIRTUAL_MAX_MS / 1000} s virtual`,
      );
    onlineVirtualMs = c.now - startMs;
    c.runUntil(c.now + SETTLE_MS);
    const withStores = memory(gc);
    bytesPerPeer = (withStores.used - before.used) / expected;
    // The persisted snapshots are the simulator's store (JSON text, one byte a character), not the engine's state.
    let storeBytes = 0;
    for (const node of c.nodes)
      for (const json of node.store.loadPeerStates().values()) storeBytes += json.length;
    bytesPerPeerEngine = (withStores.used - before.used - storeBytes) / expected;

    s0 = c.totalStats();
    steps0 = c.step;
    phase = "round";
    for (const p of profiles) p.lossPpm = lossPpm;
    const r0 = performance.now();
    const v0 = c.now;
    for (let i = 0; i < n; i++) sentIds[i] = c.send(i, [{ kind: "broadcast", text }])[0] ?? "";
    try {
      c.runUntil(v0 + ROUND_VIRTUAL_MAX_MS, () => {
        if (overBudget()) throw new BudgetExceeded();
        return acks >= expected && deliveries >= expected;
      });
    } finally {
      roundWallMs = performance.now() - r0;
    }
    roundVirtualMs = lastDeliveryAt - v0;
    roundAckedVirtualMs = lastAckAt - v0;
    s1 = c.totalStats();
    if (deliveries < expected || acks < expected)
      error = `round not complete after ${ROUND_VIRTUAL_MAX_MS / 1000} s virtual`;
  } catch (e) {
    if (e instanceof BudgetExceeded)
      error = `stopped: over the wall-time budget of ${(o.wallBudgetMs / 1000).toFixed(0)} s`;
    else error = e instanceof Error ? e.message.split("\n")[0] : String(e);
    if (s0) s1 = c.totalStats();
  } finally {
    const m = process.memoryUsage();
    after = { used: m.heapUsed + m.external, rss: m.rss };
  }
  const diff = (k: "datagramsOut" | "retransmits" | "duplicates" | "hellosSent") =>
    s0 && s1 ? s1[k] - s0[k] : Number.NaN;
  const complete = error === undefined && deliveries === expected && acks === expected;
  const result: SimScaleResult = {
    nodes: n,
    loss: o.loss,
    delayMsMax: DEFAULT_FAULTS.delayMs,
    jitterMs: DEFAULT_FAULTS.jitterMs,
    textBytes: o.textBytes,
    seed,
    complete,
    exactlyOnce: complete && duplicateDeliveries === 0 && wrongMessages === 0,
    onlineVirtualMs,
    roundVirtualMs,
    roundAckedVirtualMs,
    roundWallMs,
    totalWallMs: performance.now() - t0,
    expected,
    deliveries,
    acks,
    duplicateDeliveries,
    round: {
      datagrams: diff("datagramsOut"),
      retransmits: diff("retransmits"),
      failed,
      duplicateFrames: diff("duplicates"),
      hellos: diff("hellosSent"),
      steps: s0 ? c.step - steps0 : 0,
    },
    peerOffline,
    bytesPerPeer,
    bytesPerPeerEngine,
    heapAfterRoundMiB: after.used / 2 ** 20,
    rssAfterRoundMiB: after.rss / 2 ** 20,
    ...(error !== undefined && { error }),
  };
  if (wrongMessages > 0)
    result.error = `${result.error ? `${result.error}; ` : ""}${wrongMessages} wrong messages`;
  o.log(`  ${describe(result)}`);
  return result;
}

export function describe(r: SimScaleResult): string {
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
  return (
    `${r.nodes} nodes, ${(r.loss * 100).toFixed(0)}% loss: ` +
    (r.complete
      ? `round delivered in ${f(r.roundVirtualMs)} ms virtual (acked ${f(r.roundAckedVirtualMs)} ms)`
      : `round NOT complete (${r.deliveries} of ${r.expected} delivered, ${r.acks} acked): ${r.error ?? ""}`) +
    `, ${f(r.roundWallMs / 1000, 1)} s wall (${f((r.roundWallMs * 1000) / r.expected, 1)} µs per delivery), ` +
    `${r.round.steps} steps, ${r.round.datagrams} datagrams, ${r.round.retransmits} retransmits, ${r.round.failed} failed, ` +
    `${r.duplicateDeliveries} duplicate deliveries, exactly once ${r.exactlyOnce ? "yes" : "NO"}` +
    `${r.peerOffline > 0 ? `, ${r.peerOffline} peers marked offline` : ""}; ` +
    `${f(r.bytesPerPeerEngine)} B per peer entry (engine; ${f(r.bytesPerPeer)} B with the sim's stores); ` +
    `online after ${f(r.onlineVirtualMs)} ms virtual, ${f(r.totalWallMs / 1000, 1)} s wall in all`
  );
}

/** What the phase ran, and why it stopped below the issue's 1000 nodes if it did. */
export interface SimScalePhase {
  sizes: number[];
  /** Sizes of the issue's list left out, and why; null if none. */
  dropped: string | null;
  runs: SimScaleResult[];
}

/**
 * Why 1000 nodes is not in the phase: measured here (commit f3263de), one 1000-node round at 0% loss takes 8.6 minutes
 * of wall time and a 6.3 GB heap, more than the default heap and about three times the rest of the bench. It runs
 * on its own with this file's command line (see the end of this file).
 */
const DROPPED =
  "1000 nodes left out of the phase: the run takes about 9 minutes and a 6 GB heap (0% loss: round in 60 ms " +
  "virtual, exactly once, 1.5 KB per peer entry); run it alone with " +
  "`node --max-old-space-size=12000 --import tsx bench/sim-scale.ts --nodes=1000`";

/** Wall-time budget of one run: a run over it stops and is reported as not complete. */
const WALL_BUDGET_MS = 180_000;

export async function simScalePhase(
  textBytes: number,
  quick: boolean,
  log: (line: string) => void,
): Promise<SimScalePhase> {
  // The full run: 100 nodes at 0% and 40% loss, 300 at 0% (at 40% they take over a minute); --quick: 100 at 0%.
  const plan: Array<{ nodes: number; loss: number }> = quick
    ? [{ nodes: 100, loss: 0 }]
    : [
        { nodes: 100, loss: 0 },
        { nodes: 100, loss: 0.4 },
        { nodes: 300, loss: 0 },
      ];
  const runs: SimScaleResult[] = [];
  for (const { nodes, loss } of plan) {
    runs.push(simScale({ nodes, loss, textBytes, wallBudgetMs: WALL_BUDGET_MS, log }));
    // Let the bench's timers and the console run between two long synchronous runs.
    await new Promise((r) => setImmediate(r));
  }
  log(`  ${DROPPED}`);
  return { sizes: [...new Set(plan.map((p) => p.nodes))], dropped: DROPPED, runs };
}

/**
 * One run on its own: `tsx bench/sim-scale.ts --nodes=N [--loss=0.4] [--seed=S]`; prints the result's line and its
 * JSON. Large N needs a larger heap (1000 nodes: node --max-old-space-size=12000 --import tsx bench/sim-scale.ts).
 */
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string, fallback: number) => {
    const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
    const value = hit === undefined ? fallback : Number(hit.slice(name.length + 3));
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number`);
    return value;
  };
  const result = simScale({
    nodes: arg("nodes", 100),
    loss: arg("loss", 0),
    seed: arg("seed", 1),
    textBytes: 200,
    wallBudgetMs: 3_600_000,
    log: (line) => console.error(line),
  });
  console.log(JSON.stringify(result));
}
