/**
 * 1. High packet loss: every node drops 40% of the datagrams it sends, so each direction of every link loses 40%
 * (DATA and ACK alike: a try succeeds with probability 0.6 × 0.6 = 0.36). Two broadcasts and four private
 * messages must all be shown exactly once, acknowledged exactly once, with retransmissions doing the work.
 */
import { checkDeliveries, giveUpsSince } from "./deliveries.ts";
import { diffTotals } from "./totals.ts";
import { outcome, sendThroughFaults } from "./traffic.ts";
import type { Scenario } from "./types.ts";

const LOSS_PPM = 400_000;

export const highLoss: Scenario = {
  id: 1,
  title: "High packet loss (40% both ways)",
  proves:
    "with 40% of datagrams lost in each direction, every broadcast and private message arrives exactly once, thanks to retransmission",
  nodes: ["zoe", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const log = cluster.log;
    const { before, mark, sent } = await sendThroughFaults(
      cluster,
      nodes,
      { lossOutPpm: LOSS_PPM },
      () => [
        cluster.broadcast("alice", "s1: alice to everyone through the loss"),
        cluster.broadcast("bob", "s1: bob to everyone through the loss"),
        cluster.sendPrivate("carol", "dave", "s1: carol to dave, privately"),
        cluster.sendPrivate("dave", "carol", "s1: dave to carol, privately"),
        cluster.sendPrivate("erin", "zoe", "s1: erin to zoe, privately"),
        cluster.sendPrivate("zoe", "erin", "s1: zoe to erin, privately"),
      ],
      12_000,
    );
    const delta = diffTotals(cluster.totalsOf(nodes), before);
    const deliveries = checkDeliveries(check, log, sent, { mark, nodes });
    const giveUps = giveUpsSince(log, mark, nodes);
    check.equal("give-ups", 0, giveUps);
    check.equalCounts("rejections", {}, delta.rejected);
    check.atLeast("datagrams dropped by the injected loss", 1, delta.faults.droppedOut);
    check.atLeast("retransmissions", 1, delta.retransmits);
    // No duplicates were injected: every copy a receiver ignored is a retransmission whose first copy (or whose
    // ACK) had got through.
    check.atMost("duplicates ignored (each one a retransmission)", delta.retransmits, delta.duplicates);
    note(`${delta.faults.droppedOut} datagrams dropped; ${delta.retransmits} retransmissions recovered them`);
    return outcome(sent.length, deliveries, delta, giveUps);
  },
};
