/**
 * The parent side of multi-process runs: forks bench/node-process.ts once per node (under tsx), talks to each over
 * IPC, calibrates the children's clocks to its own, and makes sure every child is gone when the bench ends.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { EngineConfig } from "../src/engine/config.ts";
import type { FaultConfig } from "../src/faults/plan.ts";
import { freePorts } from "../test/helpers/loopback-nodes.ts";
import {
  type ChildMessage,
  makeUserSpecs,
  type NodeReport,
  type ParentCommand,
  type RunPlan,
  type UserSpec,
} from "./protocol.ts";
import { wallNow } from "./stats.ts";

const CHILD = fileURLToPath(new URL("./node-process.ts", import.meta.url));
const live = new Set<ChildProcess>();

/** Kills whatever child is still alive (used on exit and on signals). */
export function killAllChildren(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  live.clear();
}
process.on("exit", killAllChildren);

class Child {
  private readonly waiting: Array<{ resolve: (m: ChildMessage) => void; reject: (e: Error) => void }> = [];
  online = false;
  readyMs = 0;

  constructor(readonly proc: ChildProcess) {
    proc.on("message", (raw) => {
      const m = raw as ChildMessage;
      if (m.type === "online") {
        this.online = true;
        return;
      }
      const w = this.waiting.shift();
      if (!w) return;
      if (m.type === "error") w.reject(new Error(`node process: ${m.message}`));
      else w.resolve(m);
    });
    proc.on("exit", (code, signal) => {
      live.delete(proc);
      for (const w of this.waiting.splice(0)) w.reject(new Error(`node process exited (${code ?? signal})`));
    });
  }

  request(cmd: ParentCommand, timeoutMs = 30_000): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node process did not answer ${cmd.type}`)), timeoutMs);
      this.waiting.push({
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send(cmd);
    });
  }
}

export interface ProcClusterOptions {
  nodes: number;
  store: "sqlite" | "memory";
  dataDir: string;
  config?: Partial<EngineConfig>;
  /** Extra node flags for the children (e.g. --cpu-prof). */
  execArgv?: string[];
}

/** N real nodes, one per process, all on 127.0.0.1. */
export class ProcCluster {
  readonly users: UserSpec[];
  private readonly children: Child[] = [];
  private runCounter = 0;

  private constructor(users: UserSpec[]) {
    this.users = users;
  }

  static async start(options: ProcClusterOptions): Promise<ProcCluster> {
    const cluster = new ProcCluster(makeUserSpecs(await freePorts(options.nodes)));
    for (let i = 0; i < options.nodes; i++) {
      const proc = fork(CHILD, [], {
        execArgv: ["--import", "tsx", ...(options.execArgv ?? [])],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      live.add(proc);
      cluster.children.push(new Child(proc));
    }
    try {
      await Promise.all(
        cluster.children.map(async (c, i) => {
          const ready = await c.request(
            {
              type: "init",
              self: i,
              users: cluster.users,
              store: options.store,
              dataDir: options.dataDir,
              ...(options.config && { config: options.config }),
            },
            60_000,
          );
          if (ready.type === "ready") c.readyMs = ready.startMs;
        }),
      );
      await cluster.calibrate();
      await cluster.until(() => cluster.children.every((c) => c.online), 20_000, "every peer online");
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  get size(): number {
    return this.children.length;
  }

  /** Each child's clock offset to ours, from the ping with the shortest round trip (NTP-style midpoint). */
  private async calibrate(): Promise<void> {
    for (const c of this.children) {
      let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
      for (let i = 0; i < 15; i++) {
        const t = wallNow();
        const m = await c.request({ type: "ping", t });
        const back = wallNow();
        if (m.type !== "pong") continue;
        const rtt = back - t;
        if (rtt < best.rtt) best = { rtt, offset: m.child - (t + back) / 2 };
      }
      await c.request({ type: "clock", offset: best.offset });
    }
  }

  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async setFaults(faults: Partial<FaultConfig>): Promise<void> {
    await Promise.all(this.children.map((c) => c.request({ type: "faults", faults })));
  }

  /**
   * One closed-loop run: senders start after `leadMs`, the window lasts `warmupMs` + `measureMs` (only the last
   * `measureMs` is measured), then every message sent is waited for (up to `drainMs`) at every recipient.
   */
  async run(options: {
    send: (index: number) => RunPlan["send"];
    inflight: number;
    paceMs?: number;
    textBytes: number;
    warmupMs: number;
    measureMs: number;
    drainMs: number;
  }): Promise<{ reports: NodeReport[]; drained: boolean; drainMs: number }> {
    const runId = ++this.runCounter;
    const sendFrom = wallNow() + 100;
    const measureFrom = sendFrom + options.warmupMs;
    const measureTo = measureFrom + options.measureMs;
    await Promise.all(
      this.children.map((c, i) =>
        c.request({
          type: "run",
          plan: {
            runId,
            send: options.send(i),
            inflight: options.inflight,
            ...(options.paceMs !== undefined && { paceMs: options.paceMs }),
            textBytes: options.textBytes,
            sendFrom,
            measureFrom,
            measureTo,
          },
        }),
      ),
    );
    await new Promise((r) => setTimeout(r, Math.max(0, measureTo - wallNow() + 20)));
    // Every message sent must reach each of its recipients: poll the counts until they match.
    const drainStart = wallNow();
    let reports = await this.collect(runId, false);
    let drained = false;
    while (wallNow() - drainStart < options.drainMs) {
      drained = isDrained(reports, options.send);
      if (drained) break;
      await new Promise((r) => setTimeout(r, 50));
      reports = await this.collect(runId, false);
    }
    const drainMs = wallNow() - drainStart;
    reports = await this.collect(runId, true);
    if (!drained) drained = isDrained(reports, options.send);
    return { reports, drained, drainMs };
  }

  private async collect(runId: number, latencies: boolean): Promise<NodeReport[]> {
    return Promise.all(
      this.children.map(async (c) => {
        const m = await c.request({ type: "collect", runId, latencies });
        if (m.type !== "report") throw new Error("expected a report");
        return m.report;
      }),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (c) => {
        if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
        const exited = new Promise<void>((r) => c.proc.once("exit", () => r()));
        try {
          c.proc.send({ type: "stop" } satisfies ParentCommand);
        } catch {
          c.proc.kill("SIGKILL");
        }
        const timer = setTimeout(() => c.proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/** Whether every recipient has every message each sender sent (and nothing failed, nothing outstanding). */
function isDrained(reports: NodeReport[], send: (index: number) => RunPlan["send"]): boolean {
  for (const sender of reports) {
    const plan = send(sender.self);
    if (!plan) continue;
    if (sender.acked + sender.failed < sender.sent * (plan.kind === "broadcast" ? reports.length - 1 : 1))
      return false;
    const recipients =
      plan.kind === "broadcast" ? reports.filter((r) => r.self !== sender.self) : [reports[plan.to]];
    for (const r of recipients) if ((r?.receivedFrom[sender.self] ?? 0) < sender.sent) return false;
  }
  return true;
}
