/**
 * Delivery bookkeeping over the event log: which (message, recipient) pairs are shown and acknowledged, the
 * exactly-once checks, unexpected failures and give-ups.
 */
import type { Checker } from "./checks.ts";
import type { EventLog, EventOf } from "./event-log.ts";
import type { Sent } from "./udp-cluster.ts";

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
