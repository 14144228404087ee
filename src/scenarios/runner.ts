/**
 * Runs the fault scenarios: registers the ten demo users in a fresh data directory, starts their nodes on UDP,
 * runs the scenarios (the long ones together, on disjoint nodes), and tears everything down, removing the
 * temporary directory. Reports progress through a callback and returns the whole run as one RunReport.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { DEFAULT_USERS } from "../identity/demo-users.ts";
import { Checker, describeMismatch } from "./checks.ts";
import { killAllChildren, prepareChildren } from "./child.ts";
import { busyPorts, findFreeBasePort, isPortInUse } from "./ports.ts";
import { highLoss } from "./s1-high-loss.ts";
import { duplicates } from "./s2-duplicates.ts";
import { badSignature } from "./s3-bad-signature.ts";
import { wrongKey } from "./s4-wrong-key.ts";
import { totalLoss } from "./s5-total-loss.ts";
import { storm } from "./s6-storm.ts";
import { partition } from "./s7-partition.ts";
import { crash } from "./s8-crash.ts";
import { replay } from "./s9-replay.ts";
import type { RunReport, Scenario, ScenarioOutcome, ScenarioResult } from "./types.ts";
import { HOST, UdpCluster } from "./udp-cluster.ts";

export const SCENARIOS: readonly Scenario[] = [
  highLoss,
  duplicates,
  badSignature,
  wrongKey,
  totalLoss,
  storm,
  partition,
  crash,
  replay,
];

/**
 * The order of execution. The scenarios of one group run at the same time: each touches only its own nodes and
 * sends only private messages among them (a broadcast would reach every node), so their counters stay apart.
 * Total loss and partition each wait for a give-up under the default config (5.5-7.5 s): together they cost it
 * once, and the run stays well under 20 s without a faster config. Crash and replay (process starts, database
 * opens and closes, which hold up this process's event loop) run together afterwards, not during the give-up
 * that scenario 5 times.
 */
export const PLAN: readonly (readonly number[])[] = [[1], [2], [3], [4], [6], [5, 7], [8, 9]];

/** No scenario may run longer than this, whatever its own waits say. */
const SCENARIO_TIMEOUT_MS = 60_000;
const USER_COUNT = DEFAULT_USERS.length;

export const DEFAULT_BASE_PORT = 12_000;
/** The highest base port: its ten ports must all exist. */
export const MAX_BASE_PORT = 65_535 - USER_COUNT + 1;

export class SetupError extends Error {
  override readonly name = "SetupError";
}

export type RunEvent =
  | { type: "setup"; message: string }
  | { type: "start"; scenario: Scenario; alongside: number[] }
  | { type: "end"; result: ScenarioResult };

export interface RunOptions {
  /** First of the ten consecutive UDP ports; 0 picks free ones. */
  basePort: number;
  /** Run only this scenario. */
  only?: number;
  /** Keep users and databases here (it must be empty or new); default: a temporary directory, removed after. */
  dataDir?: string;
  onEvent?: (event: RunEvent) => void;
}

export function scenarioById(id: number): Scenario | undefined {
  return SCENARIOS.find((s) => s.id === id);
}

function checkPlan(): void {
  const planned = PLAN.flat().sort((a, b) => a - b);
  if (planned.join() !== SCENARIOS.map((s) => s.id).join())
    throw new Error("PLAN must list every scenario once");
  for (const group of PLAN) {
    if (group.length < 2) continue;
    const seen = new Set<string>();
    for (const id of group) {
      for (const node of scenarioById(id)?.nodes ?? []) {
        if (seen.has(node))
          throw new Error(`scenarios ${group.join(", ")} share ${node}: they cannot run together`);
        seen.add(node);
      }
    }
  }
}

function prepareDataDir(explicit: string | undefined): { dir: string; keep: boolean } {
  if (!explicit) return { dir: mkdtempSync(join(tmpdir(), "chatnode-scenarios-")), keep: false };
  const dir = resolve(explicit);
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw new SetupError(`--data-dir ${dir} is not empty: the scenarios need a new or empty directory`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return { dir, keep: true };
}

function emptyDir(dir: string): void {
  for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
}

function portsFrom(base: number): number[] {
  return Array.from({ length: USER_COUNT }, (_, i) => base + i);
}

function busyMessage(busy: number[], base: number): string {
  const list = busy.join(", ");
  return (
    `UDP port${busy.length > 1 ? "s" : ""} ${list} on ${HOST} ${busy.length > 1 ? "are" : "is"} already in use ` +
    `(the scenarios need ${base}-${base + USER_COUNT - 1}; is a chatnode already running?). ` +
    `Use \`${scenariosCommand("--base-port 0")}\` to pick free ports, or --base-port <n> for another range.`
  );
}

/**
 * The command line that runs the scenarios with `flags`, as the user started them: under `npm start` the flags
 * must follow `--`, since npm keeps the ones before it for itself (`npm start --base-port 0` runs on 12000).
 */
export function scenariosCommand(flags: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.npm_lifecycle_event === "start" ? `npm start -- ${flags}` : `chatnode scenarios ${flags}`;
}

/** Registers the users and starts the nodes, on the requested ports or on free ones. */
async function startCluster(
  dataDir: string,
  basePort: number,
  say: (m: string) => void,
): Promise<UdpCluster> {
  const attempts = basePort === 0 ? 5 : 1;
  for (let attempt = 1; ; attempt++) {
    const base = basePort === 0 ? await findFreeBasePort(HOST, USER_COUNT) : basePort;
    const ports = portsFrom(base);
    if (basePort !== 0) {
      const busy = await busyPorts(HOST, ports);
      if (busy.length > 0) throw new SetupError(busyMessage(busy, base));
    }
    say(`registering ${USER_COUNT} users in ${dataDir}; nodes on ${HOST}:${base}-${base + USER_COUNT - 1}`);
    try {
      return await UdpCluster.create({ dataDir, basePort: base });
    } catch (error) {
      if (!isPortInUse(error)) throw error;
      // Another program took a port between the check and the bind: start over in an empty directory.
      emptyDir(dataDir);
      if (attempt >= attempts)
        throw new SetupError(
          `another program took one of the ports ${base}-${base + USER_COUNT - 1} on ${HOST} while the nodes ` +
            `were starting; try again, or use \`${scenariosCommand("--base-port 0")}\``,
        );
    }
  }
}

function emptyOutcome(): ScenarioOutcome {
  return {
    sent: 0,
    expected: 0,
    delivered: 0,
    retransmits: 0,
    duplicatesIgnored: 0,
    rejections: {},
    giveUps: 0,
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function runOne(cluster: UdpCluster, scenario: Scenario): Promise<ScenarioResult> {
  const check = new Checker();
  const notes: string[] = [];
  const started = performance.now();
  let outcome: ScenarioOutcome | undefined;
  let error: string | null = null;
  try {
    outcome = await withTimeout(
      scenario.run({ cluster, check, note: (text) => notes.push(text) }),
      SCENARIO_TIMEOUT_MS,
      `scenario ${scenario.id}`,
    );
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  const failures = check.failures;
  if (error === null && failures.length > 0) {
    const first = failures[0];
    if (first)
      error = describeMismatch(first) + (failures.length > 1 ? ` (and ${failures.length - 1} more)` : "");
  }
  return {
    id: scenario.id,
    title: scenario.title,
    ok: error === null,
    timeMs: Math.round(performance.now() - started),
    error,
    checks: check.records,
    notes,
    ...(outcome ?? emptyOutcome()),
  };
}

/** After a group: no faults left anywhere, and nothing in flight (a failed scenario may have left some). */
async function tidy(cluster: UdpCluster, say: (m: string) => void): Promise<void> {
  cluster.clearFaults(cluster.names);
  for (const name of cluster.names) {
    if (!cluster.isRunning(name)) {
      try {
        await cluster.startNode(name);
      } catch (error) {
        say(`could not restart ${name}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  try {
    await cluster.settle(cluster.names, 8000);
    await cluster.quiesce();
  } catch (error) {
    say(
      `warning: ${error instanceof Error ? error.message : String(error)}; later scenarios may be affected`,
    );
  }
}

export async function runScenarios(options: RunOptions): Promise<RunReport> {
  checkPlan();
  const started = performance.now();
  const emit = options.onEvent ?? (() => {});
  const say = (message: string) => emit({ type: "setup", message });
  if (options.only !== undefined && !scenarioById(options.only))
    throw new SetupError(`there is no scenario ${options.only} (1-${SCENARIOS.length})`);
  if (!Number.isInteger(options.basePort) || options.basePort < 0 || options.basePort > MAX_BASE_PORT)
    throw new SetupError(`--base-port must be 0 or a port from 1 to ${MAX_BASE_PORT}`);
  const { dir, keep } = prepareDataDir(options.dataDir);
  const removeDir = () => {
    if (keep) emptyDir(dir);
    else rmSync(dir, { recursive: true, force: true });
  };
  // Ctrl-C: no child process left running, no temporary directory left behind.
  const onSigint = () => {
    void killAllChildren();
    if (!keep) rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once("SIGINT", onSigint);
  let cluster: UdpCluster | undefined;
  const results: ScenarioResult[] = [];
  const plan = options.only !== undefined ? [[options.only]] : PLAN;
  try {
    // The crash scenario's two child processes start loading now, while the users are registered.
    if (plan.flat().includes(crash.id)) prepareChildren(2);
    try {
      cluster = await startCluster(dir, options.basePort, say);
    } catch (error) {
      removeDir();
      throw error;
    }
    for (const group of plan) {
      const scenarios = group.map((id) => scenarioById(id) as Scenario);
      for (const s of scenarios)
        emit({ type: "start", scenario: s, alongside: group.filter((id) => id !== s.id) });
      const live = cluster;
      const groupResults = await Promise.all(
        scenarios.map(async (s) => {
          const result = await runOne(live, s);
          emit({ type: "end", result });
          return result;
        }),
      );
      results.push(...groupResults);
      await tidy(cluster, say);
    }
  } finally {
    process.removeListener("SIGINT", onSigint);
    await cluster?.close();
    await killAllChildren();
    if (cluster && !keep) rmSync(dir, { recursive: true, force: true });
  }
  results.sort((a, b) => a.id - b.id);
  return {
    ok: results.length > 0 && results.every((r) => r.ok),
    totalMs: Math.round(performance.now() - started),
    host: HOST,
    ports: cluster ? cluster.users.map((u) => u.port) : [],
    dataDir: dir,
    dataDirKept: keep,
    scenarios: results,
  };
}
