/**
 * The traffic pattern the scenarios share: send a list of messages (under faults or not), wait until every
 * (message, recipient) pair is shown and acknowledged, and report the numbers for the summary table.
 */
import type { FaultConfig } from "../faults/plan.ts";
import { allDelivered, missingDeliveries, unexpectedFailure } from "./deliveries.ts";
import type { EventLog, NodeEvent } from "./event-log.ts";
import type { Totals } from "./totals.ts";
import type { ScenarioOutcome } from "./types.ts";
import type { Sent, UdpCluster } from "./udp-cluster.ts";

type FailedEvent = Extract<NodeEvent, { type: "failed" }>;

export interface DeliveryWait {
  timeoutMs: number;
  /** Where to look for failures from. */
  mark: number;
  /** The nodes whose failures stop the wait. */
  nodes: readonly string[];
  /** The failures the scenario expects (they do not stop the wait). */
  expected?: (e: FailedEvent) => boolean;
}

/**
 * Waits until every message of `sent` is shown by each recipient and acknowledged to its sender: a timeout names
 * the deliveries still missing; a failure on `nodes` since `mark` that is not `expected` stops the wait at once.
 */
export function waitDelivered(
  cluster: UdpCluster,
  what: string,
  sent: readonly Sent[],
  options: DeliveryWait,
): Promise<void> {
  const log: EventLog = cluster.log;
  return cluster.waitFor(what, () => allDelivered(log, sent), {
    timeoutMs: options.timeoutMs,
    progress: () => missingDeliveries(log, sent),
    abort: () => unexpectedFailure(log, options.mark, options.nodes, options.expected),
  });
}

/** What `sendThroughFaults` sent, and where it started counting. */
export interface Traffic {
  /** The totals of the nodes before anything was sent. */
  before: Totals;
  /** The event-log position before anything was sent. */
  mark: number;
  sent: Sent[];
}

/**
 * Takes the totals and a mark, sets `faults` on every node of `nodes`, sends what `send` sends, waits up to
 * `timeoutMs` for every message to be shown and acknowledged (any failure on `nodes` stops the wait), then clears
 * the faults and waits until the nodes have nothing in flight.
 */
export async function sendThroughFaults(
  cluster: UdpCluster,
  nodes: readonly string[],
  faults: Partial<FaultConfig>,
  send: () => Sent[],
  timeoutMs: number,
): Promise<Traffic> {
  const before = cluster.totalsOf(nodes);
  const mark = cluster.log.mark();
  cluster.setFaults(nodes, faults);
  const sent = send();
  await waitDelivered(cluster, "every message to be shown and acknowledged", sent, {
    timeoutMs,
    mark,
    nodes,
  });
  cluster.clearFaults(nodes);
  await cluster.settle(nodes);
  return { before, mark, sent };
}

/** The summary-table numbers: counters from `delta`, deliveries from checkDeliveries. */
export function outcome(
  sent: number,
  deliveries: { expected: number; delivered: number },
  delta: Totals,
  giveUps: number,
): ScenarioOutcome {
  return {
    sent,
    ...deliveries,
    retransmits: delta.retransmits,
    duplicatesIgnored: delta.duplicates,
    rejections: delta.rejected,
    giveUps,
  };
}
