/**
 * What the scenario nodes did: every event of every node (in this process or a child process) in one log, and
 * waits that resolve on those events (re-checked on every event and on a short poll for counters that have no
 * event), each bounded by a timeout that names what it waited for.
 */
import { performance } from "node:perf_hooks";
import type { MessageKind } from "../engine/types.ts";
import { ScenarioError } from "./checks.ts";

/** How often waits re-check conditions that no event announces (counters such as retransmits). */
const POLL_MS = 20;

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

export type EventOf<T extends NodeEvent["type"]> = Extract<NodeEvent, { type: T }>;

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
