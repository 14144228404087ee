/**
 * 9. Replay: every datagram zoe and frank exchange during a short run is captured (the run includes a restart of
 * frank, so it holds HELLOs as well as DATA and ACKs). Both nodes are then restarted on their SQLite data, and
 * every captured datagram is sent to them again, from an attacker's socket. None may be delivered: each replayed
 * DATA is a duplicate (its sequence number was already received and persisted), each replayed HELLO is rejected
 * as replayed-hello (its timestamp is not newer than the last one persisted). A replayed ACK acknowledges nothing
 * new: the engine counts it as an ACK received and changes nothing; it is accounted exactly (ACKs received =
 * ACKs replayed + ACKs the nodes sent each other) since no counter names it a replay. Afterwards the two still
 * talk normally (the replays, from another address, did not redirect anything).
 */
import { PacketType, packetTypeOf } from "../engine/wire.ts";
import { type CapturedDatagram, sendRaw, tapUdp } from "./capture.ts";
import { checkDeliveries, giveUpsSince } from "./deliveries.ts";
import { diffTotals } from "./totals.ts";
import { outcome, waitDelivered } from "./traffic.ts";
import type { Scenario } from "./types.ts";
import { HOST, type Sent } from "./udp-cluster.ts";

const A = "zoe";
const B = "frank";

export const replay: Scenario = {
  id: 9,
  title: "Replay after restart",
  proves:
    "captured datagrams replayed after the nodes restart are all refused: 0 delivered, DATA counted as duplicates, HELLOs as replayed-hello",
  nodes: [A, B],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const log = cluster.log;
    const ports = new Set(nodes.map((n) => cluster.user(n).port));
    const before = cluster.totalsOf(nodes);
    const mark = log.mark();

    // 1. A short run, captured.
    const captured: CapturedDatagram[] = [];
    const untap = tapUdp((d) => {
      if (d.fromPort !== d.toPort && ports.has(d.fromPort) && ports.has(d.toPort)) captured.push(d);
    });
    let conversation: Sent[];
    try {
      await cluster.restartNode(B);
      const lifeOfB = log.since(mark, "ready", [B]).at(-1)?.life;
      await cluster.waitFor(
        "frank to hear zoe again after his restart",
        () => log.since(mark, "peer-online", [B]).some((e) => e.peer === A && e.life === lifeOfB),
        { timeoutMs: 5000 },
      );
      conversation = [
        cluster.sendPrivate(A, B, "s9: zoe to frank #1"),
        cluster.sendPrivate(B, A, "s9: frank to zoe #1"),
        cluster.sendPrivate(A, B, "s9: zoe to frank #2"),
        cluster.sendPrivate(B, A, "s9: frank to zoe #2"),
      ];
      await waitDelivered(cluster, "the captured conversation", conversation, {
        timeoutMs: 5000,
        mark,
        nodes,
      });
      await cluster.settle(nodes);
    } finally {
      untap();
    }
    const byType = (type: number) => captured.filter((d) => packetTypeOf(d.bytes) === type).length;
    const nData = byType(PacketType.Data);
    const nAck = byType(PacketType.Ack);
    const nHello = byType(PacketType.Hello);
    check.equal("datagrams captured (DATA + ACK + HELLO)", captured.length, nData + nAck + nHello);
    check.atLeast("DATA datagrams captured", conversation.length, nData);
    check.atLeast("HELLO datagrams captured", 1, nHello);

    // 2. Both nodes restart on their data.
    const restartMark = log.mark();
    await Promise.all(nodes.map((n) => cluster.stopNode(n)));
    await Promise.all(nodes.map((n) => cluster.startNode(n)));
    await cluster.waitFor(
      "zoe and frank to hear each other after restarting",
      () =>
        log.since(restartMark, "peer-online", [A]).some((e) => e.peer === B) &&
        log.since(restartMark, "peer-online", [B]).some((e) => e.peer === A),
      { timeoutMs: 5000 },
    );
    await cluster.settle(nodes);

    // 3. The replay, from another socket.
    const replayBefore = cluster.totalsOf(nodes);
    // Datagrams from an address that is no peer's pass the node's admission control (a rate limit) before the
    // engine sees them: count them there too, so that one dropped unexamined could not pass for one refused.
    const admission = () =>
      nodes
        .map((n) => cluster.node(n).admission.stats())
        .reduce(
          (a, s) => ({
            admitted: a.admitted + s.admitted,
            dropped: a.dropped + s.droppedSource + s.droppedGlobal,
          }),
          {
            admitted: 0,
            dropped: 0,
          },
        );
    const admissionBefore = admission();
    const replayMark = log.mark();
    await sendRaw(
      HOST,
      captured.map((d) => ({ port: d.toPort, bytes: d.bytes })),
    );
    const replayDelta = () => {
      const d = diffTotals(cluster.totalsOf(nodes), replayBefore);
      return {
        data: d.duplicates + (d.rejected["stale-epoch"] ?? 0),
        hello: d.rejected["replayed-hello"] ?? 0,
        ackAbsorbed: d.acksReceived - d.acksSent,
        rejected: d.rejected,
        duplicates: d.duplicates,
      };
    };
    await cluster.waitFor(
      "every replayed datagram to be refused",
      () => {
        const r = replayDelta();
        return r.data >= nData && r.hello >= nHello && r.ackAbsorbed >= nAck;
      },
      {
        timeoutMs: 5000,
        progress: () => {
          const r = replayDelta();
          return `DATA refused ${r.data}/${nData}, HELLO refused ${r.hello}/${nHello}, ACK absorbed ${r.ackAbsorbed}/${nAck}`;
        },
      },
    );
    await cluster.settle(nodes);
    const r = replayDelta();
    check.equal("replayed messages shown", 0, log.since(replayMark, "message", nodes).length);
    check.equal(
      "delivery or failure reports caused by the replay",
      0,
      log.since(replayMark, "delivered", nodes).length + log.since(replayMark, "failed", nodes).length,
    );
    check.equal("replayed DATA counted as duplicates", nData, r.duplicates);
    check.equalCounts("rejections of the replay", { "replayed-hello": nHello }, r.rejected);
    check.equal("replayed ACKs absorbed (acknowledging nothing)", nAck, r.ackAbsorbed);
    const admissionAfter = admission();
    check.equal(
      "replayed datagrams handed to the engines",
      captured.length,
      admissionAfter.admitted - admissionBefore.admitted,
    );
    check.equal(
      "replayed datagrams dropped by admission control",
      0,
      admissionAfter.dropped - admissionBefore.dropped,
    );

    // 4. The two still talk normally.
    const after = [
      cluster.sendPrivate(A, B, "s9: zoe to frank, after the replay"),
      cluster.sendPrivate(B, A, "s9: frank to zoe, after the replay"),
    ];
    await waitDelivered(cluster, "zoe and frank to talk after the replay", after, {
      timeoutMs: 5000,
      mark,
      nodes,
    });
    await cluster.settle(nodes);
    const sent = [...conversation, ...after];
    const deliveries = checkDeliveries(check, log, sent, { mark, nodes });
    const delta = diffTotals(cluster.totalsOf(nodes), before);
    const giveUps = giveUpsSince(log, mark, nodes);
    check.equal("give-ups", 0, giveUps);
    note(
      `${captured.length} datagrams replayed after the restart (${nData} DATA, ${nHello} HELLO, ${nAck} ACK): ` +
        `0 delivered; ${r.duplicates} duplicates, ${r.hello} replayed-hello, ${r.ackAbsorbed} ACKs absorbed`,
    );
    return outcome(sent.length, deliveries, delta, giveUps);
  },
};
