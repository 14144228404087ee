/**
 * The crash soak (scripts/crash-soak.ts): independent runs, each with two nodes in their own processes on SQLite
 * stores, each sending numbered broadcasts to the other; during a run, at random moments, SIGKILL the sender, the
 * receiver, or both at once, and start them again on the same databases. Every message queued must end up stored
 * by its recipient exactly once, and none may be shown twice across lives.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { below, ppmOf } from "../../../src/faults/ppm.ts";
import { SeededRng } from "../../../src/faults/seeded-rng.ts";
import { freePorts } from "../../helpers/loopback-nodes.ts";
import { type DbView, type PeerFixtureSpec, type PeerProcess, readDb, startPeer } from "./peer-process.ts";
import { newPeerSpec } from "./spec.ts";
import { eventually } from "./target.ts";

export interface SoakOptions {
  runs: number;
  /** SIGKILL events per run; each kills alice, bob or both. */
  kills: number;
  /** Messages each side sends per run. */
  messages: number;
  intervalMs: number;
  concurrency: number;
  seed: number;
  /**
   * Loss injected on every datagram each node sends (0 to 1). Under loss a receiver holds messages behind a hole,
   * acknowledged and saved but not yet shown, which a kill then catches in its saved state.
   */
  loss?: number;
  log?: (line: string) => void;
}

export interface RunResult {
  run: number;
  killed: { alice: number; bob: number; both: number };
  queued: number;
  delivered: number;
  lost: number;
  storedTwice: number;
  shownTwice: number;
  /** Messages in an outbox that its recipient never acknowledged, even though it stored them (should be 0). */
  unacknowledged: number;
  durationMs: number;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function soakRun(run: number, o: SoakOptions): Promise<RunResult> {
  const started = Date.now();
  const rng = new SeededRng(o.seed * 1000 + run);
  const dir = mkdtempSync(join(tmpdir(), `chatnode-soak-${run}-`));
  const ports = (await freePorts(2)) as [number, number];
  const peers = [newPeerSpec("alice", ports[0]), newPeerSpec("bob", ports[1])];
  const specs: PeerFixtureSpec[] = peers.map((p, self) => ({
    self,
    peers,
    dbPath: join(dir, `${p.name}.db`),
    sendCount: o.messages,
    intervalMs: o.intervalMs,
    config: { heartbeatMs: 250 },
    ...(o.loss && { faults: { lossOutPpm: ppmOf(o.loss) } }),
  }));
  const shown = [new Map<string, number>(), new Map<string, number>()];
  const procs: Array<PeerProcess | undefined> = [undefined, undefined];
  const killed = { alice: 0, bob: 0, both: 0 };
  const start = async (k: 0 | 1) => {
    const p = startPeer(specs[k] as PeerFixtureSpec, {
      onEvent: (e) => {
        if (e.event === "message" && e.msgId) shown[k]?.set(e.msgId, (shown[k]?.get(e.msgId) ?? 0) + 1);
      },
    });
    procs[k] = p;
    await p.ready;
  };
  const expected = (name: string) => Array.from({ length: o.messages }, (_, i) => `${name}-${i}`);
  let error: string | undefined;
  let views: [DbView, DbView] | undefined;
  try {
    await Promise.all([start(0), start(1)]);
    for (let k = 0; k < o.kills; k++) {
      await sleep(20 + below(rng, 400));
      const victim = below(rng, 3);
      const victims: Array<0 | 1> = victim === 2 ? [0, 1] : [victim as 0 | 1];
      if (victim === 0) killed.alice++;
      else if (victim === 1) killed.bob++;
      else killed.both++;
      await Promise.all(victims.map((v) => procs[v]?.kill()));
      await sleep(below(rng, 60));
      await Promise.all(victims.map((v) => start(v)));
    }
    // Let the run finish: everything stored at its recipient and acknowledged to its sender.
    await eventually(
      () => {
        const a = readDb(specs[0]?.dbPath as string);
        const b = readDb(specs[1]?.dbPath as string);
        const complete = (view: DbView, from: string) => expected(from).every((t) => view.received.has(t));
        const acked = (view: DbView) =>
          view.outgoing.size === o.messages && [...view.outgoing.values()].every((open) => open === 0);
        return complete(b, "alice") && complete(a, "bob") && acked(a) && acked(b);
      },
      60_000,
      "every message stored and acknowledged",
    ).catch((e: Error) => {
      error = e.message;
    });
    await Promise.all(procs.map((p) => p?.finish()));
    views = [readDb(specs[0]?.dbPath as string), readDb(specs[1]?.dbPath as string)];
  } catch (e) {
    error = (e as Error).message;
  } finally {
    for (const p of procs) if (p?.running()) await p.kill();
  }
  const result: RunResult = {
    run,
    killed,
    queued: 0,
    delivered: 0,
    lost: 0,
    storedTwice: 0,
    shownTwice: 0,
    unacknowledged: 0,
    durationMs: Date.now() - started,
    ...(error !== undefined && { error }),
  };
  if (views) {
    const [a, b] = views;
    for (const [sender, receiver] of [
      [a, b],
      [b, a],
    ] as const) {
      result.queued += sender.outgoing.size;
      for (const [text, open] of sender.outgoing) {
        const n = receiver.received.get(text) ?? 0;
        if (n === 0) result.lost++;
        else result.delivered++;
        if (n > 1) result.storedTwice += n - 1;
        if (n > 0 && open > 0) result.unacknowledged++;
      }
    }
    for (const m of shown) for (const n of m.values()) if (n > 1) result.shownTwice += n - 1;
    // A message must also not be queued twice (the numbered texts are unique per sender).
    if (a.outgoing.size !== o.messages || b.outgoing.size !== o.messages)
      result.error = `${result.error ?? ""} outboxes hold ${a.outgoing.size} and ${b.outgoing.size}, not ${o.messages}`;
  }
  if (!result.error) rmSync(dir, { recursive: true, force: true });
  else result.error += ` (databases kept in ${dir})`;
  return result;
}

export interface SoakReport {
  runs: number;
  kills: { alice: number; bob: number; both: number };
  queued: number;
  delivered: number;
  lost: number;
  deliveredTwice: number;
  shownTwice: number;
  unacknowledged: number;
  failedRuns: number;
  durationMs: number;
  results: RunResult[];
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const results: RunResult[] = [];
  let next = 0;
  const worker = async () => {
    for (let run = next++; run < o.runs; run = next++) {
      const r = await soakRun(run, o);
      results.push(r);
      o.log?.(
        `run ${String(run + 1).padStart(3)}: killed alice ${r.killed.alice}, bob ${r.killed.bob}, both ${r.killed.both}; ` +
          `queued ${r.queued}, delivered ${r.delivered}, lost ${r.lost}, twice ${r.storedTwice + r.shownTwice} ` +
          `(${(r.durationMs / 1000).toFixed(1)} s)${r.error ? ` ERROR ${r.error}` : ""}`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
  const sum = (f: (r: RunResult) => number) => results.reduce((a, r) => a + f(r), 0);
  return {
    runs: results.length,
    kills: {
      alice: sum((r) => r.killed.alice),
      bob: sum((r) => r.killed.bob),
      both: sum((r) => r.killed.both),
    },
    queued: sum((r) => r.queued),
    delivered: sum((r) => r.delivered),
    lost: sum((r) => r.lost),
    deliveredTwice: sum((r) => r.storedTwice),
    shownTwice: sum((r) => r.shownTwice),
    unacknowledged: sum((r) => r.unacknowledged),
    failedRuns: results.filter((r) => r.error).length,
    durationMs: Date.now() - started,
    results: results.sort((x, y) => x.run - y.run),
  };
}
