/**
 * The parent's side of a node in a child process (child-node.ts). Processes are spawned ahead as warm standbys
 * (Node and the modules loaded, nothing opened), so that a restart after a SIGKILL costs opening the node, not
 * starting Node; a standby opens a user's node only when told, so all it knows comes from the data directory.
 * The child's JSON lines become events in the cluster's log (under the user's name and a new life number).
 * Every process is tracked so that none outlives the run, even if a scenario fails half way.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, extname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { MessageKind } from "../engine/types.ts";
import type { FaultConfig } from "../faults/plan.ts";
import type { NodeStats } from "../node/types.ts";
import { ScenarioError } from "./checks.ts";
import type { NodeEvent } from "./event-log.ts";
import type { Sent, UdpCluster } from "./udp-cluster.ts";

const live = new Map<ChildProcess, Promise<unknown>>();
const standbys: Standby[] = [];
let exitHookInstalled = false;

/** Child processes of this module still running (the test asserts none is left). */
export function liveChildren(): number {
  return live.size;
}

/** SIGKILLs every child still running, standbys included; resolves once they have all exited. */
export async function killAllChildren(): Promise<void> {
  standbys.length = 0;
  const exits = [...live.values()];
  for (const proc of live.keys()) proc.kill("SIGKILL");
  await Promise.all(exits);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // If the runner itself dies (an uncaught error, Ctrl-C), no child stays behind holding a port.
  process.once("exit", () => {
    for (const proc of live.keys()) proc.kill("SIGKILL");
  });
}

/**
 * How to run child-node: the .ts source through tsx's loader next to this file, or the bundle
 * dist/scenarios/child-node.js with plain node (this code is then in a file of dist/chunks/, beside
 * dist/scenarios/). Worked out once, when this module loads: under tsx, import.meta.resolve blocks on tsx's loader
 * thread for a noticeable time, which must not happen while other scenarios' timers are running.
 */
const CHILD_COMMAND: readonly string[] = (() => {
  const here = fileURLToPath(import.meta.url);
  if (extname(here) === ".ts")
    return ["--import", import.meta.resolve("tsx"), join(dirname(here), "child-node.ts")];
  return [join(dirname(here), "..", "scenarios", "child-node.js")];
})();

interface ChildLine {
  event: string;
  id?: number;
  [key: string]: unknown;
}

type ExitInfo = { code: number | null; signal: NodeJS.Signals | null };

/** A spawned child-node process, before and after it opens a node. */
class Standby {
  readonly proc: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  /** Resolves when the process printed "standby" (rejects if it died first). */
  readonly loaded: Promise<void>;
  exitInfo: ExitInfo | undefined;
  stderr = "";
  onLine: (line: ChildLine) => void = () => {};

  constructor() {
    installExitHook();
    this.proc = spawn(process.execPath, [...CHILD_COMMAND], { stdio: ["pipe", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => {
      this.proc.once("exit", (code, signal) => {
        live.delete(this.proc);
        this.exitInfo = { code, signal };
        resolve({ code, signal });
      });
    });
    live.set(this.proc, this.exited);
    this.proc.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000);
    });
    // Writing to a child that just died must not crash the runner: the failed wait reports it instead.
    this.proc.stdin?.on("error", () => {});
    this.loaded = new Promise<void>((resolve, reject) => {
      this.onLine = (line) => {
        if (line.event === "standby") resolve();
      };
      void this.exited.then(() =>
        reject(new ScenarioError(`a child process ended before it was ready: ${this.why()}`)),
      );
    });
    this.loaded.catch(() => {});
    createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on("line", (raw) => {
      let line: ChildLine;
      try {
        line = JSON.parse(raw) as ChildLine;
      } catch {
        return;
      }
      this.onLine(line);
    });
  }

  why(): string {
    const info = this.exitInfo;
    const how = !info ? "running" : info.signal ? `signal ${info.signal}` : `exit code ${info.code}`;
    const tail = this.stderr.trim().split("\n").slice(-3).join(" | ");
    return `${how}${tail ? `: ${tail}` : ""}`;
  }

  write(command: Record<string, unknown>): void {
    this.proc.stdin?.write(`${JSON.stringify(command)}\n`);
  }
}

/** Starts `count` standby processes now, so that later child nodes start without waiting for Node. */
export function prepareChildren(count: number): void {
  for (let i = 0; i < count; i++) standbys.push(new Standby());
}

export interface ChildOptions {
  cluster: UdpCluster;
  username: string;
  faults?: Partial<FaultConfig>;
  readyTimeoutMs?: number;
}

export class ChildNode {
  readonly life: number;
  private readonly replies = new Map<number, (line: ChildLine) => void>();
  private nextId = 1;

  private constructor(
    private readonly cluster: UdpCluster,
    readonly username: string,
    private readonly child: Standby,
  ) {
    this.life = cluster.nextLife(username);
    child.onLine = (line) => this.onLine(line);
  }

  /** Opens `username`'s node in a standby process (a new one if none is left) and waits until it is ready. */
  static async start(options: ChildOptions): Promise<ChildNode> {
    const standby = standbys.shift() ?? new Standby();
    const what = `${options.username}'s child process to be ready`;
    const timeoutMs = options.readyTimeoutMs ?? 20_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        standby.loaded,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new ScenarioError(`timed out after ${timeoutMs} ms waiting for ${what}`)),
            timeoutMs,
          );
        }),
      ]);
    } catch (error) {
      standby.proc.kill("SIGKILL");
      throw error;
    } finally {
      clearTimeout(timer);
    }
    const node = new ChildNode(options.cluster, options.username, standby);
    const user = options.cluster.user(options.username);
    standby.write({
      id: 0,
      cmd: "open",
      dataDir: options.cluster.dataDir,
      username: options.username,
      password: user.password,
      ...(options.faults && { faults: options.faults }),
    });
    try {
      await options.cluster.waitFor(
        what,
        () =>
          options.cluster.log.events.some(
            (e) => e.type === "ready" && e.node === node.username && e.life === node.life,
          ),
        { timeoutMs, abort: () => node.deathReason() },
      );
    } catch (error) {
      await node.kill();
      throw error;
    }
    return node;
  }

  get alive(): boolean {
    return this.child.exitInfo === undefined;
  }

  /** Why the child is gone, if it is (with the end of its stderr), for aborting waits. */
  deathReason(): string | undefined {
    if (this.alive) return undefined;
    return `${this.username}'s child process ended (${this.child.why()})`;
  }

  private onLine(line: ChildLine): void {
    if (line.id !== undefined) {
      const reply = this.replies.get(line.id);
      if (reply) {
        this.replies.delete(line.id);
        reply(line);
      }
    }
    const event = this.toEvent(line);
    if (event) this.cluster.log.push(event);
  }

  private toEvent(l: ChildLine): NodeEvent | undefined {
    const base = { node: this.username, life: this.life, at: performance.now() };
    const s = (k: string) => String(l[k] ?? "");
    switch (l.event) {
      case "ready":
        return { ...base, type: "ready", port: Number(l.port) };
      case "queued":
        return {
          ...base,
          type: "queued",
          msgId: s("msgId"),
          kind: s("kind") as MessageKind,
          to: l.to as string[],
        };
      case "message":
        return {
          ...base,
          type: "message",
          msgId: s("msgId"),
          from: s("from"),
          kind: s("kind") as MessageKind,
          text: s("text"),
        };
      case "delivered":
        return { ...base, type: "delivered", msgId: s("msgId"), to: s("to"), tries: Number(l.tries) };
      case "failed":
        return {
          ...base,
          type: "failed",
          msgId: s("msgId"),
          to: s("to"),
          code: s("code"),
          reason: s("reason"),
        };
      case "waiting":
        return {
          ...base,
          type: "waiting",
          msgId: s("msgId"),
          to: s("to"),
          cause: s("cause"),
          reason: s("reason"),
        };
      case "rejected":
        return {
          ...base,
          type: "rejected",
          reason: s("reason"),
          ...(l.from !== undefined && { from: s("from") }),
        };
      case "duplicate":
        return {
          ...base,
          type: "duplicate",
          from: s("from"),
          ...(l.msgId !== undefined && { msgId: s("msgId") }),
        };
      case "peer-online":
        return { ...base, type: "peer-online", peer: s("peer") };
      case "peer-offline":
        return { ...base, type: "peer-offline", peer: s("peer") };
      default:
        return undefined;
    }
  }

  private request(command: Record<string, unknown>, what: string, timeoutMs = 5000): Promise<ChildLine> {
    const id = this.nextId++;
    return new Promise<ChildLine>((resolve, reject) => {
      if (!this.alive) return reject(new ScenarioError(`${what}: ${this.deathReason()}`));
      const timer = setTimeout(() => {
        this.replies.delete(id);
        reject(
          new ScenarioError(`${this.username}'s child process did not answer ${what} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.replies.set(id, (line) => {
        clearTimeout(timer);
        if (line.event === "error")
          reject(new ScenarioError(`${this.username}'s child process: ${String(line.message)}`));
        else resolve(line);
      });
      void this.child.exited.then(() => {
        if (!this.replies.has(id)) return;
        this.replies.delete(id);
        clearTimeout(timer);
        reject(new ScenarioError(`${what}: ${this.deathReason()}`));
      });
      this.child.write({ id, ...command });
    });
  }

  /** A private message (or a broadcast with `to` undefined), once the child confirmed it is queued. */
  async send(to: string | undefined, text: string): Promise<Sent> {
    const line = await this.request({ cmd: "send", to: to ?? null, text }, `sending "${text}"`);
    return {
      msgId: String(line.msgId),
      from: this.username,
      kind: to ? "private" : "broadcast",
      to: line.to as string[],
      text,
      at: performance.now(),
    };
  }

  async setFaults(faults: Partial<FaultConfig>): Promise<void> {
    await this.request({ cmd: "faults", faults }, "a fault change");
  }

  /** The child node's counters (of its current life). */
  async stats(): Promise<NodeStats> {
    const line = await this.request({ cmd: "stats" }, "a stats request");
    return line.stats as NodeStats;
  }

  /** SIGKILL: no chance to close the socket, flush or say goodbye. Resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.alive) this.child.proc.kill("SIGKILL");
    await this.child.exited;
  }

  /** Asks the node to close cleanly; SIGKILLs it if it has not exited within `timeoutMs`. */
  async quit(timeoutMs = 5000): Promise<ExitInfo> {
    if (this.alive) this.child.write({ id: this.nextId++, cmd: "quit" });
    const timer = setTimeout(() => this.child.proc.kill("SIGKILL"), timeoutMs);
    const info = await this.child.exited;
    clearTimeout(timer);
    return info;
  }
}
