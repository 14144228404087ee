/**
 * 2. Duplicate msg_id: every node sends half of its DATA datagrams twice (same msgId, same seq). Receivers must
 * show each message once and ignore every copy, and the copies ignored must equal the copies injected. There is
 * no loss, so the only other source of copies is a spurious retransmission (an ACK slower than the RTO on a busy
 * machine): those are counted by their senders and accounted for exactly, not tolerated by a looser check.
 */
import { checkDeliveries, giveUpsSince } from "./deliveries.ts";
import { diffTotals } from "./totals.ts";
import { outcome, sendThroughFaults } from "./traffic.ts";
import type { Scenario } from "./types.ts";

export const duplicates: Scenario = {
  id: 2,
  title: "Duplicate msg_id",
  proves:
    "injected duplicate datagrams are ignored: each message is shown once, and ignored copies = injected copies",
  nodes: ["zoe", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const log = cluster.log;
    const { before, mark, sent } = await sendThroughFaults(
      cluster,
      nodes,
      { duplicatePpm: 500_000 },
      () => [
        cluster.broadcast("zoe", "s2: zoe to everyone, maybe twice"),
        cluster.broadcast("frank", "s2: frank to everyone, maybe twice"),
        cluster.sendPrivate("grace", "heidi", "s2: grace to heidi, maybe twice"),
        cluster.sendPrivate("heidi", "grace", "s2: heidi to grace, maybe twice"),
        cluster.sendPrivate("ivan", "alice", "s2: ivan to alice, maybe twice"),
        cluster.sendPrivate("alice", "ivan", "s2: alice to ivan, maybe twice"),
      ],
      8000,
    );
    // Every extra copy sent (injected or retransmitted) reaches its receiver and is ignored there: wait for the
    // last copies still on their way, then compare exactly.
    const extraCopies = () => {
      const d = diffTotals(cluster.totalsOf(nodes), before);
      return { injected: d.faults.duplicated, retransmits: d.retransmits, ignored: d.duplicates };
    };
    await cluster.waitFor(
      "every injected copy to reach its receiver",
      () => {
        const c = extraCopies();
        return c.ignored >= c.injected + c.retransmits;
      },
      {
        timeoutMs: 5000,
        progress: () => {
          const c = extraCopies();
          return `ignored ${c.ignored}, injected ${c.injected} + retransmitted ${c.retransmits}`;
        },
      },
    );
    const delta = diffTotals(cluster.totalsOf(nodes), before);
    const deliveries = checkDeliveries(check, log, sent, { mark, nodes });
    const duplicateEvents = log.since(mark, "duplicate", nodes).length;
    check.atLeast("copies injected", 1, delta.faults.duplicated);
    check.equal(
      "copies ignored = copies injected + spurious retransmissions",
      delta.faults.duplicated + delta.retransmits,
      delta.duplicates,
    );
    check.equal("duplicate events reported = copies ignored", delta.duplicates, duplicateEvents);
    check.equal("datagrams lost", 0, delta.faults.droppedOut + delta.faults.droppedIn);
    check.equalCounts("rejections", {}, delta.rejected);
    const giveUps = giveUpsSince(log, mark, nodes);
    check.equal("give-ups", 0, giveUps);
    note(
      `${delta.faults.duplicated} copies injected, ${delta.duplicates} ignored` +
        (delta.retransmits > 0 ? ` (incl. ${delta.retransmits} from spurious retransmissions)` : ""),
    );
    return outcome(sent.length, deliveries, delta, giveUps);
  },
};
