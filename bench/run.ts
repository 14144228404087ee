/**
 * `npm run bench [-- flags]`: ChatNode's benchmark. Never part of `npm test`.
 *
 *   --quick            about one minute: short windows, the two-node phase at 0% and 40% loss only, the
 *                      simulator at 100 nodes and 0% loss only
 *   --json             print the results JSON on stdout (progress goes to stderr)
 *   --only=a,b         phases: limits, two, ten, scale, sim-scale, startup, offline (default: all)
 *   --store=memory     memory stores in the node processes (default sqlite, what a real node runs)
 *   --inflight=N       messages unacknowledged per sender, closed loop (default 64, the engine's window)
 *   --profile          run the node processes under --cpu-prof; profiles and a summary go to <out>/profile/
 *   --out=DIR          where latest.json, latest.md and loss.svg go (default bench/results)
 *   --losses=0,0.4     loss rates of the two-node phase (default 0,0.1,0.2,0.4)
 *   --kinds=broadcast  message kinds of the two-node phase (default broadcast,private)
 *   --config=k=v,...   engine settings for every node instead of the defaults (an experiment: e.g.
 *                      --config=rtoMsMin=5,rtoMsMax=1000); the results record them
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_CONFIG, type EngineConfig } from "../src/engine/config.ts";
import { startup } from "./costs.ts";
import { type Limits, measureLimits } from "./limits.ts";
import { offlinePeers } from "./offline-peers.ts";
import { killAllChildren } from "./procs.ts";
import { formatProfile } from "./profile.ts";
import {
  type BenchResults,
  evaluateTargets,
  meanLimits,
  simScaleTable,
  spreadPct,
  writeResults,
} from "./report.ts";
import { scale } from "./scale.ts";
import { simScalePhase } from "./sim-scale.ts";
import { tenNodes } from "./ten-nodes.ts";
import { type LoadPoint, twoNodes } from "./two-nodes.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PHASES = ["limits", "two", "ten", "scale", "sim-scale", "startup", "offline"] as const;
type Phase = (typeof PHASES)[number];

function flag(name: string): string | undefined {
  const prefix = `--${name}=`;
  const hit = process.argv.slice(2).find((a) => a === `--${name}` || a.startsWith(prefix));
  if (hit === undefined) return undefined;
  return hit.startsWith(prefix) ? hit.slice(prefix.length) : "";
}

const quick = flag("quick") !== undefined;
const json = flag("json") !== undefined;
const profile = flag("profile") !== undefined;
const store = flag("store") === "memory" ? "memory" : "sqlite";
const inflight = Number(flag("inflight") ?? 64);
const outDir = resolve(flag("out") || join(ROOT, "bench/results"));
const engineConfig: Partial<EngineConfig> = {};
for (const pair of (flag("config") ?? "").split(",").filter(Boolean)) {
  const [key, value] = pair.split("=");
  if (!key || !(key in DEFAULT_CONFIG) || !Number.isFinite(Number(value)))
    throw new Error(`--config: ${pair} is not one of ${Object.keys(DEFAULT_CONFIG).join(", ")} = a number`);
  (engineConfig as Record<string, number>)[key] = Number(value);
}
// --quick measures the two loss rates the targets name; the full run has the whole curve.
const losses = (flag("losses") ?? (quick ? "0,0.4" : "0,0.1,0.2,0.4")).split(",").map(Number);
const kinds = (flag("kinds") ?? "broadcast,private").split(",") as Array<"broadcast" | "private">;
for (const k of kinds) if (k !== "broadcast" && k !== "private") throw new Error(`unknown kind ${k}`);
const only = (flag("only") ?? PHASES.join(",")).split(",").filter(Boolean) as Phase[];
for (const p of only)
  if (!PHASES.includes(p)) throw new Error(`unknown phase ${p} (one of ${PHASES.join(", ")})`);

const TEXT_BYTES = 200;
const d = quick
  ? { limitsMs: 300, warmupMs: 300, measureMs: 1500, tenWarmupMs: 500, tenMeasureMs: 2000, startupRuns: 3 }
  : {
      limitsMs: 1000,
      warmupMs: 1000,
      measureMs: 5000,
      tenWarmupMs: 1000,
      tenMeasureMs: 5000,
      startupRuns: 7,
    };

const log = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);

function gitCommit(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "src"], { cwd: ROOT }).toString().trim();
    return dirty ? `${head} (src/ modified)` : head;
  } catch {
    return "unknown";
  }
}

async function main(): Promise<number> {
  const started = performance.now();
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const dataDir = mkdtempSync(join(tmpdir(), "chatnode-bench-"));
  const profileDir = join(outDir, "profile");
  const execArgv = profile ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : undefined;
  if (profile) {
    rmSync(profileDir, { recursive: true, force: true });
    mkdirSync(profileDir, { recursive: true });
  }
  const results: BenchResults = {
    meta: {
      date: new Date().toISOString(),
      command,
      quick,
      store,
      inflight,
      engineConfig,
      textBytes: TEXT_BYTES,
      node: process.version,
      openssl: process.versions.openssl,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "unknown",
      loadAvgStart: loadavg(),
      loadAvgEnd: [],
      gitCommit: gitCommit(),
      durationS: 0,
      measureMs: d.measureMs,
    },
    limitsStart: null,
    limitsEnd: null,
    limits: null,
    noise: null,
    twoNodes: [],
    tenNodes: [],
    scale: [],
    simScale: null,
    startup: null,
    offlinePeers: null,
    targets: [],
    errors: [],
  };
  const phase = async <T>(name: Phase, title: string, f: () => Promise<T>): Promise<T | undefined> => {
    if (!only.includes(name)) return undefined;
    log(`${title}`);
    try {
      return await f();
    } catch (e) {
      const message = `${title}: ${e instanceof Error ? e.message : String(e)}`;
      results.errors.push(message);
      log(`  FAILED: ${message}`);
      return undefined;
    }
  };
  const common = {
    inflight,
    textBytes: TEXT_BYTES,
    dataDir,
    store,
    log,
    drainMs: 20_000,
    ...(execArgv && { execArgv }),
    ...(Object.keys(engineConfig).length > 0 && { config: engineConfig }),
  } as const;
  try {
    results.limitsStart =
      (await phase("limits", "Limits", () => measureLimits(d.limitsMs, TEXT_BYTES, log))) ?? null;
    results.twoNodes =
      (await phase("two", "Two nodes in two processes", () =>
        twoNodes({ ...common, warmupMs: d.warmupMs, measureMs: d.measureMs, losses, kinds }),
      )) ?? ([] as LoadPoint[]);
    results.tenNodes =
      (await phase("ten", "Ten nodes, one process each", () =>
        tenNodes({
          ...common,
          warmupMs: d.tenWarmupMs,
          measureMs: d.tenMeasureMs,
          losses: [0, 0.4],
          nodes: 10,
          // Ten senders share two cores: a smaller window each keeps the total in flight near the two-node run.
          inflight: Math.max(8, Math.round(inflight / 4)),
        }),
      )) ?? [];
    for (const n of [30, 100]) {
      const s = await phase("scale", `Scale: ${n} nodes in one process`, () =>
        scale(
          n,
          TEXT_BYTES,
          log,
          quick ? 15_000 : 30_000,
          engineConfig,
          profile ? join(profileDir, `scale-${n}-round.cpuprofile`) : undefined,
        ),
      );
      if (s) results.scale.push(s);
    }
    results.simScale =
      (await phase("sim-scale", "Scale in the simulator (engine only, virtual time, model crypto)", () =>
        simScalePhase(TEXT_BYTES, quick, log),
      )) ?? null;
    if (results.simScale) for (const line of ["", ...simScaleTable(results.simScale), ""]) log(line);
    const st = await phase("startup", "Start-up", () => startup(d.startupRuns, !quick, log));
    if (st) results.startup = st;
    results.offlinePeers =
      (await phase("offline", "Peers not running (presence-aware sending)", () =>
        offlinePeers(quick, log),
      )) ?? null;
    results.limitsEnd =
      (await phase("limits", "Limits again (noise check)", () =>
        measureLimits(d.limitsMs, TEXT_BYTES, log),
      )) ?? null;
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    killAllChildren();
  }
  results.limits = meanLimits(results.limitsStart, results.limitsEnd);
  const a = results.limitsStart;
  const b = results.limitsEnd;
  if (a && b) {
    const udx = (l: Limits) => ("msgsPerSec" in l.udx ? l.udx.msgsPerSec : Number.NaN);
    results.noise = {
      verifyPct: spreadPct(a.verifyPerSec, b.verifyPerSec),
      signPct: spreadPct(a.signPerSec, b.signPerSec),
      udxPct: spreadPct(udx(a), udx(b)),
    };
  }
  results.meta.loadAvgEnd = loadavg();
  results.meta.durationS = (performance.now() - started) / 1000;
  results.targets = evaluateTargets(results);
  writeResults(outDir, results);
  if (profile && existsSync(profileDir)) {
    const summaries = readdirSync(profileDir)
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => formatProfile(join(profileDir, f), 25))
      .filter((s) => !/busy [0-9]{1,2} ms/.test(s));
    writeFileSync(join(profileDir, "summary.txt"), `${summaries.join("\n\n")}\n`);
    log(`profiles: ${profileDir}`);
  }
  log("");
  log("Targets:");
  for (const t of results.targets)
    log(
      `  ${t.met === null ? "n/a" : t.met ? "met    " : "NOT MET"}  ${t.name}: ${t.value} (goal ${t.goal})`,
    );
  log(
    `results: ${join(outDir, "latest.md")}, latest.json, loss.svg (${results.meta.durationS.toFixed(0)} s)`,
  );
  if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return results.errors.length > 0 ? 1 : 0;
}

process.on("SIGINT", () => {
  killAllChildren();
  process.exit(130);
});

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    killAllChildren();
    process.exit(1);
  },
);
