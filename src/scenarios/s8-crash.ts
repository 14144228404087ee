/**
 * 8. Crash and restart: carol's node runs in a child process (on her SQLite store) and is killed with SIGKILL in
 * the middle of a conversation with alice and bob, then started again on the same data.
 *
 * The moment of the kill is made deterministic with faults rather than timing:
 *   phase 0, carol and her peers hear each other (peers send only to a peer they hear from);
 *   phase 1, carol's outgoing datagrams are all lost: she shows alice's and bob's messages but none of her ACKs
 *            gets out, and her own first messages never leave;
 *   phase 2, first her incoming datagrams are all lost, then her outgoing ones flow again (in two steps, so no
 *            ACK for an earlier datagram can slip out): her next messages reach alice and bob, who show them, but
 *            their ACKs never reach her; alice's and bob's next messages are lost on arrival.
 * At the SIGKILL every message either way is therefore in flight (unacknowledged), some already shown, some
 * never received. After the restart every one must be shown exactly once and acknowledged: nothing lost, nothing
 * twice. Each message shown before the crash comes back at least once and must be ignored as a duplicate.
 */
import { ChildNode } from "./child.ts";
import {
  allDelivered,
  checkDeliveries,
  giveUpsSince,
  missingDeliveries,
  unexpectedFailure,
} from "./deliveries.ts";
import { diffTotals } from "./totals.ts";
import type { Scenario } from "./types.ts";
import type { Sent } from "./udp-cluster.ts";

const VICTIM = "carol";
const PEERS = ["alice", "bob"];

export const crash: Scenario = {
  id: 8,
  title: "Crash and restart (SIGKILL)",
  proves:
    "a node killed with SIGKILL mid-conversation and restarted on its SQLite data loses nothing and shows nothing twice",
  nodes: [VICTIM, ...PEERS],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const log = cluster.log;
    const before = cluster.totalsOf(PEERS);
    const mark = log.mark();
    let child: ChildNode | undefined;
    const waitOpts = (sent: Sent[], timeoutMs = 8000) => ({
      timeoutMs,
      progress: () => missingDeliveries(log, sent),
      abort: () => unexpectedFailure(log, mark, nodes) ?? child?.deathReason(),
    });
    const shownAll = (sent: Sent[]) =>
      sent.every((s) => s.to.every((to) => log.shown(to, s.msgId, s.from) > 0));

    await cluster.stopNode(VICTIM);
    try {
      child = await ChildNode.start({ cluster, username: VICTIM });
      // Peers send only to a peer they hear from: first carol and they greet each other (her clean stop just
      // told them she left); then phase 1: carol receives but cannot answer.
      const greeted = () =>
        PEERS.every(
          (peer) =>
            log.since(mark, "peer-online", [peer]).some((e) => e.peer === VICTIM) &&
            log.since(mark, "peer-online", [VICTIM]).some((e) => e.peer === peer),
        );
      await cluster.waitFor("carol and her peers to hear each other", greeted, { timeoutMs: 8000 });
      await child.setFaults({ lossOutPpm: 1_000_000 });
      const toCarol1 = PEERS.flatMap((from) =>
        [1, 2, 3].map((i) => cluster.sendPrivate(from, VICTIM, `s8: ${from} to carol #${i}`)),
      );
      const fromCarol1 = [
        await child.send("alice", "s8: carol to alice #1 (before the crash)"),
        await child.send("bob", "s8: carol to bob #1 (before the crash)"),
      ];
      await cluster.waitFor(
        "carol's child process to show the messages sent to her",
        () => shownAll(toCarol1),
        waitOpts(toCarol1),
      );
      // Phase 2: nothing reaches carol any more; then her datagrams leave again.
      await child.setFaults({ lossInPpm: 1_000_000 });
      await child.setFaults({ lossOutPpm: 0 });
      const fromCarol2 = [
        await child.send("alice", "s8: carol to alice #2 (before the crash)"),
        await child.send("bob", "s8: carol to bob #2 (before the crash)"),
      ];
      const toCarol2 = PEERS.map((from) =>
        cluster.sendPrivate(from, VICTIM, `s8: ${from} to carol #4 (lost on arrival)`),
      );
      await cluster.waitFor(
        "alice and bob to show carol's latest messages",
        () => shownAll(fromCarol2),
        waitOpts(fromCarol2),
      );

      const toCarol = [...toCarol1, ...toCarol2];
      const fromCarol = [...fromCarol1, ...fromCarol2];
      const ackedCount = (sent: Sent[]) =>
        sent.reduce((n, s) => n + s.to.filter((to) => log.acked(s.from, s.msgId, to) > 0).length, 0);
      const shownByCarolBefore = toCarol.filter((s) => log.shown(VICTIM, s.msgId, s.from) > 0);
      const shownByPeersBefore = fromCarol.filter((s) =>
        s.to.every((to) => log.shown(to, s.msgId, VICTIM) > 0),
      );
      check.equal("messages to carol acknowledged before the crash", 0, ackedCount(toCarol));
      check.equal("carol's messages acknowledged before the crash", 0, ackedCount(fromCarol));

      // The crash.
      const statsBefore = await child.stats();
      await child.kill();
      note(
        `SIGKILL with ${toCarol.length} messages in flight to carol (${shownByCarolBefore.length} already shown) ` +
          `and ${fromCarol.length} from her (${shownByPeersBefore.length} already shown)`,
      );
      const restartMark = log.mark();
      child = await ChildNode.start({ cluster, username: VICTIM });
      const sent = [...toCarol, ...fromCarol];
      await cluster.waitFor(
        "every message to be shown and acknowledged after the restart",
        () => allDelivered(log, sent),
        waitOpts(sent, 10_000),
      );
      await cluster.settle(PEERS);

      const deliveries = checkDeliveries(check, log, sent, { mark, nodes });
      const delta = diffTotals(cluster.totalsOf(PEERS), before);
      const childDuplicates = log.since(restartMark, "duplicate", [VICTIM]).length;
      const childRejections = log.since(mark, "rejected", [VICTIM]);
      const duplicatesIgnored = delta.duplicates + childDuplicates;
      // Carol's restarted node sends again every message of hers not acknowledged, under a new sequence number:
      // each one alice or bob had already shown must come back and be recognised (by msgId) as a duplicate.
      // (Alice's and bob's retransmissions of what carol had shown may or may not reach her: one ACK after the
      // restart can cover them all, so no exact count is owed there.)
      const recognised = shownByPeersBefore.filter((s) =>
        s.to.every((to) =>
          log.since(restartMark, "duplicate", [to]).some((e) => e.msgId === s.msgId && e.from === VICTIM),
        ),
      ).length;
      check.equal(
        "carol's messages shown before the crash, re-sent and ignored as duplicates",
        shownByPeersBefore.length,
        recognised,
      );
      check.equal("rejections reported by carol's child process", 0, childRejections.length);
      check.equalCounts("rejections on alice and bob", {}, delta.rejected);
      const giveUps = giveUpsSince(log, mark, nodes);
      check.equal("give-ups", 0, giveUps);
      const statsAfter = await child.stats();
      const exit = await child.quit();
      child = undefined;
      check.equal("carol's child process exit code after /quit", 0, exit.code ?? -1);
      const rejections = { ...delta.rejected };
      for (const r of childRejections) rejections[r.reason] = (rejections[r.reason] ?? 0) + 1;
      return {
        sent: sent.length,
        ...deliveries,
        // Carol's retransmissions: her first life up to the kill, and her second life.
        retransmits: delta.retransmits + statsBefore.retransmits + statsAfter.retransmits,
        duplicatesIgnored,
        rejections,
        giveUps,
      };
    } finally {
      if (child) await child.kill();
      await cluster.startNode(VICTIM);
    }
  },
};
