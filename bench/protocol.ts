/**
 * What the benchmark parent and its node processes (bench/node-process.ts) say to each other over the IPC
 * channel, and the key material they share. Types and small pure helpers only.
 */
import { generateSecretKeys, peerIdOf, publicKeysOf, type SecretKeys } from "../src/crypto/keys.ts";
import type { EngineConfig } from "../src/engine/config.ts";
import type { PeerId } from "../src/engine/types.ts";
import type { FaultConfig, FaultCounters } from "../src/faults/plan.ts";
import type { NodeStats } from "../src/node/types.ts";

export interface UserSpec {
  name: string;
  id: PeerId;
  port: number;
  ed25519Seed: string;
  x25519PrivateKey: string;
}

export function makeUserSpecs(ports: readonly number[]): UserSpec[] {
  return ports.map((port, i) => {
    const secrets = generateSecretKeys();
    return {
      name: `n${i}`,
      id: peerIdOf(publicKeysOf(secrets)),
      port,
      ed25519Seed: Buffer.from(secrets.ed25519Seed).toString("hex"),
      x25519PrivateKey: Buffer.from(secrets.x25519PrivateKey).toString("hex"),
    };
  });
}

export function secretsOf(u: UserSpec): SecretKeys {
  return {
    ed25519Seed: new Uint8Array(Buffer.from(u.ed25519Seed, "hex")),
    x25519PrivateKey: new Uint8Array(Buffer.from(u.x25519PrivateKey, "hex")),
  };
}

export interface InitCommand {
  type: "init";
  self: number;
  users: UserSpec[];
  /** "sqlite": a durable store in `dataDir` (what a real node runs); "memory": the ephemeral store. */
  store: "sqlite" | "memory";
  dataDir: string;
  config?: Partial<EngineConfig>;
}

/** One measured run. Times are on the parent's clock (each child corrects by its calibrated offset). */
export interface RunPlan {
  runId: number;
  /** Broadcast to every peer, or private to the user at this index; null: this node only receives. */
  send: { kind: "broadcast" } | { kind: "private"; to: number } | null;
  /** Messages sent but not yet acknowledged by every recipient, at most (closed loop). */
  inflight: number;
  /**
   * Open loop instead: one message every `paceMs` (skipped while `inflight` are unacknowledged), for latency at a
   * light, chat-like load rather than at saturation.
   */
  paceMs?: number;
  /** UTF-8 bytes of every message text. */
  textBytes: number;
  sendFrom: number;
  measureFrom: number;
  measureTo: number;
}

export type ParentCommand =
  | InitCommand
  | { type: "ping"; t: number }
  | { type: "clock"; offset: number }
  | { type: "faults"; faults: Partial<FaultConfig> }
  | { type: "run"; plan: RunPlan }
  | { type: "collect"; runId: number; latencies: boolean }
  | { type: "stop" };

export interface NodeReport {
  runId: number;
  self: number;
  /** Messages this node sent in the run. */
  sent: number;
  /** (message, recipient) pairs acknowledged / failed. */
  acked: number;
  failed: number;
  /** Distinct messages of this run received, per sender index (all of the run, not only the window). */
  receivedFrom: number[];
  /** Messages received twice (must stay 0: the node drops copies). */
  duplicates: number;
  /** Messages received inside the measurement window, and their latencies (ms), when asked for. */
  windowReceived: number;
  latencies: number[];
  /** Engine and fault counters over the window. */
  stats: NodeStats | null;
  faults: FaultCounters | null;
  /** CPU time (user + system, µs) this process used over the window. */
  cpuMicros: number;
  windowMs: number;
  heapUsed: number;
  rss: number;
}

export type ChildMessage =
  | { type: "ready"; port: number; startMs: number }
  | { type: "pong"; t: number; child: number }
  | { type: "online"; peers: number }
  | { type: "ok" }
  | { type: "report"; report: NodeReport }
  | { type: "error"; message: string };

/** The text of one benchmark message: run, sender, counter, send time, padded to exactly `bytes` bytes. */
export function messageText(
  runId: number,
  sender: number,
  counter: number,
  stamp: number,
  bytes: number,
): string {
  const head = `${runId}|${sender}|${counter}|${stamp.toFixed(3)}|`;
  return head.length >= bytes ? head : head + ".".repeat(bytes - head.length);
}

export interface ParsedText {
  runId: number;
  sender: number;
  counter: number;
  stamp: number;
}

export function parseText(text: string): ParsedText | undefined {
  const parts = text.split("|", 4);
  if (parts.length < 4) return undefined;
  return {
    runId: Number(parts[0]),
    sender: Number(parts[1]),
    counter: Number(parts[2]),
    stamp: Number(parts[3]),
  };
}
