/** The parent's side of fixtures/target-node.ts: start it, ask it things, collect its events, stop it. */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TargetSpec, TargetStats } from "../fixtures/target-node.ts";
import { childEnv } from "./spec.ts";

export type { TargetSpec, TargetStats };

const FIXTURE = fileURLToPath(new URL("../fixtures/target-node.ts", import.meta.url));

export interface TargetEvent {
  type: "message" | "delivered" | "failed" | "crash";
  from?: string;
  to?: string;
  msgId?: string;
  kind?: string;
  text?: string;
  reason?: string;
  error?: string;
}

export interface Target {
  readonly child: ChildProcess;
  readonly port: number;
  readonly events: TargetEvent[];
  request<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  stats(): Promise<TargetStats>;
  /** Stats after a full garbage collection (the child runs with --expose-gc). */
  gcStats(): Promise<TargetStats>;
  /** Graceful close; resolves with the exit code. */
  close(): Promise<number | null>;
  /** SIGKILL if still running. */
  kill(): void;
  exitCode(): number | null;
}

export async function startTarget(spec: TargetSpec, timeoutMs = 15_000): Promise<Target> {
  const child = fork(FIXTURE, [], {
    execArgv: ["--import", "tsx", "--expose-gc"],
    env: childEnv({ TARGET_SPEC: JSON.stringify(spec) }),
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const events: TargetEvent[] = [];
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited: number | null = null;
  const exit = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      exited = code ?? -1;
      for (const w of waiting.values()) w.reject(new Error(`target exited (${code}) before answering`));
      waiting.clear();
      resolve(code);
    }),
  );
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("target did not start in time")), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`target exited (${code}) while starting`));
    });
    child.on("message", (raw) => {
      const m = raw as {
        type?: string;
        port?: number;
        id?: number;
        ok?: boolean;
        value?: unknown;
        error?: string;
      };
      if (m.type === "ready") {
        clearTimeout(timer);
        resolve(m.port as number);
      } else if (m.id !== undefined) {
        const w = waiting.get(m.id);
        waiting.delete(m.id);
        if (m.ok) w?.resolve(m.value);
        else w?.reject(new Error(m.error));
      } else if (m.type) events.push(m as TargetEvent);
    });
  });
  let port: number;
  try {
    port = await ready;
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  const request = <T>(cmd: string, args: Record<string, unknown> = {}) =>
    new Promise<T>((resolve, reject) => {
      if (exited !== null) return reject(new Error(`target exited (${exited})`));
      const id = nextId++;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, cmd, ...args });
    });
  return {
    child,
    port,
    events,
    request,
    stats: () => request<TargetStats>("stats"),
    gcStats: () => request<TargetStats>("gc-stats"),
    async close() {
      if (exited !== null) return exited;
      await request("close").catch(() => {});
      return exit;
    },
    kill() {
      if (exited === null) child.kill("SIGKILL");
    },
    exitCode: () => exited,
  };
}

/** Polls `check` until it returns true; throws with `what` after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function sumValues(record: Record<string, number> | undefined): number {
  let n = 0;
  for (const v of Object.values(record ?? {})) n += v;
  return n;
}
