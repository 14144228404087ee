/** The counters the scenarios compare, summed over nodes and over the lives of a node (restarts). */
import { type FaultCounters, newFaultCounters } from "../faults/plan.ts";
import type { NodeStats } from "../node/types.ts";

export interface Totals {
  retransmits: number;
  duplicates: number;
  messagesDelivered: number;
  messagesFailed: number;
  acksReceived: number;
  acksSent: number;
  framesSent: number;
  /** The engine's rejections, by reason. */
  rejected: Record<string, number>;
  /** Datagrams the session layer refused before the engine saw them, by reason (NodeStats.sessions.refused). */
  sessionRefused: Record<string, number>;
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
    sessionRefused: {},
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
  addCounts(into.rejected, s.rejected, sign);
  addCounts(into.sessionRefused, "sessions" in s ? s.sessions.refused : s.sessionRefused, sign);
  for (const key of Object.keys(into.faults) as (keyof FaultCounters)[])
    into.faults[key] += sign * s.faults[key];
}

/** Adds `sign` times each count of `from` into `into`, leaving out the reasons that come to 0. */
function addCounts(into: Record<string, number>, from: Partial<Record<string, number>>, sign: number): void {
  for (const [reason, n] of Object.entries(from)) {
    const next = (into[reason] ?? 0) + sign * (n ?? 0);
    if (next === 0) delete into[reason];
    else into[reason] = next;
  }
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
