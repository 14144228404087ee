/**
 * Start-up cost: `npm run build`, a bulk-register into a temporary data directory, then the time from spawning
 * `node dist/cli/main.js chat --json ...` to its `ready` event (median of several starts). If the CLI does not
 * reach `ready` (it is being written), the same path (login with scrypt, open SQLite, bind, start) is measured with
 * a small script over the built dist/node/open-node.js, and the result says so.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bulkRegister } from "../src/identity/register.ts";
import { median } from "./stats.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** CLI processes not yet exited: killed if the bench exits first. */
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of running) c.kill("SIGKILL");
});

export interface StartupResult {
  /** "cli": node dist/cli/main.js chat --json; "open-node": the fallback script over dist/node/open-node.js. */
  what: "cli" | "open-node";
  command: string;
  medianMs: number;
  samplesMs: number[];
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

/** Spawns `args`, resolves with the ms until a stdout line containing `"event":"ready"`, then ends the process. */
function timeToReady(args: string[], timeoutMs: number): Promise<{ ms: number } | { error: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    running.add(child);
    child.once("exit", () => running.delete(child));
    let out = "";
    let err = "";
    let settled = false;
    const finish = (r: { ms: number } | { error: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
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
    child.on("exit", (code) =>
      finish({
        error: `exited with ${code} before ready: ${(err || out).trim().split("\n").slice(-3).join(" / ")}`,
      }),
    );
    child.on("error", (e) => finish({ error: e.message }));
  });
}

const OPEN_NODE_SCRIPT = `
const [dataDir, username, password] = process.argv.slice(1);
const { openNode } = await import(${JSON.stringify(join(ROOT, "dist/node/open-node.js"))});
const node = await openNode({ dataDir, username, password });
node.on("ready", (e) => process.stdout.write(JSON.stringify({ event: "ready", port: e.port }) + "\\n"));
await node.start();
process.stdin.on("end", () => node.close().then(() => process.exit(0)));
process.stdin.resume();
`;

/** Whether dist/ is older than some file in src/ (or missing). */
function distStale(): boolean {
  const built = join(ROOT, "dist/cli/main.js");
  if (!existsSync(built)) return true;
  const builtAt = statSync(built).mtimeMs;
  const newer = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory() ? newer(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs > builtAt,
    );
  return newer(join(ROOT, "src"));
}

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
    const cliArgs = [
      "dist/cli/main.js",
      "chat",
      "--json",
      "--username",
      "alice",
      "--password",
      "pass1",
      "--data-dir",
      dataDir,
    ];
    const attempts: Array<{ ms: number } | { error: string }> = [];
    let what: StartupResult["what"] = "cli";
    let note = "";
    if (existsSync(join(ROOT, "dist/cli/main.js"))) attempts.push(await timeToReady(cliArgs, 10_000));
    else attempts.push({ error: "dist/cli/main.js was not built" });
    let args = cliArgs;
    const first = attempts[0];
    if (!first || "error" in first) {
      what = "open-node";
      note = `the CLI did not reach ready (${first && "error" in first ? first.error : "?"}): measured openNode() + start() from dist/ instead`;
      args = ["--input-type=module", "-e", OPEN_NODE_SCRIPT, dataDir, "alice", "pass1"];
      attempts.length = 0;
    }
    while (attempts.length < runs + 1) attempts.push(await timeToReady(args, 10_000));
    // The first start warms the OS file cache: it is not counted.
    const samples = attempts.slice(1).flatMap((a) => ("ms" in a ? [a.ms] : []));
    const errors = attempts.flatMap((a) => ("error" in a ? [a.error] : []));
    if (samples.length === 0) note = `${note}${note ? "; " : ""}no start reached ready: ${errors[0] ?? "?"}`;
    const command =
      what === "cli"
        ? `node ${cliArgs.join(" ")}`
        : "node --input-type=module -e <openNode + start over dist/>";
    const result: StartupResult = {
      what,
      command,
      medianMs: median(samples),
      samplesMs: samples,
      note,
      buildMs: b.ms,
    };
    log(
      `  start-up to ready (${what}): median ${result.medianMs.toFixed(0)} ms of ${samples.length} [${samples.map((s) => s.toFixed(0)).join(", ")}]${note ? ` — ${note}` : ""}`,
    );
    return result;
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
