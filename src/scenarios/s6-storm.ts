/**
 * 6. Reordering and duplication storm: every node holds each datagram it sends for 5 ms plus a random 0-40 ms
 * (so datagrams overtake each other) and sends 30% of its DATA twice. Four senders send bursts (broadcasts, and
 * broadcasts interleaved with private messages, which share the per-peer stream). Every message must be shown
 * exactly once, each receiver must show each sender's messages in the order they were sent, and, with no loss,
 * every extra copy (injected or retransmitted) must be ignored: copies ignored = injected + retransmitted.
 */
import { checkDeliveries, giveUpsSince } from "./deliveries.ts";
import { diffTotals } from "./totals.ts";
import { outcome, sendThroughFaults } from "./traffic.ts";
import type { Scenario } from "./types.ts";
import type { Sent } from "./udp-cluster.ts";

const STORM = { delayMs: 5, jitterMs: 40, duplicatePpm: 300_000 };
const BURST = 5;

export const storm: Scenario = {
  id: 6,
  title: "Reordering and duplication storm",
  proves:
    "with datagrams delayed, reordered and duplicated, every message is shown exactly once and in its sender's order",
  nodes: ["zoe", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const log = cluster.log;
    const burst = () => {
      const sent: Sent[] = [];
      for (let i = 1; i <= BURST; i++) {
        for (const sender of ["alice", "bob", "carol"])
          sent.push(cluster.broadcast(sender, `s6: ${sender} #${i}`));
        sent.push(cluster.broadcast("dave", `s6: dave #${i} to everyone`));
        sent.push(cluster.sendPrivate("dave", "erin", `s6: dave #${i} to erin`));
      }
      return sent;
    };
    const { before, mark, sent } = await sendThroughFaults(cluster, nodes, STORM, burst, 10_000);
    const copies = () => {
      const d = diffTotals(cluster.totalsOf(nodes), before);
      return { extra: d.faults.duplicated + d.retransmits, ignored: d.duplicates };
    };
    // Delayed copies may still be on their way: wait until each one has arrived and been ignored.
    await cluster.waitFor("every delayed copy to arrive", () => copies().ignored >= copies().extra, {
      timeoutMs: 5000,
      progress: () => `ignored ${copies().ignored} of ${copies().extra} extra copies`,
    });

    const delta = diffTotals(cluster.totalsOf(nodes), before);
    const deliveries = checkDeliveries(check, log, sent, { mark, nodes });
    // Per-sender order: each receiver shows a sender's messages in the order that sender sent them.
    const outOfOrder: string[] = [];
    const senders = [...new Set(sent.map((s) => s.from))];
    for (const receiver of nodes) {
      for (const sender of senders) {
        const expected = sent.filter((s) => s.from === sender && s.to.includes(receiver)).map((s) => s.msgId);
        const ids = new Set(expected);
        const shown = log
          .since(mark, "message", [receiver])
          .filter((e) => e.from === sender && ids.has(e.msgId))
          .map((e) => e.msgId);
        if (shown.join() !== expected.join()) outOfOrder.push(`${receiver} from ${sender}`);
      }
    }
    check.equal("receivers that showed a sender's messages out of order", 0, outOfOrder.length);
    if (outOfOrder.length > 0) check.that("out of order", false, outOfOrder.slice(0, 4).join(", "), "none");
    check.atLeast("datagrams delayed", 1, delta.faults.delayed);
    check.atLeast("copies injected", 1, delta.faults.duplicated);
    check.equal(
      "copies ignored = copies injected + retransmissions",
      delta.faults.duplicated + delta.retransmits,
      delta.duplicates,
    );
    check.equalCounts("rejections", {}, delta.rejected);
    const giveUps = giveUpsSince(log, mark, nodes);
    check.equal("give-ups", 0, giveUps);
    note(
      `${delta.faults.delayed} datagrams delayed ${STORM.delayMs}-${STORM.delayMs + STORM.jitterMs} ms, ` +
        `${delta.faults.duplicated} copies injected, ${delta.retransmits} retransmissions, ${delta.duplicates} copies ignored`,
    );
    return outcome(sent.length, deliveries, delta, giveUps);
  },
};
