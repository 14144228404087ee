/** Starting fixtures/peer.ts as a child process (optionally inside a network namespace) and reading its events. */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import type { PeerFixtureSpec } from "../fixtures/peer.ts";
import { childEnv } from "./spec.ts";

export type { PeerFixtureSpec };

const FIXTURE = fileURLToPath(new URL("../fixtures/peer.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface PeerEvent {
  event: string;
  text?: string;
  msgId?: string;
  from?: string;
  to?: string;
  peer?: string;
  alreadySent?: number;
}

export interface PeerProcess {
  readonly child: ChildProcess;
  /** Every event of this life. */
  readonly events: PeerEvent[];
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;
  send(text: string): void;
  /** End of input: the peer closes gracefully and exits. */
  finish(): Promise<number | null>;
  kill(): Promise<void>;
  running(): boolean;
}

export function startPeer(
  spec: PeerFixtureSpec,
  options: { netns?: string; onEvent?: (e: PeerEvent) => void } = {},
) {
  const node = [process.execPath, "--import", "tsx", FIXTURE];
  const [command, ...args] = options.netns ? ["ip", "netns", "exec", options.netns, ...node] : node;
  const child = spawn(command as string, args, {
    cwd: ROOT,
    env: childEnv({ PEER_SPEC: JSON.stringify(spec) }),
    stdio: ["pipe", "pipe", "pipe"],
  });
  const events: PeerEvent[] = [];
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr += d;
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.once("exit", (code, signal) =>
      reject(new Error(`peer exited (${code ?? signal}) before it was ready: ${stderr.slice(-500)}`)),
    );
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      let e: PeerEvent;
      try {
        e = JSON.parse(line) as PeerEvent;
      } catch {
        return; // a line cut short by SIGKILL
      }
      events.push(e);
      options.onEvent?.(e);
      if (e.event === "ready") resolve();
    });
  });
  ready.catch(() => {});
  const p: PeerProcess = {
    child,
    events,
    ready,
    exited,
    send(text) {
      child.stdin?.write(`send ${text}\n`);
    },
    async finish() {
      child.stdin?.end();
      return exited;
    },
    async kill() {
      if (exitCode === undefined) child.kill("SIGKILL");
      await exited;
    },
    running: () => exitCode === undefined,
  };
  return p;
}

export interface DbView {
  /** Texts this node stored as received, with how many times each. */
  received: Map<string, number>;
  /** Texts this node queued (its outbox), and how many recipients have not acknowledged each. */
  outgoing: Map<string, number>;
}

/** Reads a peer's database without disturbing it (read-only; WAL lets it run meanwhile). */
export function readDb(path: string): DbView {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const received = new Map<string, number>();
    for (const row of db.prepare<[], { text: string }>("SELECT text FROM received").all())
      received.set(row.text, (received.get(row.text) ?? 0) + 1);
    const outgoing = new Map<string, number>();
    const rows = db
      .prepare<[], { text: string; open: number }>(
        `SELECT o.text AS text, (SELECT count(*) FROM outgoing_recipients r
           WHERE r.seq = o.seq AND r.state <> 'delivered') AS open FROM outgoing o`,
      )
      .all();
    for (const row of rows) outgoing.set(row.text, row.open);
    return { received, outgoing };
  } finally {
    db.close();
  }
}
