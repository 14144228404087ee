/**
 * The simulator's command line: `npm run sim -- --seeds 10000 [--seed S] [--nodes N] [--loss 400000] ...`.
 * Runs seeds (across worker threads), prints a summary, and for every failing seed the exact command that
 * replays it. Exit code: 0 all passed, 1 correctness violation, 2 liveness violation, 3 crash (the engine or
 * the simulator threw), 64 bad command line; with several failing seeds, the code of the lowest failing seed
 * (a seed with both a correctness and a liveness violation counts as correctness).
 */
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { EngineStats } from "../src/engine/stats.ts";
import type { Violation, ViolationClass } from "./invariants.ts";
import { type Overrides, runSeed, type SeedResult } from "./scenario.ts";

const USAGE = `usage: npm run sim -- [options]
  --seeds N         how many seeds to run (default 1000; 1 with --seed)
  --from S          first seed of a range (default 1)
  --seed S          run (replay) seed S alone, printing its violations in full
  --jobs J          worker threads (default: the number of CPUs, at most the seeds)
  --trace           print every send, event, crash and partition of a single seed
  --max-failures K  list at most K failing seeds (default 20)
forced options (otherwise each seed chooses):
  --nodes N  --messages M  --loss PPM  --dup PPM  --corrupt PPM  --delay MS  --jitter MS
  --partitions K  --blackholes K  --crashes K  --safety-ms MS  --window FRAMES  --rekey-ms MS  --real-crypto
probabilities are integers per million: --loss 400000 is 40%`;

/** Command-line flag → option it forces. */
const NUMERIC_FLAGS = {
  nodes: "nodes",
  messages: "messages",
  loss: "lossPpm",
  dup: "dupPpm",
  corrupt: "corruptPpm",
  delay: "delayMs",
  jitter: "jitterMs",
  partitions: "partitions",
  blackholes: "blackholes",
  crashes: "crashes",
  "safety-ms": "safetyMs",
  window: "windowFrames",
  "rekey-ms": "rekeyMs",
} as const satisfies Record<string, keyof Overrides>;

export const EXIT_CODES: Record<ViolationClass, number> = { correctness: 1, liveness: 2, crash: 3 };

interface Failure {
  seed: number;
  cls: ViolationClass;
  violations: Violation[];
}

interface Totals {
  seeds: number;
  nodesMin: number;
  nodesMax: number;
  nodesSum: number;
  messages: number;
  privateMessages: number;
  multiFragmentMessages: number;
  copies: number;
  deliveries: number;
  datagrams: number;
  steps: number;
  virtualMs: number;
  faults: Record<string, number>;
  engine: Record<string, number>;
  rejected: Record<string, number>;
  /** Session handshakes, keys erased, and what the session layer refused, by reason. */
  sessions: Record<string, number>;
  sessionRefused: Record<string, number>;
  /** Failing seeds per invariant. */
  byInvariant: Record<string, number>;
  failures: Failure[];
}

function newTotals(): Totals {
  return {
    seeds: 0,
    nodesMin: Number.POSITIVE_INFINITY,
    nodesMax: 0,
    nodesSum: 0,
    messages: 0,
    privateMessages: 0,
    multiFragmentMessages: 0,
    copies: 0,
    deliveries: 0,
    datagrams: 0,
    steps: 0,
    virtualMs: 0,
    faults: {},
    engine: {},
    rejected: {},
    sessions: {},
    sessionRefused: {},
    byInvariant: {},
    failures: [],
  };
}

/** The violation class that decides a failing seed's exit code: a crash or correctness bug outranks liveness. */
export function classOf(violations: readonly Violation[]): ViolationClass | undefined {
  if (violations.some((v) => v.cls === "correctness")) return "correctness";
  if (violations.some((v) => v.cls === "crash")) return "crash";
  if (violations.length > 0) return "liveness";
  return undefined;
}

function addResult(t: Totals, r: SeedResult): void {
  t.seeds++;
  t.nodesMin = Math.min(t.nodesMin, r.options.nodes);
  t.nodesMax = Math.max(t.nodesMax, r.options.nodes);
  t.nodesSum += r.options.nodes;
  t.messages += r.messages;
  t.privateMessages += r.privateMessages;
  t.multiFragmentMessages += r.multiFragmentMessages;
  t.copies += r.copies;
  t.deliveries += r.deliveries;
  t.datagrams += r.datagrams;
  t.steps += r.steps;
  t.virtualMs += r.virtualMs;
  for (const [k, v] of Object.entries(r.faults)) t.faults[k] = (t.faults[k] ?? 0) + v;
  const e: EngineStats = r.engine;
  for (const key of [
    "retransmits",
    "earlyRetransmits",
    "messagesFailed",
    "giveUps",
    "duplicates",
    "hellosSent",
    "batchesSent",
  ] as const)
    t.engine[key] = (t.engine[key] ?? 0) + e[key];
  for (const [k, v] of Object.entries(e.rejected)) t.rejected[k] = (t.rejected[k] ?? 0) + (v ?? 0);
  for (const key of ["handshakesStarted", "established", "keysErased"] as const)
    t.sessions[key] = (t.sessions[key] ?? 0) + r.sessions[key];
  for (const [k, v] of Object.entries(r.sessions.refused))
    t.sessionRefused[k] = (t.sessionRefused[k] ?? 0) + v;
  for (const k of Object.keys(r.violationCounts)) t.byInvariant[k] = (t.byInvariant[k] ?? 0) + 1;
  const cls = classOf(r.violations);
  if (cls) t.failures.push({ seed: r.seed, cls, violations: r.violations });
}

function mergeTotals(into: Totals, from: Totals): void {
  into.seeds += from.seeds;
  into.nodesMin = Math.min(into.nodesMin, from.nodesMin);
  into.nodesMax = Math.max(into.nodesMax, from.nodesMax);
  for (const k of [
    "nodesSum",
    "messages",
    "privateMessages",
    "multiFragmentMessages",
    "copies",
    "deliveries",
    "datagrams",
    "steps",
    "virtualMs",
  ] as const)
    into[k] += from[k];
  for (const field of ["faults", "engine", "rejected", "sessions", "sessionRefused", "byInvariant"] as const)
    for (const [k, v] of Object.entries(from[field])) into[field][k] = (into[field][k] ?? 0) + v;
  into.failures.push(...from.failures);
}

function runRange(seeds: readonly number[], overrides: Overrides): Totals {
  const totals = newTotals();
  for (const seed of seeds) addResult(totals, runSeed(seed, overrides));
  return totals;
}

export function replayCommand(seed: number, argv: readonly string[]): string {
  // The forced options are part of the seed's identity; the range, job and listing flags are not.
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const name = arg.replace(/^--/, "").split("=")[0] as string;
    if (name in NUMERIC_FLAGS) {
      kept.push(arg.includes("=") ? arg : `${arg} ${argv[i + 1] ?? ""}`);
      if (!arg.includes("=")) i++;
    } else if (name === "real-crypto") kept.push(arg);
  }
  return ["npm run sim -- --seed", String(seed), ...kept].join(" ");
}

function describe(v: Violation): string {
  const where = [
    v.node !== undefined ? `node n${v.node}` : undefined,
    v.msgId !== undefined ? `msg ${v.msgId}` : undefined,
    `step ${v.step}`,
    `t=${v.timeMs}ms`,
  ]
    .filter((x) => x !== undefined)
    .join(", ");
  return `[${v.cls}] ${v.invariant} (${where}): ${v.detail}`;
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

function printSummary(
  t: Totals,
  wallMs: number,
  /** CPU time of the whole process, worker threads included: on a busy machine, wall time says little. */
  cpuMs: number,
  jobs: number,
  argv: readonly string[],
  maxFailures: number,
): void {
  const out: string[] = [];
  const faults = Object.entries(t.faults)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}=${fmt(v)}`)
    .join(" ");
  const rejected = Object.entries(t.rejected)
    .map(([k, v]) => `${k}=${fmt(v)}`)
    .join(" ");
  out.push("ChatNode simulation summary");
  out.push(
    `  seeds       ${fmt(t.seeds)} (nodes ${t.nodesMin}..${t.nodesMax}, mean ${(t.nodesSum / Math.max(1, t.seeds)).toFixed(1)})`,
  );
  out.push(
    `  messages    ${fmt(t.messages)} sent (${fmt(t.privateMessages)} private, ${fmt(t.multiFragmentMessages)} multi-fragment) ` +
      `to ${fmt(t.copies)} recipients; ${fmt(t.deliveries)} deliveries`,
  );
  out.push(`  datagrams   ${fmt(t.datagrams)} handed to the network; ${fmt(t.steps)} steps`);
  out.push(`  faults      ${faults || "none"}`);
  out.push(
    `  engine      retransmits=${fmt(t.engine.retransmits ?? 0)} (early ${fmt(t.engine.earlyRetransmits ?? 0)}) ` +
      `give-ups=${fmt(t.engine.giveUps ?? 0)} failed=${fmt(t.engine.messagesFailed ?? 0)} duplicates=${fmt(t.engine.duplicates ?? 0)} hellos=${fmt(t.engine.hellosSent ?? 0)} batches=${fmt(t.engine.batchesSent ?? 0)}`,
  );
  out.push(`  rejected    ${rejected || "none"}`);
  out.push(
    `  sessions    handshakes=${fmt(t.sessions.handshakesStarted ?? 0)} established=${fmt(t.sessions.established ?? 0)} ` +
      `keys-erased=${fmt(t.sessions.keysErased ?? 0)}; refused ${
        Object.entries(t.sessionRefused)
          .map(([k, v]) => `${k}=${fmt(v)}`)
          .join(" ") || "none"
      }`,
  );
  const byClass = { correctness: 0, liveness: 0, crash: 0 };
  for (const f of t.failures) byClass[f.cls]++;
  out.push(
    `  violations  ${t.failures.length === 0 ? "none" : `${t.failures.length} failing seed(s): correctness=${byClass.correctness} liveness=${byClass.liveness} crash=${byClass.crash}`}`,
  );
  if (t.failures.length > 0) {
    const which = Object.entries(t.byInvariant)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}: ${fmt(v)}`)
      .join("; ");
    out.push(`  seeds by invariant broken: ${which}`);
  }
  out.push(
    `  time        ${(wallMs / 1000).toFixed(1)} s wall on ${jobs} thread(s), ${(cpuMs / 1000).toFixed(1)} s CPU ` +
      `(${(cpuMs / Math.max(1, t.seeds)).toFixed(1)} ms per seed), ${(t.virtualMs / 1000).toFixed(0)} s virtual`,
  );
  const failures = [...t.failures].sort((a, b) => a.seed - b.seed);
  for (const f of failures.slice(0, maxFailures)) {
    out.push("");
    out.push(`FAILED seed ${f.seed} (${f.cls}, exit ${EXIT_CODES[f.cls]})`);
    for (const v of f.violations.slice(0, t.seeds === 1 ? 25 : 3)) out.push(`  ${describe(v)}`);
    out.push(`  replay: ${replayCommand(f.seed, argv)}`);
  }
  if (failures.length > maxFailures)
    out.push(`... and ${failures.length - maxFailures} more failing seed(s)`);
  console.log(out.join("\n"));
}

interface WorkerRequest {
  seeds: number[];
  overrides: Overrides;
}

async function runParallel(seeds: number[], overrides: Overrides, jobs: number): Promise<Totals> {
  if (jobs <= 1) return runRange(seeds, overrides);
  // Seeds go out in small batches, so that one slow seed does not leave a thread idle.
  const batch = Math.max(1, Math.min(25, Math.ceil(seeds.length / (jobs * 8))));
  let next = 0;
  const totals = newTotals();
  // A worker starts without the TypeScript loader this process runs under: it registers tsx, then loads us.
  const bootstrap = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))})
    .then((api) => { api.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const workers = Array.from({ length: jobs }, () => new Worker(bootstrap, { eval: true, workerData: true }));
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          const feed = () => {
            if (next >= seeds.length) {
              void worker.terminate().then(() => resolve());
              return;
            }
            const request: WorkerRequest = { seeds: seeds.slice(next, next + batch), overrides };
            next += batch;
            worker.postMessage(request);
          };
          worker.on("message", (t: Totals) => {
            mergeTotals(totals, t);
            feed();
          });
          worker.on("error", reject);
          feed();
        }),
    ),
  );
  return totals;
}

function parseCommandLine(argv: string[]) {
  const options: Record<string, { type: "string" | "boolean" }> = {
    seeds: { type: "string" },
    from: { type: "string" },
    seed: { type: "string" },
    jobs: { type: "string" },
    trace: { type: "boolean" },
    "max-failures": { type: "string" },
    "real-crypto": { type: "boolean" },
    help: { type: "boolean" },
  };
  for (const flag of Object.keys(NUMERIC_FLAGS)) options[flag] = { type: "string" };
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  const int = (name: string, fallback: number): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new Error(`--${name} must be a non-negative integer, not ${raw}`);
    return n;
  };
  const overrides: Overrides = {};
  for (const [flag, key] of Object.entries(NUMERIC_FLAGS)) {
    if (values[flag] !== undefined) (overrides as Record<string, number>)[key] = int(flag, 0);
  }
  if (values["real-crypto"]) overrides.realCrypto = true;
  const within = (name: string, value: number | undefined, min: number, max: number) => {
    if (value !== undefined && (value < min || value > max))
      throw new Error(`--${name} must be between ${min} and ${max}, not ${value}`);
  };
  within("nodes", overrides.nodes, 2, 50);
  within("window", overrides.windowFrames, 1, 4096);
  for (const flag of ["loss", "dup", "corrupt"] as const)
    within(flag, overrides[NUMERIC_FLAGS[flag]], 0, 1_000_000);
  const single = values.seed !== undefined;
  const from = single ? int("seed", 0) : int("from", 1);
  const count = int("seeds", single ? 1 : 1000);
  // A seed is 32 bits (SeededRng keeps only those): a larger one would silently replay another.
  within(single ? "seed" : "from", from + Math.max(0, count - 1), 0, 2 ** 32 - 1);
  return {
    help: values.help === true,
    trace: values.trace === true,
    overrides,
    seeds: Array.from({ length: count }, (_, i) => from + i),
    jobs: int("jobs", Math.min(availableParallelism(), count)),
    maxFailures: int("max-failures", 20),
  };
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let cli: ReturnType<typeof parseCommandLine>;
  try {
    cli = parseCommandLine(argv);
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 64;
  }
  if (cli.help) {
    console.log(USAGE);
    return 0;
  }
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  let totals: Totals;
  let jobs = Math.max(1, cli.jobs);
  if (cli.trace && cli.seeds.length === 1) {
    totals = newTotals();
    const seed = cli.seeds[0] as number;
    const result = runSeed(seed, cli.overrides, { trace: (line) => console.log(line) });
    console.log(`options: ${JSON.stringify(result.options)}`);
    addResult(totals, result);
    jobs = 1;
  } else {
    totals = await runParallel(cli.seeds, cli.overrides, Math.min(jobs, cli.seeds.length));
    jobs = Math.min(jobs, cli.seeds.length);
  }
  const cpu = process.cpuUsage(cpuStarted);
  printSummary(
    totals,
    performance.now() - started,
    (cpu.user + cpu.system) / 1000,
    jobs,
    argv,
    cli.maxFailures,
  );
  const first = [...totals.failures].sort((a, b) => a.seed - b.seed)[0];
  return first ? EXIT_CODES[first.cls] : 0;
}

if (!isMainThread && workerData === true) {
  parentPort?.on("message", (request: WorkerRequest) => {
    parentPort?.postMessage(runRange(request.seeds, request.overrides));
  });
} else if (isMainThread && process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 3;
    },
  );
}
