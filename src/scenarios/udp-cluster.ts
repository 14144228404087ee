/**
 * The scenario cluster: the ten demo users registered in a data directory, one real ChatNode each on UDP (SQLite
 * stores, real Ed25519/HPKE crypto, the default engine config), every event they emit recorded in one EventLog.
 * Nodes run in this process; child.ts runs one in a child process against the same log. The real-UDP counterpart
 * of the simulator's Cluster (sim/cluster.ts), which drives engines on a virtual network.
 */
import { performance } from "node:perf_hooks";
import type { MessageKind } from "../engine/types.ts";
import { type FaultConfig, NO_FAULTS } from "../faults/plan.ts";
import { DEFAULT_USERS } from "../identity/demo-users.ts";
import { openDirectory } from "../identity/directory.ts";
import { bulkRegister } from "../identity/register.ts";
import type { ChatNode } from "../node/chat-node.ts";
import { openNode } from "../node/open-node.ts";
import type { NodeStats } from "../node/types.ts";
import { ScenarioError } from "./checks.ts";
import { EventLog, type WaitOptions, waitFor } from "./event-log.ts";
import { sumTotals, type Totals, zeroTotals } from "./totals.ts";

export const HOST = "127.0.0.1";
/**
 * scrypt cost for the demo users' key files. Their passwords are public (pass0 … pass9), so the default cost
 * (2^15, about 0.25 s per unlock) would protect nothing and only slow the many logins of a run.
 */
export const SCENARIO_SCRYPT_N = 2 ** 10;

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

export interface UdpClusterOptions {
  dataDir: string;
  basePort: number;
}

export class UdpCluster {
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
  static async create(options: UdpClusterOptions): Promise<UdpCluster> {
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
    const cluster = new UdpCluster(options.dataDir, users);
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
