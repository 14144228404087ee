/**
 * 7. Partition then heal: heidi and ivan are cut off (blackhole: nothing in, nothing out). grace writes to each
 * of them; her node retries, gives up, says the messages wait, and parks them. Still cut off, heidi and ivan
 * each write to grace. Then the partition heals: their retransmissions reach grace, grace hears from them again,
 * and her parked messages go out (offline delivery). Every message sent during the partition must be shown
 * exactly once after the heal, and grace's two give-ups must turn into deliveries.
 */
import { DEFAULT_CONFIG, giveUpBoundMs } from "../engine/config.ts";
import { checkDeliveries, giveUpsSince, unexpectedFailure } from "./deliveries.ts";
import { diffTotals } from "./totals.ts";
import { outcome, waitDelivered } from "./traffic.ts";
import type { Scenario } from "./types.ts";
import type { Sent } from "./udp-cluster.ts";

const MAJORITY = "grace";
const CUT_OFF = ["heidi", "ivan"];

export const partition: Scenario = {
  id: 7,
  title: "Partition then heal",
  proves:
    "messages sent during a partition (even ones given up) are delivered exactly once after it heals: offline delivery",
  nodes: [MAJORITY, ...CUT_OFF],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const log = cluster.log;
    const before = cluster.totalsOf(nodes);
    const mark = log.mark();

    cluster.setFaults(CUT_OFF, { blackhole: true });
    const fromGrace = CUT_OFF.map((to) =>
      cluster.sendPrivate(MAJORITY, to, `s7: grace to ${to}, during the partition`),
    );
    const boundMs = giveUpBoundMs(DEFAULT_CONFIG);
    const gaveUp = () => fromGrace.every((s) => log.waited(MAJORITY, s.msgId, s.to[0] as string) > 0);
    await cluster.waitFor("grace to give up on the cut-off nodes", gaveUp, {
      timeoutMs: 2 * boundMs,
      abort: () => unexpectedFailure(log, mark, nodes),
    });
    check.equal("grace's give-ups during the partition", 2, giveUpsSince(log, mark, [MAJORITY]));
    check.equal("messages shown across the partition", 0, log.since(mark, "message", nodes).length);

    const fromCutOff: Sent[] = CUT_OFF.map((from) =>
      cluster.sendPrivate(from, MAJORITY, `s7: ${from} to grace, during the partition`),
    );
    const healMark = log.mark();
    cluster.setFaults(CUT_OFF, { blackhole: false });
    const sent = [...fromGrace, ...fromCutOff];
    await waitDelivered(cluster, "everything sent during the partition to arrive after the heal", sent, {
      timeoutMs: 5000,
      mark: healMark,
      nodes,
    });
    await cluster.settle(nodes);

    const delta = diffTotals(cluster.totalsOf(nodes), before);
    const deliveries = checkDeliveries(check, log, sent, { mark, nodes });
    const afterFailure = fromGrace.filter((s) => {
      const to = s.to[0] as string;
      const failedAt =
        log.since(mark, "waiting", [MAJORITY]).find((e) => e.msgId === s.msgId)?.at ?? Infinity;
      const deliveredAt = log
        .since(mark, "delivered", [MAJORITY])
        .find((e) => e.msgId === s.msgId && e.to === to)?.at;
      return deliveredAt !== undefined && deliveredAt > failedAt;
    }).length;
    check.equal(
      "given-up messages delivered after the heal (offline delivery)",
      fromGrace.length,
      afterFailure,
    );
    check.atLeast("datagrams dropped by the partition", 1, delta.faults.blackholed);
    check.equalCounts("rejections", {}, delta.rejected);
    const giveUps = giveUpsSince(log, mark, nodes);
    check.equal("give-ups", fromGrace.length, giveUps);
    note(
      `grace gave up on ${giveUps} messages, parked them, and delivered them after the heal; ` +
        `${delta.faults.blackholed} datagrams blackholed`,
    );
    return outcome(sent.length, deliveries, delta, giveUps);
  },
};
