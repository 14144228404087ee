/**
 * Start-up cost: `npm run build`, a bulk-register into a temporary data directory, then the time from spawning
 * `node dist/cli/main.js chat --json ...` to its `ready` event (median of several starts after one warm-up start).
 *
 * Two fixed costs bound it from below and are measured in the same run, the same number of times, so that the
 * start-up can be given as a ratio to them: Node's own boot (spawn to exit of `node -e ""`, same environment) and
 * the key unlock (readKeyFile on alice's key file: one scrypt with the file's parameters, on libuv's thread pool).
 * What is left is what ChatNode itself adds. When NODE_EXTRA_CA_CERTS is set (every node start then reads a CA
 * bundle), the start-up and the node boot are measured again without it.
 *
 * scrypt's time is part memory: its V array (128·N·r bytes, 32 MiB at N = 2^15, r = 8) is fresh memory, above
 * glibc's mmap threshold, so every page of it faults on first touch. The phase also times touching that many
 * bytes of fresh memory, one write per 4 KiB page: on a machine where a page fault is costly (a VM), that share of
 * the unlock is the machine's, not the KDF's arithmetic.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readKeyFile, readKeyFileScrypt } from "../src/crypto/keyfile.ts";
import { openDirectory } from "../src/identity/directory.ts";
import { bulkRegister } from "../src/identity/register.ts";
import { median } from "./stats.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = "dist/cli/main.js";
const EXTRA_CA = "NODE_EXTRA_CA_CERTS";
/** Processes not yet exited: killed if the bench exits first. */
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of running) c.kill("SIGKILL");
});

export interface StartupResult {
  /** Always "cli": node dist/cli/main.js chat --json (kept for the shape of older results). */
  what: "cli";
  command: string;
  /** Start-up to ready, as configured (NODE_EXTRA_CA_CERTS as in this environment): median of samplesMs. */
  medianMs: number;
  samplesMs: number[];
  /** Node's own boot: spawn to exit of `node -e ""`, same environment; median of the same number of runs. */
  nodeBootMs: number;
  nodeBootSamplesMs: number[];
  /** Key unlock: readKeyFile on alice's key file (one scrypt), wall time of the awaited call; median. */
  unlockMs: number;
  unlockSamplesMs: number[];
  /** The key file's scrypt parameters (what unlockMs derived with). */
  unlockScrypt: { N: number; r: number; p: number } | null;
  /** Touching as many bytes of fresh memory as that scrypt's V array, one write a page: the page faults alone; median. */
  unlockMemoryTouchMs: number | null;
  unlockMemoryTouchSamplesMs: number[] | null;
  /** medianMs − nodeBootMs − unlockMs: what ChatNode itself adds. */
  overheadMs: number;
  /** Whether NODE_EXTRA_CA_CERTS was set in this environment (the "without" figures are null otherwise). */
  extraCaCerts: boolean;
  /** Start-up to ready with NODE_EXTRA_CA_CERTS removed from the child's environment; null when it is not set. */
  withoutExtraCaMs: number | null;
  withoutExtraCaSamplesMs: number[] | null;
  /** Node's boot with NODE_EXTRA_CA_CERTS removed; null when it is not set. */
  nodeBootWithoutExtraCaMs: number | null;
  nodeBootWithoutExtraCaSamplesMs: number[] | null;
  /** withoutExtraCaMs − nodeBootWithoutExtraCaMs − unlockMs; null when it is not set. */
  overheadWithoutExtraCaMs: number | null;
  note: string;
  buildMs: number;
}

function build(): Promise<{ ms: number; ok: boolean; output: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile("npm", ["run", "build"], { cwd: ROOT, timeout: 300_000 }, (error, stdout, stderr) => {
      resolve({ ms: performance.now() - t0, ok: error === null, output: `${stdout}${stderr}`.trim() });
    });
  });
}

type Timing = { ms: number } | { error: string };

/**
 * Spawns `args`, measures the ms until a stdout line containing `"event":"ready"`, then ends the process and
 * resolves once it has exited (so that the next start neither shares the CPU with its shutdown nor finds its
 * port still bound).
 */
function timeToReady(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Timing> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    running.add(child);
    child.stdin.on("error", () => {}); // EPIPE if it has already exited
    let out = "";
    let err = "";
    let result: Timing | undefined;
    let exited = false;
    const finish = (r: Timing) => {
      if (result) return;
      result = r;
      clearTimeout(timer);
      if (exited) return resolve(r);
      child.stdin.end(); // end of stdin is /q for the JSON mode
      const kill = setTimeout(() => child.kill("SIGKILL"), 3000);
      child.once("exit", () => clearTimeout(kill));
    };
    const timer = setTimeout(() => finish({ error: `no ready within ${timeoutMs} ms` }), timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (/"event"\s*:\s*"ready"/.test(out)) finish({ ms: performance.now() - t0 });
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("exit", (code) => {
      exited = true;
      running.delete(child);
      finish({
        error: `exited with ${code} before ready: ${(err || out).trim().split("\n").slice(-3).join(" / ")}`,
      });
      resolve(result as Timing);
    });
    child.on("error", (e) => {
      exited = true;
      running.delete(child);
      finish({ error: e.message });
      resolve(result as Timing);
    });
  });
}

/** Spawn to exit of `node -e ""` with `env`: Node's own boot and teardown, nothing of ChatNode. */
function nodeBoot(env: NodeJS.ProcessEnv): Promise<Timing> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ["-e", ""], { cwd: ROOT, env, stdio: "ignore" });
    running.add(child);
    child.once("exit", (code) => {
      running.delete(child);
      resolve(code === 0 ? { ms: performance.now() - t0 } : { error: `node -e "" exited with ${code}` });
    });
    child.once("error", (e) => {
      running.delete(child);
      resolve({ error: e.message });
    });
  });
}

/** Allocates `bytes` of fresh memory and writes one byte in every 4 KiB: what faulting its pages in costs. */
function touchFreshMemory(bytes: number): Timing {
  const t0 = performance.now();
  const block = Buffer.allocUnsafeSlow(bytes);
  for (let at = 0; at < bytes; at += 4096) block[at] = 1;
  return { ms: performance.now() - t0 };
}

/** Wall time of one awaited readKeyFile (file read, scrypt on the thread pool, AES-GCM open). */
async function unlock(path: string, username: string, password: string): Promise<Timing> {
  const t0 = performance.now();
  try {
    await readKeyFile(path, { username, password });
    return { ms: performance.now() - t0 };
  } catch (e) {
    return { error: `readKeyFile: ${(e as Error).message}` };
  }
}

function scryptOf(path: string): StartupResult["unlockScrypt"] {
  try {
    const { N, r, p } = readKeyFileScrypt(path);
    return { N, r, p };
  } catch {
    return null;
  }
}

/** Whether dist/ is older than some file in src/ (or missing). */
function distStale(): boolean {
  const built = join(ROOT, CLI);
  if (!existsSync(built)) return true;
  const builtAt = statSync(built).mtimeMs;
  const newer = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory() ? newer(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs > builtAt,
    );
  return newer(join(ROOT, "src"));
}

/** One measured series: a warm-up (not counted) then `runs` samples; the first error is kept. */
class Series {
  readonly samples: number[] = [];
  readonly errors: string[] = [];
  /** The warm-up failed: the later runs are skipped (they would fail, or wait out the timeout, the same way). */
  failedWarmUp = false;
  private attempts = 0;
  add(t: Timing): void {
    if ("error" in t) {
      this.errors.push(t.error);
      if (this.attempts === 0) this.failedWarmUp = true;
    } else if (this.attempts > 0) this.samples.push(t.ms);
    this.attempts++;
  }
  get median(): number {
    return median(this.samples);
  }
}

const fmt = (s: Series) =>
  `median ${s.median.toFixed(0)} ms of ${s.samples.length} [${s.samples.map((x) => x.toFixed(0)).join(", ")}]`;

/** `alwaysBuild` false (--quick): build only when dist/ is older than src/. */
export async function startup(
  runs: number,
  alwaysBuild: boolean,
  log: (s: string) => void,
): Promise<StartupResult> {
  let b = { ms: 0, ok: true, output: "" };
  if (alwaysBuild || distStale()) {
    b = await build();
    log(
      `  npm run build: ${b.ok ? "ok" : "FAILED (dist/ may be partly stale)"} in ${(b.ms / 1000).toFixed(1)} s`,
    );
  } else log("  dist/ is newer than src/: not rebuilt");
  const dataDir = mkdtempSync(join(tmpdir(), "chatnode-bench-cli-"));
  try {
    // Ports away from the default 12000 range that other runs on this machine may use.
    const basePort = 20_000 + Math.floor(Math.random() * 20_000);
    await bulkRegister({ dataDir, basePort });
    const username = "alice";
    const password = "pass1";
    const keyPath = openDirectory(dataDir).keyFilePath(username);
    const cliArgs = [
      CLI,
      "chat",
      "--json",
      "--username",
      username,
      "--password",
      password,
      "--data-dir",
      dataDir,
    ];
    const env: NodeJS.ProcessEnv = { ...process.env };
    const extraCa = process.env[EXTRA_CA] !== undefined;
    const bareEnv: NodeJS.ProcessEnv = { ...process.env };
    delete bareEnv[EXTRA_CA];
    const cliBuilt = existsSync(join(ROOT, CLI));

    const cli = new Series();
    const boot = new Series();
    const key = new Series();
    const cliBare = new Series();
    const bootBare = new Series();
    const touch = new Series();
    const scrypt = scryptOf(keyPath);
    const scryptBytes = scrypt ? 128 * scrypt.N * scrypt.r : 0;
    // Warm-up plus `runs` rounds, the measurements interleaved so that a drift in the machine's load falls on all.
    for (let i = 0; i <= runs; i++) {
      if (cliBuilt && !cli.failedWarmUp) cli.add(await timeToReady(cliArgs, env, 10_000));
      boot.add(await nodeBoot(env));
      key.add(await unlock(keyPath, username, password));
      if (scryptBytes > 0) touch.add(touchFreshMemory(scryptBytes));
      if (extraCa) {
        if (cliBuilt && !cliBare.failedWarmUp) cliBare.add(await timeToReady(cliArgs, bareEnv, 10_000));
        bootBare.add(await nodeBoot(bareEnv));
      }
    }

    const notes: string[] = [];
    if (!cliBuilt) notes.push(`${CLI} was not built`);
    else if (cli.samples.length === 0) notes.push(`the CLI never reached ready: ${cli.errors[0] ?? "?"}`);
    else if (cli.errors.length > 0) notes.push(`${cli.errors.length} CLI start(s) failed: ${cli.errors[0]}`);
    const others: Array<[string, Series]> = [
      ["node boot", boot],
      ["key unlock", key],
      [`start-up without ${EXTRA_CA}`, cliBare],
      [`node boot without ${EXTRA_CA}`, bootBare],
    ];
    for (const [name, s] of others) if (s.errors.length > 0) notes.push(`${name}: ${s.errors[0]}`);

    const medianMs = cli.median;
    const unlockMs = key.median;
    const withoutExtraCaMs = extraCa ? cliBare.median : null;
    const nodeBootWithoutExtraCaMs = extraCa ? bootBare.median : null;
    const result: StartupResult = {
      what: "cli",
      command: `node ${cliArgs.join(" ")}`,
      medianMs,
      samplesMs: cli.samples,
      nodeBootMs: boot.median,
      nodeBootSamplesMs: boot.samples,
      unlockMs,
      unlockSamplesMs: key.samples,
      unlockScrypt: scrypt,
      unlockMemoryTouchMs: scryptBytes > 0 ? touch.median : null,
      unlockMemoryTouchSamplesMs: scryptBytes > 0 ? touch.samples : null,
      overheadMs: medianMs - boot.median - unlockMs,
      extraCaCerts: extraCa,
      withoutExtraCaMs,
      withoutExtraCaSamplesMs: extraCa ? cliBare.samples : null,
      nodeBootWithoutExtraCaMs,
      nodeBootWithoutExtraCaSamplesMs: extraCa ? bootBare.samples : null,
      overheadWithoutExtraCaMs:
        withoutExtraCaMs !== null && nodeBootWithoutExtraCaMs !== null
          ? withoutExtraCaMs - nodeBootWithoutExtraCaMs - unlockMs
          : null,
      note: notes.join("; "),
      buildMs: b.ms,
    };
    const sc = result.unlockScrypt;
    log(`  start-up to ready (CLI): ${fmt(cli)}`);
    log(`  node boot (node -e ""): ${fmt(boot)}`);
    log(
      `  key unlock (readKeyFile${sc ? `, scrypt N=2^${Math.log2(sc.N)} r=${sc.r} p=${sc.p}` : ""}): ${fmt(key)}`,
    );
    if (result.unlockMemoryTouchMs !== null)
      log(
        `  of which page faults: touching ${scryptBytes / 2 ** 20} MiB of fresh memory (scrypt's V array) alone: ${fmt(touch)}`,
      );
    log(
      `  start-up ÷ (node boot + unlock): ${(medianMs / (boot.median + unlockMs)).toFixed(2)}×; ChatNode's overhead ${result.overheadMs.toFixed(0)} ms`,
    );
    if (extraCa)
      log(
        `  without ${EXTRA_CA}: start-up ${fmt(cliBare)}; node boot ${fmt(bootBare)}; overhead ${result.overheadWithoutExtraCaMs?.toFixed(0)} ms`,
      );
    else log(`  ${EXTRA_CA} is not set: no "without" measurement`);
    if (result.note) log(`  note: ${result.note}`);
    return result;
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
