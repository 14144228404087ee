/**
 * Runs the real `chatnode` command in child processes for the end-to-end tests: `node --import tsx
 * src/cli/bin.ts` (what dist/cli/main.js is built from), so no build is needed. Every process started here is
 * remembered and killed by `killAll` (call it from `after`/`afterEach`, so a failing test leaves nothing running).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePorts } from "../helpers/loopback-nodes.ts";

export const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const MAIN = join(REPO, "src", "cli", "bin.ts");
/** The command line that runs the CLI, for a shell (tmux windows). */
export const CLI_COMMAND = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(MAIN)}`;

/**
 * How long a client may take to start: tsx compiles the sources at start-up, and scrypt unlocks the key file.
 * About 1-2 s on an idle machine, but several seconds when the machine is busy (the whole suite runs in parallel).
 * Start-up is not what these tests measure, so its allowance is generous; behaviour after start is timed strictly.
 */
export const STARTUP_MS = 30_000;

export const USERS = [
  { name: "alice", password: "pass1" },
  { name: "bob", password: "pass2" },
  { name: "carol", password: "pass3" },
] as const;

const running = new Set<ChildProcessWithoutNullStreams>();

/** The environment for every child: no inherited password, home or colour settings. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CHATNODE_PASSWORD;
  delete env.CHATNODE_HOME;
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  return { ...env, ...extra };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() when the process exited. */
  at: number;
}

export type JsonEvent = { event: string } & Record<string, unknown>;

export class CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly events: JsonEvent[] = [];
  /** stdout lines that are not JSON (there must be none in --json mode). */
  readonly junk: string[] = [];
  stdout = "";
  stderr = "";
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  readonly startedAt = performance.now();
  private buffer = "";

  constructor(args: readonly string[], env: NodeJS.ProcessEnv = childEnv()) {
    this.child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
      cwd: REPO,
      env,
      stdio: "pipe",
    });
    running.add(this.child);
    this.child.stdout.setEncoding("utf8");
    this.child.stderr.setEncoding("utf8");
    this.child.stdout.on("data", (chunk: string) => {
      this.stdout += chunk;
      this.buffer += chunk;
      let nl = this.buffer.indexOf("\n");
      while (nl >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        try {
          this.events.push(JSON.parse(line) as JsonEvent);
        } catch {
          this.junk.push(line);
        }
        nl = this.buffer.indexOf("\n");
      }
    });
    this.child.stderr.on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.child.stdin.on("error", () => {}); // writing to a process that already exited
    this.exited = new Promise((resolveExit) => {
      this.child.on("exit", (code, signal) => {
        running.delete(this.child);
        this.exit = { code, signal, at: performance.now() };
        resolveExit(this.exit);
      });
    });
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  endInput(): void {
    this.child.stdin.end();
  }

  /** The first event (from index `from`) matching `predicate`; rejects after `timeoutMs` or if the process exits. */
  async waitFor(
    predicate: (e: JsonEvent) => boolean,
    timeoutMs: number,
    what: string,
    from = 0,
  ): Promise<JsonEvent> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find(predicate);
      if (found) return found;
      if (this.exit)
        throw new Error(
          `process exited (${this.exit.code}) while waiting for ${what}; stderr: ${this.stderr}`,
        );
      if (performance.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; events: ${JSON.stringify(this.events)}; stderr: ${this.stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async waitExit(timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`process still running after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  count(predicate: (e: JsonEvent) => boolean): number {
    return this.events.filter(predicate).length;
  }
}

export function killAll(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}

/** Runs the CLI to completion (for register, --version...). */
export async function runCli(
  args: readonly string[],
  timeoutMs = STARTUP_MS,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const p = new CliProcess(args);
  p.endInput();
  const exit = await p.waitExit(timeoutMs);
  return { code: exit.code, stdout: p.stdout, stderr: p.stderr, ms: exit.at - p.startedAt };
}

export interface TestDirectory {
  dataDir: string;
  ports: Record<string, number>;
}

/** A fresh data directory with alice, bob and carol registered through the CLI on ports the OS gave us. */
export async function registerUsers(): Promise<TestDirectory> {
  const dataDir = mkdtempSync(join(tmpdir(), "chatnode-cli-"));
  const list = await freePorts(USERS.length);
  const ports: Record<string, number> = {};
  // One after the other: concurrent registrations could each rewrite users.json without the others.
  for (const [i, u] of USERS.entries()) {
    const port = list[i] as number;
    ports[u.name] = port;
    const r = await runCli([
      "register",
      "--username",
      u.name,
      "--password",
      u.password,
      "--port",
      String(port),
      "--data-dir",
      dataDir,
    ]);
    if (r.code !== 0) throw new Error(`register ${u.name} failed (${r.code}): ${r.stderr}`);
  }
  return { dataDir, ports };
}
