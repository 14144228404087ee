/**
 * The scenario cluster: the ten demo users registered in a data directory, one real ChatNode each on UDP (SQLite
 * stores, real Ed25519/HPKE crypto, the default engine config), every event they emit recorded in one log, and
 * waits that resolve on those events (re-checked on every event and on a short poll for counters that have no
 * event), each bounded by a timeout that names what it waited for.
 */
import { createSocket } from "node:dgram";
import { performance } from "node:perf_hooks";
import type { MessageKind } from "../engine/types.ts";
import { type FaultConfig, type FaultCounters, NO_FAULTS, newFaultCounters } from "../faults/plan.ts";
import { openDirectory } from "../identity/directory.ts";
import { bulkRegister, DEFAULT_USERS } from "../identity/register.ts";
import type { ChatNode } from "../node/chat-node.ts";
import { ChatNodeError } from "../node/errors.ts";
import { openNode } from "../node/open-node.ts";
import type { NodeStats } from "../node/types.ts";
import { type Checker, ScenarioError } from "./checks.ts";

export const HOST = "127.0.0.1";
/**
 * scrypt cost for the demo users' key files. Their passwords are public (pass0 … pass9), so the default cost
 * (2^15, about 0.25 s per unlock) would protect nothing and only slow the many logins of a run.
 */
export const SCENARIO_SCRYPT_N = 2 ** 10;
/** How often waits re-check conditions that no event announces (counters such as retransmits). */
const POLL_MS = 20;

// ---- the event log ------------------------------------------------------------------------------------------

interface EventBase {
  /** The node (user name) that emitted it. */
  node: string;
  /** Which start of that node: 1 for the first, +1 for every restart (in-process or child process). */
  life: number;
  /** performance.now() when it was recorded. */
  at: number;
}

export type NodeEvent = EventBase &
  (
    | { type: "ready"; port: number }
    | { type: "queued"; msgId: string; kind: MessageKind; to: string[] }
    | { type: "message"; msgId: string; from: string; kind: MessageKind; text: string }
    | { type: "delivered"; msgId: string; to: string; tries: number }
    | { type: "failed"; msgId: string; to: string; code: string; reason: string }
    | { type: "waiting"; msgId: string; to: string; cause: string; reason: string }
    | { type: "rejected"; reason: string; from?: string }
    | { type: "duplicate"; from: string; msgId?: string }
    | { type: "peer-online"; peer: string }
    | { type: "peer-offline"; peer: string }
  );

type EventOf<T extends NodeEvent["type"]> = Extract<NodeEvent, { type: T }>;

export class EventLog {
  readonly events: NodeEvent[] = [];
  private readonly watchers = new Set<() => void>();
  /** "type|node|msgId|peer" → count, for the exactly-once checks. */
  private readonly index = new Map<string, number>();

  push(event: NodeEvent): void {
    this.events.push(event);
    const key = indexKey(event);
    if (key) this.index.set(key, (this.index.get(key) ?? 0) + 1);
    for (const watcher of [...this.watchers]) watcher();
  }

  /** The position to count from. */
  mark(): number {
    return this.events.length;
  }

  since<T extends NodeEvent["type"]>(mark: number, type: T, nodes?: readonly string[]): EventOf<T>[] {
    const out: EventOf<T>[] = [];
    for (let i = mark; i < this.events.length; i++) {
      const e = this.events[i] as NodeEvent;
      if (e.type === type && (!nodes || nodes.includes(e.node))) out.push(e as EventOf<T>);
    }
    return out;
  }

  /** How many `message` events `node` emitted for `msgId` from `from` (every life of the node). */
  shown(node: string, msgId: string, from: string): number {
    return this.index.get(`message|${node}|${msgId}|${from}`) ?? 0;
  }

  /** How many `delivered` events the sender `node` emitted for `msgId` to `to`. */
  acked(node: string, msgId: string, to: string): number {
    return this.index.get(`delivered|${node}|${msgId}|${to}`) ?? 0;
  }

  failed(node: string, msgId: string, to: string): number {
    return this.index.get(`failed|${node}|${msgId}|${to}`) ?? 0;
  }

  /** How many `waiting` events (a give-up: the message waits for its recipient) `node` emitted for `msgId` to `to`. */
  waited(node: string, msgId: string, to: string): number {
    return this.index.get(`waiting|${node}|${msgId}|${to}`) ?? 0;
  }

  watch(watcher: () => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }
}

function indexKey(e: NodeEvent): string | undefined {
  switch (e.type) {
    case "message":
      return `message|${e.node}|${e.msgId}|${e.from}`;
    case "delivered":
      return `delivered|${e.node}|${e.msgId}|${e.to}`;
    case "failed":
      return `failed|${e.node}|${e.msgId}|${e.to}`;
    case "waiting":
      return `waiting|${e.node}|${e.msgId}|${e.to}`;
    default:
      return undefined;
  }
}

export interface WaitOptions {
  timeoutMs: number;
  /** The numbers so far, for the timeout message ("delivered 44 of 45"). */
  progress?: () => string;
  /** A reason to stop at once (a message given up that should not have been), or undefined. */
  abort?: () => string | undefined;
}

/**
 * Resolves as soon as `done()` holds: re-checked after every recorded event (coalesced to one check per
 * microtask) and every POLL_MS. Rejects with a ScenarioError naming `what` after `timeoutMs`, or when `abort`
 * gives a reason.
 */
export function waitFor(
  log: EventLog,
  what: string,
  done: () => boolean,
  options: WaitOptions,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let finished = false;
    let queued = false;
    const started = performance.now();
    const finish = (error?: Error) => {
      if (finished) return;
      finished = true;
      unwatch();
      clearInterval(poll);
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    const check = () => {
      queued = false;
      if (finished) return;
      try {
        const reason = options.abort?.();
        if (reason !== undefined) return finish(new ScenarioError(`while waiting for ${what}: ${reason}`));
        if (done()) finish();
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    };
    const unwatch = log.watch(() => {
      if (queued || finished) return;
      queued = true;
      queueMicrotask(check);
    });
    const poll = setInterval(check, POLL_MS);
    const timer = setTimeout(() => {
      if (finished) return;
      check();
      if (finished) return;
      const elapsed = Math.round(performance.now() - started);
      const progress = options.progress ? ` (${options.progress()})` : "";
      finish(new ScenarioError(`timed out after ${elapsed} ms waiting for ${what}${progress}`));
    }, options.timeoutMs);
    check();
  });
}

// ---- counters -------------------------------------------------------------------------------------------------

/** The counters the scenarios compare, summed over a set of nodes. */
export interface Totals {
  retransmits: number;
  duplicates: number;
  messagesDelivered: number;
  messagesFailed: number;
  acksReceived: number;
  acksSent: number;
  framesSent: number;
  rejected: Record<string, number>;
  faults: FaultCounters;
}

export function zeroTotals(): Totals {
  return {
    retransmits: 0,
    duplicates: 0,
    messagesDelivered: 0,
    messagesFailed: 0,
    acksReceived: 0,
    acksSent: 0,
    framesSent: 0,
    rejected: {},
    faults: newFaultCounters(),
  };
}

function addInto(into: Totals, s: Totals | NodeStats, sign = 1): void {
  into.retransmits += sign * s.retransmits;
  into.duplicates += sign * s.duplicates;
  into.messagesDelivered += sign * s.messagesDelivered;
  into.messagesFailed += sign * s.messagesFailed;
  into.acksReceived += sign * s.acksReceived;
  into.acksSent += sign * s.acksSent;
  into.framesSent += sign * s.framesSent;
  for (const [reason, n] of Object.entries(s.rejected)) {
    const next = (into.rejected[reason] ?? 0) + sign * (n ?? 0);
    if (next === 0) delete into.rejected[reason];
    else into.rejected[reason] = next;
  }
  for (const key of Object.keys(into.faults) as (keyof FaultCounters)[])
    into.faults[key] += sign * s.faults[key];
}

export function sumTotals(parts: Iterable<Totals | NodeStats>): Totals {
  const out = zeroTotals();
  for (const p of parts) addInto(out, p);
  return out;
}

export function diffTotals(after: Totals, before: Totals): Totals {
  const out = zeroTotals();
  addInto(out, after);
  addInto(out, before, -1);
  return out;
}

export function totalRejected(t: Totals): number {
  return Object.values(t.rejected).reduce((a, b) => a + b, 0);
}

// ---- the cluster ----------------------------------------------------------------------------------------------

export interface ScenarioUser {
  name: string;
  password: string;
  port: number;
  id: string;
}

/** A message a scenario sent, with everything the checks need. */
export interface Sent {
  msgId: string;
  from: string;
  kind: MessageKind;
  /** Recipient names. */
  to: string[];
  text: string;
  at: number;
}

export interface ClusterOptions {
  dataDir: string;
  basePort: number;
}

export class Cluster {
  readonly log = new EventLog();
  readonly users: ScenarioUser[];
  private readonly nodes = new Map<string, ChatNode>();
  private readonly lives = new Map<string, number>();
  /** Counters of a user's earlier (closed) nodes, so that totals run across restarts. */
  private readonly closedTotals = new Map<string, Totals>();

  private constructor(
    readonly dataDir: string,
    users: ScenarioUser[],
  ) {
    this.users = users;
  }

  /** Registers the ten demo users in `dataDir` (on basePort … basePort+9) and starts a node for each. */
  static async create(options: ClusterOptions): Promise<Cluster> {
    const registered = await bulkRegister({
      dataDir: options.dataDir,
      basePort: options.basePort,
      host: HOST,
      scryptN: SCENARIO_SCRYPT_N,
    });
    if (registered.skipped.length > 0) {
      const why = registered.skipped.map((s) => `${s.name}: ${s.reason}`).join("; ");
      throw new ScenarioError(`could not register the demo users in ${options.dataDir}: ${why}`);
    }
    const directory = openDirectory(options.dataDir);
    const users = DEFAULT_USERS.map(({ name, password }) => {
      const record = directory.getUser(name);
      if (!record)
        throw new ScenarioError(`${name} is missing from ${directory.usersPath} after registering`);
      return { name, password, port: record.port, id: record.keyId };
    });
    const cluster = new Cluster(options.dataDir, users);
    try {
      await Promise.all(users.map((u) => cluster.startNode(u.name)));
      await cluster.waitFor("every node to see the nine others online", () => cluster.allConnected(), {
        timeoutMs: 10_000,
      });
      await cluster.quiesce();
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  get names(): string[] {
    return this.users.map((u) => u.name);
  }

  user(name: string): ScenarioUser {
    const user = this.users.find((u) => u.name === name);
    if (!user) throw new ScenarioError(`no user ${name} in the scenario cluster`);
    return user;
  }

  node(name: string): ChatNode {
    const node = this.nodes.get(name);
    if (!node) throw new ScenarioError(`${name}'s node is not running in this process`);
    return node;
  }

  isRunning(name: string): boolean {
    return this.nodes.has(name);
  }

  /** The next life number of `name` (also used by child processes). */
  nextLife(name: string): number {
    const life = (this.lives.get(name) ?? 0) + 1;
    this.lives.set(name, life);
    return life;
  }

  /** Opens `name`'s node from the data directory (its SQLite store), records its events, starts it. */
  async startNode(name: string, faults?: Partial<FaultConfig>): Promise<ChatNode> {
    if (this.nodes.has(name)) throw new ScenarioError(`${name}'s node is already running`);
    const user = this.user(name);
    const node = await openNode({
      dataDir: this.dataDir,
      username: name,
      password: user.password,
      host: HOST,
      closeGraceMs: 300,
      ...(faults && { faults }),
    });
    this.attach(name, this.nextLife(name), node);
    try {
      await node.start();
    } catch (error) {
      await node.close().catch(() => {});
      throw error;
    }
    this.nodes.set(name, node);
    return node;
  }

  /** Closes `name`'s node (its store keeps everything); its counters are kept for the totals. */
  async stopNode(name: string): Promise<void> {
    const node = this.nodes.get(name);
    if (!node) return;
    this.nodes.delete(name);
    let last: NodeStats | undefined;
    try {
      last = node.stats();
    } catch {
      last = undefined;
    }
    await node.close();
    if (last) this.closedTotals.set(name, sumTotals([this.closedTotals.get(name) ?? zeroTotals(), last]));
  }

  async restartNode(name: string): Promise<ChatNode> {
    await this.stopNode(name);
    return this.startNode(name);
  }

  private attach(name: string, life: number, node: ChatNode): void {
    const base = () => ({ node: name, life, at: performance.now() });
    node.on("ready", (e) => this.log.push({ ...base(), type: "ready", port: e.port }));
    node.on("queued", (e) =>
      this.log.push({ ...base(), type: "queued", msgId: e.msgId, kind: e.kind, to: e.to }),
    );
    node.on("message", (e) =>
      this.log.push({ ...base(), type: "message", msgId: e.msgId, from: e.from, kind: e.kind, text: e.text }),
    );
    node.on("delivered", (e) =>
      this.log.push({ ...base(), type: "delivered", msgId: e.msgId, to: e.to, tries: e.tries }),
    );
    node.on("failed", (e) =>
      this.log.push({ ...base(), type: "failed", msgId: e.msgId, to: e.to, code: e.code, reason: e.reason }),
    );
    node.on("waiting", (e) =>
      this.log.push({
        ...base(),
        type: "waiting",
        msgId: e.msgId,
        to: e.to,
        cause: e.cause,
        reason: e.reason,
      }),
    );
    node.on("rejected", (e) =>
      this.log.push({
        ...base(),
        type: "rejected",
        reason: e.reason,
        ...(e.from !== undefined && { from: e.from }),
      }),
    );
    node.on("duplicate", (e) =>
      this.log.push({
        ...base(),
        type: "duplicate",
        from: e.from,
        ...(e.msgId !== undefined && { msgId: e.msgId }),
      }),
    );
    node.on("peer-online", (e) => this.log.push({ ...base(), type: "peer-online", peer: e.peer }));
    node.on("peer-offline", (e) => this.log.push({ ...base(), type: "peer-offline", peer: e.peer }));
  }

  // ---- sending --------------------------------------------------------------------------------------------------

  broadcast(from: string, text: string): Sent {
    const r = this.node(from).broadcast(text);
    return { msgId: r.msgId, from, kind: "broadcast", to: r.to, text, at: performance.now() };
  }

  sendPrivate(from: string, to: string, text: string): Sent {
    const r = this.node(from).sendPrivate(to, text);
    return { msgId: r.msgId, from, kind: "private", to: r.to, text, at: performance.now() };
  }

  // ---- faults and counters --------------------------------------------------------------------------------------

  setFaults(names: readonly string[], faults: Partial<FaultConfig>): void {
    for (const name of names) this.node(name).setFaults(faults);
  }

  /** Every running node of `names` back to no faults at all. */
  clearFaults(names: readonly string[]): void {
    for (const name of names) this.nodes.get(name)?.setFaults(NO_FAULTS);
  }

  /** `name`'s counters across all its in-process lives. */
  totals(name: string): Totals {
    const node = this.nodes.get(name);
    const parts: (Totals | NodeStats)[] = [this.closedTotals.get(name) ?? zeroTotals()];
    if (node) parts.push(node.stats());
    return sumTotals(parts);
  }

  totalsOf(names: readonly string[]): Totals {
    return sumTotals(names.map((n) => this.totals(n)));
  }

  /** Nothing in flight, queued or parked (given up, waiting for the peer) on any of `names`' running nodes. */
  isIdle(names: readonly string[]): boolean {
    for (const name of names) {
      const node = this.nodes.get(name);
      if (!node) continue;
      for (const p of node.peers()) if (p.inFlight > 0 || p.queued > 0 || p.parked > 0) return false;
    }
    return true;
  }

  busyDescription(names: readonly string[]): string {
    const parts: string[] = [];
    for (const name of names) {
      const node = this.nodes.get(name);
      if (!node) continue;
      for (const p of node.peers()) {
        const n = p.inFlight + p.queued + p.parked;
        if (n > 0)
          parts.push(`${name}→${p.name}: ${p.inFlight} in flight, ${p.queued} queued, ${p.parked} parked`);
      }
    }
    return parts.length > 0 ? parts.join("; ") : "all idle";
  }

  waitFor(what: string, done: () => boolean, options: WaitOptions): Promise<void> {
    return waitFor(this.log, what, done, options);
  }

  /** Waits until `names` have nothing in flight. */
  settle(names: readonly string[], timeoutMs = 10_000): Promise<void> {
    return this.waitFor(`${names.join(", ")} to have nothing in flight`, () => this.isIdle(names), {
      timeoutMs,
      progress: () => this.busyDescription(names),
    });
  }

  /**
   * Waits until no datagram is left unread: loopback delivers a datagram into the receiver's socket buffer during
   * the send, and the receiver reads it in a later poll phase of this event loop. Once every node is idle, a copy
   * retransmitted just before the last ACK may still be waiting there; counting it in the next scenario would make
   * that scenario's numbers wrong. Done when no node received anything across two full loop turns.
   */
  async quiesce(maxTurns = 50): Promise<void> {
    const received = () => {
      let n = 0;
      for (const node of this.nodes.values()) n += node.stats().datagramsIn;
      return n;
    };
    const turn = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
    let last = received();
    let quiet = 0;
    for (let i = 0; i < maxTurns && quiet < 2; i++) {
      await turn();
      const now = received();
      quiet = now === last ? quiet + 1 : 0;
      last = now;
    }
  }

  /** Every running node sees every other user online (the HELLO exchange after starting is over). */
  allConnected(): boolean {
    for (const node of this.nodes.values()) if (node.peers().some((p) => !p.online)) return false;
    return true;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.nodes.keys()].map((name) => this.stopNode(name)));
  }
}

// ---- ports ----------------------------------------------------------------------------------------------------

/** Which of `ports` cannot be bound on `host` right now (UDP). */
export async function busyPorts(host: string, ports: readonly number[]): Promise<number[]> {
  const results = await Promise.all(
    ports.map(
      (port) =>
        new Promise<number | undefined>((resolve) => {
          const socket = createSocket("udp4");
          socket.once("error", () => {
            socket.close();
            resolve(port);
          });
          socket.bind(port, host, () => socket.close(() => resolve(undefined)));
        }),
    ),
  );
  return results.filter((p): p is number => p !== undefined);
}

/** A base port whose `count` consecutive UDP ports were all free a moment ago. */
export async function findFreeBasePort(host: string, count: number, attempts = 40): Promise<number> {
  for (let i = 0; i < attempts; i++) {
    const base = 20_000 + Math.floor(Math.random() * (40_000 - count));
    const ports = Array.from({ length: count }, (_, k) => base + k);
    if ((await busyPorts(host, ports)).length === 0) return base;
  }
  throw new ScenarioError(`found no ${count} consecutive free UDP ports on ${host}`);
}

export function isPortInUse(error: unknown): boolean {
  return error instanceof ChatNodeError && error.code === "PORT_IN_USE";
}

/** A message for the deliveries still missing, for timeouts: "alice→bob 'x' not shown; …". */
export function missingDeliveries(log: EventLog, sent: readonly Sent[], limit = 4): string {
  const missing: string[] = [];
  let count = 0;
  for (const s of sent) {
    for (const to of s.to) {
      const shown = log.shown(to, s.msgId, s.from) > 0;
      const acked = log.acked(s.from, s.msgId, to) > 0;
      if (shown && acked) continue;
      count++;
      if (missing.length < limit)
        missing.push(`${s.from}→${to} "${s.text}" ${shown ? "shown, not acknowledged" : "not shown"}`);
    }
  }
  if (count === 0) return "all delivered";
  return `${count} not yet delivered: ${missing.join("; ")}${count > limit ? "; …" : ""}`;
}

/** Every (message, recipient) pair shown by the recipient and acknowledged to the sender. */
export function allDelivered(log: EventLog, sent: readonly Sent[]): boolean {
  for (const s of sent)
    for (const to of s.to)
      if (log.shown(to, s.msgId, s.from) === 0 || log.acked(s.from, s.msgId, to) === 0) return false;
  return true;
}

/** The first `failed` event (since `mark`, on `nodes`) that was not expected, described; or undefined. */
export function unexpectedFailure(
  log: EventLog,
  mark: number,
  nodes: readonly string[],
  expected: (e: EventOf<"failed">) => boolean = () => false,
): string | undefined {
  for (const e of log.since(mark, "failed", nodes)) {
    if (!expected(e))
      return `${e.node} reported message …${e.msgId.slice(-8)} to ${e.to} failed (${e.code}: ${e.reason})`;
  }
  return undefined;
}

/**
 * The exactly-once checks for a set of sent messages: every (message, recipient) pair shown once by the recipient
 * and acknowledged once to the sender, and no other message shown on `nodes` since `mark`. Returns the expected
 * and the shown counts for the table.
 */
export function checkDeliveries(
  check: Checker,
  log: EventLog,
  sent: readonly Sent[],
  options: { mark: number; nodes: readonly string[]; what?: string },
): { expected: number; delivered: number } {
  const what = options.what ?? "messages";
  let expected = 0;
  let shownOnce = 0;
  let ackedOnce = 0;
  let delivered = 0;
  const twice: string[] = [];
  for (const s of sent) {
    for (const to of s.to) {
      expected++;
      const shown = log.shown(to, s.msgId, s.from);
      const acked = log.acked(s.from, s.msgId, to);
      delivered += shown;
      if (shown === 1) shownOnce++;
      if (shown > 1) twice.push(`${s.from}→${to} "${s.text}" shown ${shown} times`);
      if (acked === 1) ackedOnce++;
    }
  }
  check.equal(`${what} shown exactly once by their recipients`, expected, shownOnce);
  if (twice.length > 0)
    check.that(`${what} shown more than once`, false, twice.slice(0, 3).join("; "), "none");
  check.equal(`${what} acknowledged exactly once to their senders`, expected, ackedOnce);
  const ids = new Set(sent.map((s) => s.msgId));
  const strays = log.since(options.mark, "message", options.nodes).filter((e) => !ids.has(e.msgId));
  check.equal(
    `other messages shown on ${options.nodes.length === 10 ? "any node" : options.nodes.join(", ")}`,
    0,
    strays.length,
  );
  return { expected, delivered };
}

/** Give-ups (a message waiting for a recipient that stopped answering) reported on `nodes` since `mark`. */
export function giveUpsSince(log: EventLog, mark: number, nodes: readonly string[]): number {
  return log.since(mark, "waiting", nodes).filter((e) => e.cause === "no-answer").length;
}

// ---- timer lateness -------------------------------------------------------------------------------------------

export interface TimerProbe {
  /** Stops the probe: how many of its timers fired, and how late they fired on average and at worst (ms). */
  stop(): { firings: number; meanLateMs: number; maxLateMs: number };
}

/**
 * Measures how late a node's timer work runs in this event loop: a chain of `intervalMs` timers, each armed when
 * the previous one was handled, handled the way ChatNode handles its timer (the timeout, then two loop turns,
 * setImmediate inside setImmediate, before the engine sees it). A loaded machine, or other work in this process,
 * makes every timer late, and a chain of timers accumulates that lateness.
 */
export function startTimerProbe(intervalMs: number): TimerProbe {
  let firings = 0;
  let totalLate = 0;
  let maxLate = 0;
  let stopped = false;
  let due = performance.now() + intervalMs;
  let timer: NodeJS.Timeout | undefined;
  const handle = () => {
    if (stopped) return;
    const late = Math.max(0, performance.now() - due);
    firings++;
    totalLate += late;
    maxLate = Math.max(maxLate, late);
    due = performance.now() + intervalMs;
    arm();
  };
  const arm = () => {
    timer = setTimeout(() => setImmediate(() => setImmediate(handle)), intervalMs);
  };
  arm();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      return { firings, meanLateMs: firings > 0 ? totalLate / firings : 0, maxLateMs: maxLate };
    },
  };
}
