/**
 * One benchmark node in its own process: a real ChatNode (node:dgram, Ed25519, HPKE, MAC'd ACKs, SQLite or memory
 * store) driven over the IPC channel by the parent (bench/procs.ts). It sends closed-loop (at most `inflight`
 * messages unacknowledged), stamps each message with the send time, and measures the latency and counts of what it
 * receives. Exits on "stop" or when the parent goes away.
 */

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { publicKeysOf } from "../src/crypto/keys.ts";
import { createCryptoPort, staticKeyDirectory } from "../src/crypto/port.ts";
import type { MsgId } from "../src/engine/types.ts";
import type { FaultCounters } from "../src/faults/plan.ts";
import { ChatNode } from "../src/node/chat-node.ts";
import type { NodeStats } from "../src/node/types.ts";
import { keySourceOf } from "../src/session/key-source.ts";
import { createMemoryStore } from "../src/storage/memory.ts";
import { openSqliteStore } from "../src/storage/sqlite.ts";
import {
  type ChildMessage,
  type InitCommand,
  messageText,
  type NodeReport,
  type ParentCommand,
  parseText,
  type RunPlan,
  secretsOf,
} from "./protocol.ts";
import { wallNow } from "./stats.ts";

let offset = 0;
const clock = () => wallNow() - offset;
const reply = (m: ChildMessage) => process.send?.(m);

let node: ChatNode | undefined;
let self = -1;
let peerCount = 0;

interface RunState {
  plan: RunPlan;
  sent: number;
  acked: number;
  failed: number;
  outstanding: Map<MsgId, number>;
  receivedFrom: Set<number>[];
  duplicates: number;
  windowReceived: number;
  latencies: number[];
  refillScheduled: boolean;
  statsFrom: NodeStats | null;
  statsTo: NodeStats | null;
  faultsFrom: FaultCounters | null;
  faultsTo: FaultCounters | null;
  cpuFrom: NodeJS.CpuUsage | null;
  cpuMicros: number;
  windowFrom: number;
  windowTo: number;
  timers: NodeJS.Timeout[];
}

let run: RunState | undefined;

async function init(cmd: InitCommand): Promise<void> {
  const t0 = performance.now();
  self = cmd.self;
  const me = cmd.users[cmd.self];
  if (!me) throw new Error("bad self index");
  const contacts = cmd.users.map((u) => ({ id: u.id, name: u.name, host: "127.0.0.1", port: u.port }));
  peerCount = cmd.users.length - 1;
  let store: ReturnType<typeof createMemoryStore>;
  if (cmd.store === "sqlite") {
    mkdirSync(cmd.dataDir, { recursive: true });
    store = openSqliteStore(join(cmd.dataDir, `${me.name}.sqlite`));
  } else store = createMemoryStore();
  node = new ChatNode({
    self: contacts[cmd.self] as (typeof contacts)[number],
    contacts,
    crypto: createCryptoPort({
      identity: secretsOf(me),
      directory: staticKeyDirectory(cmd.users.map((u) => publicKeysOf(secretsOf(u)))),
    }),
    sessionKeys: keySourceOf(
      secretsOf(me),
      staticKeyDirectory(cmd.users.map((u) => publicKeysOf(secretsOf(u)))),
    ),
    store,
    ephemeral: cmd.store === "memory",
    closeGraceMs: 200,
    ...(cmd.config && { config: cmd.config }),
  });
  const online = new Set<string>();
  node.on("peer-online", (p) => {
    online.add(p.id);
    if (online.size === peerCount) reply({ type: "online", peers: online.size });
  });
  node.on("peer-offline", (p) => online.delete(p.id));
  node.on("message", (m) => onMessage(m.text));
  node.on("delivered", (d) => resolve(d.msgId, false));
  node.on("failed", (f) => resolve(f.msgId, true));
  await node.start();
  reply({ type: "ready", port: node.port, startMs: performance.now() - t0 });
}

function onMessage(text: string): void {
  const r = run;
  if (!r) return;
  const p = parseText(text);
  if (!p || p.runId !== r.plan.runId) return;
  const now = clock();
  const seen = r.receivedFrom[p.sender];
  if (!seen) return;
  if (seen.has(p.counter)) {
    r.duplicates++;
    return;
  }
  seen.add(p.counter);
  if (now >= r.plan.measureFrom && now < r.plan.measureTo) {
    r.windowReceived++;
    r.latencies.push(now - p.stamp);
  }
}

function resolve(msgId: MsgId, failed: boolean): void {
  const r = run;
  if (!r) return;
  const left = r.outstanding.get(msgId);
  if (left === undefined) return;
  if (failed) r.failed++;
  else r.acked++;
  if (left > 1) r.outstanding.set(msgId, left - 1);
  else {
    r.outstanding.delete(msgId);
    scheduleRefill(r);
  }
}

/**
 * Refills once the acknowledgements being reported now are all counted: a microtask runs right after the node's
 * pump that reported them, as an application answering `delivered` would, without waiting a loop turn.
 */
function scheduleRefill(r: RunState): void {
  if (r.refillScheduled) return;
  r.refillScheduled = true;
  queueMicrotask(() => {
    r.refillScheduled = false;
    refill(r);
  });
}

/** Keeps `inflight` messages unacknowledged until the window closes. */
function refill(r: RunState): void {
  const n = node;
  const send = r.plan.send;
  if (!n || !send || run !== r) return;
  if (r.plan.paceMs !== undefined) return;
  while (r.outstanding.size < r.plan.inflight) {
    if (clock() >= r.plan.measureTo) return;
    sendOne(r);
  }
}

function sendOne(r: RunState): void {
  const n = node;
  const send = r.plan.send;
  if (!n || !send) return;
  const text = messageText(r.plan.runId, self, r.sent, clock(), r.plan.textBytes);
  const result = send.kind === "broadcast" ? n.broadcast(text) : n.sendPrivate(`n${send.to}`, text);
  r.sent++;
  r.outstanding.set(result.msgId, result.to.length);
}

function startRun(plan: RunPlan, users: number): void {
  const r: RunState = {
    plan,
    sent: 0,
    acked: 0,
    failed: 0,
    outstanding: new Map(),
    receivedFrom: Array.from({ length: users }, () => new Set<number>()),
    duplicates: 0,
    windowReceived: 0,
    latencies: [],
    refillScheduled: false,
    statsFrom: null,
    statsTo: null,
    faultsFrom: null,
    faultsTo: null,
    cpuFrom: null,
    cpuMicros: 0,
    windowFrom: 0,
    windowTo: 0,
    timers: [],
  };
  run = r;
  const at = (t: number, f: () => void) => r.timers.push(setTimeout(f, Math.max(0, t - clock())));
  at(plan.sendFrom, () => {
    if (plan.paceMs === undefined) return refill(r);
    const pace = setInterval(() => {
      if (clock() >= plan.measureTo || run !== r) return clearInterval(pace);
      if (r.outstanding.size < plan.inflight) sendOne(r);
    }, plan.paceMs);
    r.timers.push(pace);
  });
  at(plan.measureFrom, () => {
    const s = node?.stats();
    r.statsFrom = s ?? null;
    r.faultsFrom = s?.faults ?? null;
    r.cpuFrom = process.cpuUsage();
    r.windowFrom = clock();
  });
  at(plan.measureTo, () => {
    const s = node?.stats();
    r.statsTo = s ?? null;
    r.faultsTo = s?.faults ?? null;
    const cpu = process.cpuUsage(r.cpuFrom ?? undefined);
    r.cpuMicros = cpu.user + cpu.system;
    r.windowTo = clock();
  });
}

function diff<T extends object>(to: T | null, from: T | null): T | null {
  if (!to || !from) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(to)) {
    const f = (from as Record<string, unknown>)[k];
    if (typeof v === "number") out[k] = v - (typeof f === "number" ? f : 0);
    else if (v && typeof v === "object") out[k] = diff(v as object, (f ?? {}) as object);
  }
  return out as T;
}

function report(runId: number, withLatencies: boolean): NodeReport {
  const r = run;
  const mem = process.memoryUsage();
  if (!r || r.plan.runId !== runId) throw new Error(`no run ${runId}`);
  return {
    runId,
    self,
    sent: r.sent,
    acked: r.acked,
    failed: r.failed,
    receivedFrom: r.receivedFrom.map((s) => s.size),
    duplicates: r.duplicates,
    windowReceived: r.windowReceived,
    latencies: withLatencies ? r.latencies : [],
    stats: diff(r.statsTo, r.statsFrom),
    faults: diff(r.faultsTo, r.faultsFrom),
    cpuMicros: r.cpuMicros,
    windowMs: r.windowTo - r.windowFrom,
    heapUsed: mem.heapUsed,
    rss: mem.rss,
  };
}

async function stop(): Promise<void> {
  for (const t of run?.timers ?? []) clearTimeout(t);
  run = undefined;
  await node?.close();
  node = undefined;
  process.disconnect?.();
  process.exit(0);
}

process.on("message", (raw) => {
  const cmd = raw as ParentCommand;
  const fail = (e: unknown) =>
    reply({ type: "error", message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  try {
    switch (cmd.type) {
      case "init":
        init(cmd).catch(fail);
        return;
      case "ping":
        reply({ type: "pong", t: cmd.t, child: wallNow() });
        return;
      case "clock":
        offset = cmd.offset;
        reply({ type: "ok" });
        return;
      case "faults":
        node?.setFaults(cmd.faults);
        reply({ type: "ok" });
        return;
      case "run":
        startRun(cmd.plan, peerCount + 1);
        reply({ type: "ok" });
        return;
      case "collect":
        reply({ type: "report", report: report(cmd.runId, cmd.latencies) });
        return;
      case "stop":
        stop().catch(fail);
        return;
    }
  } catch (e) {
    fail(e);
  }
});
// The parent went away (it crashed or was killed): do not linger.
process.on("disconnect", () => {
  node?.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
