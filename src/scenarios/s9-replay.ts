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
import type { Checker } from "./checks.ts";
import { checkDeliveries, giveUpsSince } from "./deliveries.ts";
import { diffTotals, type Totals } from "./totals.ts";
import { outcome, waitDelivered } from "./traffic.ts";
import type { Scenario, ScenarioOutcome } from "./types.ts";
import { HOST, type Sent, type UdpCluster } from "./udp-cluster.ts";

const A = "zoe";
const B = "frank";

/** What every step shares: where the scenario started counting. */
interface Run {
  readonly cluster: UdpCluster;
  readonly check: Checker;
  readonly nodes: readonly string[];
  readonly before: Totals;
  readonly mark: number;
}

/** Captured datagrams by packet type. */
interface Counts {
  data: number;
  ack: number;
  hello: number;
}

/** Where the replay started counting. */
interface ReplayStart {
  totals: Totals;
  admission: Admission;
  mark: number;
}

/** Datagrams from outside the cluster that admission control let through to the engines, and dropped. */
interface Admission {
  admitted: number;
  dropped: number;
}

/** What the replay changed in the counters: refusals by packet type, and the raw numbers they come from. */
interface Refusals {
  data: number;
  hello: number;
  ackAbsorbed: number;
  rejected: Record<string, number>;
  duplicates: number;
}

export const replay: Scenario = {
  id: 9,
  title: "Replay after restart",
  proves:
    "captured datagrams replayed after the nodes restart are all refused: 0 delivered, DATA counted as duplicates, HELLOs as replayed-hello",
  nodes: [A, B],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const ports = new Set(nodes.map((n) => cluster.user(n).port));
    const before = cluster.totalsOf(nodes);
    const run: Run = { cluster, check, nodes, before, mark: cluster.log.mark() };

    const { captured, conversation } = await captureConversation(run, ports);
    const counts = countByType(captured);
    checkCapture(run, captured, counts, conversation);
    await restartBoth(run);
    const start = await replayCaptured(run, captured, counts);
    const refused = checkReplayRefused(run, start, captured, counts);
    const after = await talkAfterReplay(run);
    return checkOutcome(run, [...conversation, ...after], captured, counts, refused, note);
  },
};

/**
 * 1. A short run, every datagram between the two captured. It starts with a restart of frank, so that the capture
 * holds HELLOs too.
 */
async function captureConversation(
  run: Run,
  ports: ReadonlySet<number>,
): Promise<{ captured: CapturedDatagram[]; conversation: Sent[] }> {
  const { cluster, nodes, mark } = run;
  const log = cluster.log;
  const captured: CapturedDatagram[] = [];
  const untap = tapUdp((d) => {
    if (d.fromPort !== d.toPort && ports.has(d.fromPort) && ports.has(d.toPort)) captured.push(d);
  });
  try {
    await cluster.restartNode(B);
    const lifeOfB = log.since(mark, "ready", [B]).at(-1)?.life;
    await cluster.waitFor(
      "frank to hear zoe again after his restart",
      () => log.since(mark, "peer-online", [B]).some((e) => e.peer === A && e.life === lifeOfB),
      { timeoutMs: 5000 },
    );
    const conversation = [
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
    return { captured, conversation };
  } finally {
    untap();
  }
}

function countByType(captured: readonly CapturedDatagram[]): Counts {
  const byType = (type: number) => captured.filter((d) => packetTypeOf(d.bytes) === type).length;
  return { data: byType(PacketType.Data), ack: byType(PacketType.Ack), hello: byType(PacketType.Hello) };
}

/** The replay proves something for each type only if the capture holds some of it. */
function checkCapture(
  run: Run,
  captured: readonly CapturedDatagram[],
  counts: Counts,
  conversation: Sent[],
): void {
  const { check } = run;
  check.equal(
    "datagrams captured (DATA + ACK + HELLO)",
    captured.length,
    counts.data + counts.ack + counts.hello,
  );
  check.atLeast("DATA datagrams captured", conversation.length, counts.data);
  check.atLeast("HELLO datagrams captured", 1, counts.hello);
}

/** 2. Both nodes restart on their data. */
async function restartBoth(run: Run): Promise<void> {
  const { cluster, nodes } = run;
  const log = cluster.log;
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
}

/**
 * Datagrams from an address that is no peer's pass the node's admission control (a rate limit) before the
 * engine sees them: counted there too, so that one dropped unexamined could not pass for one refused.
 */
function admissionTotals(run: Run): Admission {
  return run.nodes
    .map((n) => run.cluster.node(n).admission.stats())
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
}

function refusalsSince(run: Run, start: ReplayStart): Refusals {
  const d = diffTotals(run.cluster.totalsOf(run.nodes), start.totals);
  return {
    data: d.duplicates + (d.rejected["stale-epoch"] ?? 0),
    hello: d.rejected["replayed-hello"] ?? 0,
    ackAbsorbed: d.acksReceived - d.acksSent,
    rejected: d.rejected,
    duplicates: d.duplicates,
  };
}

/** 3. The replay, from another socket; returns once every datagram of it has been refused. */
async function replayCaptured(
  run: Run,
  captured: readonly CapturedDatagram[],
  n: Counts,
): Promise<ReplayStart> {
  const { cluster, nodes } = run;
  const totals = cluster.totalsOf(nodes);
  const start: ReplayStart = { totals, admission: admissionTotals(run), mark: cluster.log.mark() };
  await sendRaw(
    HOST,
    captured.map((d) => ({ port: d.toPort, bytes: d.bytes })),
  );
  await cluster.waitFor(
    "every replayed datagram to be refused",
    () => {
      const r = refusalsSince(run, start);
      return r.data >= n.data && r.hello >= n.hello && r.ackAbsorbed >= n.ack;
    },
    {
      timeoutMs: 5000,
      progress: () => {
        const r = refusalsSince(run, start);
        return `DATA refused ${r.data}/${n.data}, HELLO refused ${r.hello}/${n.hello}, ACK absorbed ${r.ackAbsorbed}/${n.ack}`;
      },
    },
  );
  await cluster.settle(nodes);
  return start;
}

/** Nothing shown or reported, each datagram refused by its type, and none of it dropped unexamined. */
function checkReplayRefused(
  run: Run,
  start: ReplayStart,
  captured: readonly CapturedDatagram[],
  n: Counts,
): Refusals {
  const { cluster, check, nodes } = run;
  const log = cluster.log;
  const r = refusalsSince(run, start);
  check.equal("replayed messages shown", 0, log.since(start.mark, "message", nodes).length);
  check.equal(
    "delivery or failure reports caused by the replay",
    0,
    log.since(start.mark, "delivered", nodes).length + log.since(start.mark, "failed", nodes).length,
  );
  check.equal("replayed DATA counted as duplicates", n.data, r.duplicates);
  check.equalCounts("rejections of the replay", { "replayed-hello": n.hello }, r.rejected);
  check.equal("replayed ACKs absorbed (acknowledging nothing)", n.ack, r.ackAbsorbed);
  const admissionAfter = admissionTotals(run);
  check.equal(
    "replayed datagrams handed to the engines",
    captured.length,
    admissionAfter.admitted - start.admission.admitted,
  );
  check.equal(
    "replayed datagrams dropped by admission control",
    0,
    admissionAfter.dropped - start.admission.dropped,
  );
  return r;
}

/** 4. The two still talk normally: the replays, from another address, redirected nothing. */
async function talkAfterReplay(run: Run): Promise<Sent[]> {
  const { cluster, nodes, mark } = run;
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
  return after;
}

function checkOutcome(
  run: Run,
  sent: Sent[],
  captured: readonly CapturedDatagram[],
  n: Counts,
  r: Refusals,
  note: (text: string) => void,
): ScenarioOutcome {
  const { cluster, check, nodes, mark } = run;
  const log = cluster.log;
  const deliveries = checkDeliveries(check, log, sent, { mark, nodes });
  const delta = diffTotals(cluster.totalsOf(nodes), run.before);
  const giveUps = giveUpsSince(log, mark, nodes);
  check.equal("give-ups", 0, giveUps);
  note(
    `${captured.length} datagrams replayed after the restart (${n.data} DATA, ${n.hello} HELLO, ${n.ack} ACK): ` +
      `0 delivered; ${r.duplicates} duplicates, ${r.hello} replayed-hello, ${r.ackAbsorbed} ACKs absorbed`,
  );
  return outcome(sent.length, deliveries, delta, giveUps);
}
