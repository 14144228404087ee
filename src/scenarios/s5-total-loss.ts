/**
 * 5. Total loss: dave's link drops everything, both ways. His private message to erin is retransmitted until
 * the engine gives up (after `triesMax` transmissions, or `giveUpMs`), which must happen within
 * giveUpBoundMs() of the config in use (the default config: no faster settings), and be reported as a `waiting`
 * event (cause "no-answer"): nothing more is sent but probes. Afterwards, with the link back, /retry probes erin
 * at once and the message arrives, once: a give-up loses nothing.
 *
 * Timing. The engine schedules each retransmission from the moment the previous one actually went out, so on a
 * loaded machine every late timer pushes the give-up later, and 30 of them add up (the bound is about the
 * schedule, which cannot see that). A probe chain of timers in the same event loop measures that lateness while
 * the scenario runs; the check is: wall-clock time to the give-up, less 30 times the probe's mean lateness, is at
 * most giveUpBoundMs. Both raw and corrected times are printed. And the give-up may not come earlier than the
 * shortest possible schedule (every wait at its minimum): retrying less would fail that check.
 */
import { DEFAULT_CONFIG, type EngineConfig, giveUpBoundMs } from "../engine/config.ts";
import { giveUpsSince, unexpectedFailure } from "./deliveries.ts";
import { startTimerProbe } from "./timer-probe.ts";
import { diffTotals } from "./totals.ts";
import type { Scenario } from "./types.ts";

const SENDER = "dave";
const RECEIVER = "erin";

export const totalLoss: Scenario = {
  id: 5,
  title: "Total loss",
  proves:
    "with every datagram lost, the sender gives up after its bounded retries, within giveUpBoundMs, says the message waits, and delivers it once the link is back",
  nodes: [SENDER, RECEIVER],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const log = cluster.log;
    // The nodes run the default engine config; the bound is computed from it, not assumed.
    const config = DEFAULT_CONFIG;
    const boundMs = giveUpBoundMs(config);
    const before = cluster.totalsOf(nodes);
    const mark = log.mark();

    cluster.setFaults([SENDER], { lossOutPpm: 1_000_000, lossInPpm: 1_000_000 });
    const probe = startTimerProbe(config.rtoMsMax);
    const message = cluster.sendPrivate(SENDER, RECEIVER, "s5: dave to erin, into the void");
    const failures = () => log.since(mark, "waiting", [SENDER]).filter((e) => e.msgId === message.msgId);
    let lateness: ReturnType<typeof probe.stop>;
    try {
      await cluster.waitFor(`${SENDER} to give up (bound ${boundMs} ms)`, () => failures().length > 0, {
        // Only against a hang: the bound itself is checked below.
        timeoutMs: 2 * boundMs,
        abort: () => unexpectedFailure(log, mark, nodes, (e) => e.msgId === message.msgId),
      });
    } finally {
      lateness = probe.stop();
    }
    const failure = failures()[0];
    const elapsed = failure ? failure.at - message.at : Number.NaN;
    const late = lateness.meanLateMs * config.triesMax;
    const atFailure = diffTotals(cluster.totalsOf(nodes), before);
    check.equal("waiting cause", "no-answer", failure?.cause ?? "none");
    check.equal("waiting reason", `no answer after ${config.triesMax} tries`, failure?.reason ?? "none");
    // Every try after the first is a retransmission; from the third on, each is two copies (PROTOCOL.md §9.7).
    const copies = Math.max(0, config.triesMax - config.singleCopyTries);
    check.equal("retransmissions before giving up", config.triesMax - 1 + copies, atFailure.retransmits);
    check.atLeast(
      "ms from send to give-up (shortest possible schedule)",
      shortestScheduleMs(config),
      Math.round(elapsed),
    );
    check.atMost(
      "ms from send to give-up, less timer lateness (giveUpBoundMs)",
      boundMs,
      Math.round(elapsed - late),
    );
    check.atLeast("datagrams dropped on the way out", config.triesMax, atFailure.faults.droppedOut);
    check.equal("messages shown to erin during the loss", 0, log.shown(RECEIVER, message.msgId, SENDER));
    check.equal("give-ups", 1, giveUpsSince(log, mark, nodes));
    note(
      `gave up after ${config.triesMax} tries in ${(elapsed / 1000).toFixed(2)} s; timers ran ` +
        `${(late / 1000).toFixed(2)} s late in all (probe: mean ${lateness.meanLateMs.toFixed(1)} ms, ` +
        `max ${Math.round(lateness.maxLateMs)} ms); ${((elapsed - late) / 1000).toFixed(2)} s ` +
        `<= giveUpBoundMs ${(boundMs / 1000).toFixed(2)} s (default config)`,
    );

    // The link comes back; the user retries; the message arrives once.
    cluster.clearFaults([SENDER]);
    const retryMark = log.mark();
    cluster.node(SENDER).retryWaiting(RECEIVER);
    await cluster.waitFor(
      "the retried message to arrive",
      () => log.shown(RECEIVER, message.msgId, SENDER) > 0 && log.acked(SENDER, message.msgId, RECEIVER) > 0,
      { timeoutMs: 5000, abort: () => unexpectedFailure(log, retryMark, nodes) },
    );
    await cluster.settle(nodes);
    const delta = diffTotals(cluster.totalsOf(nodes), before);
    check.equal("shown after the retry (exactly once)", 1, log.shown(RECEIVER, message.msgId, SENDER));
    check.equal("delivery reports after the retry", 1, log.acked(SENDER, message.msgId, RECEIVER));
    check.equalCounts("rejections", {}, delta.rejected);
    const giveUps = giveUpsSince(log, mark, nodes);
    check.equal("give-ups in all", 1, giveUps);
    return {
      sent: 1,
      expected: 1,
      delivered: log.shown(RECEIVER, message.msgId, SENDER),
      retransmits: delta.retransmits,
      duplicatesIgnored: delta.duplicates,
      rejections: delta.rejected,
      giveUps,
    };
  },
};

/** Every wait at its minimum: the RTO at rtoMsMin, doubled per try up to rtoMsMax, no jitter. */
export function shortestScheduleMs(c: EngineConfig): number {
  let total = 0;
  for (let tries = 1; tries <= c.triesMax; tries++)
    total += Math.min(c.rtoMsMax, c.rtoMsMin * 2 ** Math.min(tries - 1, 16));
  return Math.min(total, c.giveUpMs);
}
