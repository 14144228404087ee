/**
 * The shapes shared by the scenario runner, the scenarios and the report: what a scenario is, what it measured,
 * and what the whole run produced (the same object `--json` prints).
 */
import type { Checker, CheckRecord } from "./checks.ts";
import type { UdpCluster } from "./udp-cluster.ts";

/** One numbered fault scenario. `nodes` are the users it touches: scenarios run together only if disjoint. */
export interface Scenario {
  readonly id: number;
  readonly title: string;
  /** What the scenario proves, one line (docs and --help). */
  readonly proves: string;
  readonly nodes: readonly string[];
  run(ctx: ScenarioContext): Promise<ScenarioOutcome>;
}

export interface ScenarioContext {
  readonly cluster: UdpCluster;
  readonly check: Checker;
  /** A line shown under the scenario's progress line and kept in the JSON (the give-up bound used, say). */
  note(text: string): void;
}

/** The numbers a scenario reports for the summary table. */
export interface ScenarioOutcome {
  /** Messages handed to the engine (one per send, a broadcast counts once). */
  sent: number;
  /** (message, recipient) deliveries the scenario expects to be shown, and how many were shown. */
  expected: number;
  delivered: number;
  retransmits: number;
  duplicatesIgnored: number;
  rejections: Record<string, number>;
  giveUps: number;
}

export interface ScenarioResult extends ScenarioOutcome {
  id: number;
  title: string;
  ok: boolean;
  timeMs: number;
  /** Why it failed: the first mismatch or the error (a timed-out wait names what it waited for). */
  error: string | null;
  checks: CheckRecord[];
  notes: string[];
}

export interface RunReport {
  ok: boolean;
  totalMs: number;
  host: string;
  ports: number[];
  dataDir: string;
  dataDirKept: boolean;
  scenarios: ScenarioResult[];
}
