/**
 * 9. Replay after restart: every datagram zoe and frank exchange during a short run is captured on the wire, as
 * an eavesdropper sees it: sealed session datagrams (src/session/wire.ts), told apart only by their session type.
 * The run includes a restart of frank, so it holds a handshake (initiations and responses) as well as transport
 * datagrams (which carry the engine's DATA, ACKs and HELLOs). Both nodes are then restarted on their SQLite data,
 * and every captured datagram is sent to them again, from an attacker's socket. None may reach an engine:
 *
 * - a replayed transport or response names a session index of the nodes' previous lives, which no longer exists
 *   (`unknown-index`; indices are random per handshake);
 * - a replayed initiation is no newer than the newest the node accepted from that peer, which its store keeps
 *   across the restart (`replayed-initiation`): none is answered.
 *
 * Nothing is shown, delivered or reported; the engines see nothing (no duplicate, no rejection); nothing goes to
 * the attacker. Afterwards the two still talk normally: the replays, from another
 * address, redirected nothing.
 */
import { AttackerSocket, type CapturedDatagram, type SessionKind, sessionKindOf, tapUdp } from "./capture.ts";
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

/** Captured datagrams by session type (`other`: no session datagram), and the initiations by sender. */
type Counts = Record<SessionKind | "other", number> & { initiationsFrom: Record<string, number> };

/** Where the replay started counting. */
interface ReplayStart {
  totals: Totals;
  admission: Admission;
  established: number;
  mark: number;
}

/** Datagrams from outside the cluster that admission control let through to the session layer, and dropped. */
interface Admission {
  admitted: number;
  dropped: number;
}

/** What the replay changed: the session layer's refusals, and what the nodes sent the attacker. */
interface Refusals {
  unknownIndex: number;
  replayedInitiation: number;
  sessionRefused: Record<string, number>;
  /** Replayed initiations a node answered (with a handshake response, to the attacker), by the answering node. */
  answered: number;
  answeredBy: Record<string, number>;
  /** Anything else the nodes sent the attacker. */
  otherToAttacker: number;
  /** All the replay accounts for so far. */
  total: number;
}

export const replay: Scenario = {
  id: 9,
  title: "Replay after restart",
  proves:
    "captured (sealed) datagrams replayed after the nodes restart all stop at the session layer: 0 delivered, unknown-index, replayed-initiation",
  nodes: [A, B],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const ports = new Set(nodes.map((n) => cluster.user(n).port));
    const before = cluster.totalsOf(nodes);
    const run: Run = { cluster, check, nodes, before, mark: cluster.log.mark() };

    const { captured, conversation } = await captureConversation(run, ports);
    const counts = countByKind(captured, portsToNames(cluster, nodes));
    checkCapture(run, counts, conversation);
    await restartBoth(run);
    const { start, refused } = await replayCaptured(run, captured, counts);
    checkReplayRefused(run, start, captured, counts, refused);
    const after = await talkAfterReplay(run);
    return checkOutcome(run, [...conversation, ...after], captured, counts, refused, note);
  },
};

/**
 * 1. A short run, every datagram between the two captured. It starts with a restart of frank, so that the capture
 * holds a handshake too.
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

function portsToNames(cluster: UdpCluster, nodes: readonly string[]): Map<number, string> {
  return new Map(nodes.map((n) => [cluster.user(n).port, n]));
}

function countByKind(
  datagrams: readonly { fromPort: number; bytes: Uint8Array }[],
  names: Map<number, string>,
): Counts {
  const counts: Counts = {
    initiation: 0,
    response: 0,
    transport: 0,
    other: 0,
    initiationsFrom: { [A]: 0, [B]: 0 },
  };
  for (const d of datagrams) {
    const kind = sessionKindOf(d.bytes) ?? "other";
    counts[kind]++;
    const from = names.get(d.fromPort) ?? "elsewhere";
    if (kind === "initiation") counts.initiationsFrom[from] = (counts.initiationsFrom[from] ?? 0) + 1;
  }
  return counts;
}

/** The replay proves something for each type only if the capture holds some of it. */
function checkCapture(run: Run, counts: Counts, conversation: Sent[]): void {
  const { check } = run;
  check.equal("captured datagrams that are no session datagram (the wire is sealed)", 0, counts.other);
  check.atLeast(
    "transport datagrams captured (one per DATA at least)",
    conversation.length,
    counts.transport,
  );
  check.atLeast("handshake initiations captured from frank (his restart)", 1, counts.initiationsFrom[B] ?? 0);
  check.atLeast("handshake responses captured", 1, counts.response);
}

/**
 * 2. Both nodes restart on their data, zoe first: frank's first initiation then reaches her running node, so she
 * has one from him newer than any captured.
 */
async function restartBoth(run: Run): Promise<void> {
  const { cluster, nodes } = run;
  const log = cluster.log;
  const restartMark = log.mark();
  await Promise.all(nodes.map((n) => cluster.stopNode(n)));
  await cluster.startNode(A);
  await cluster.startNode(B);
  await cluster.waitFor(
    "zoe and frank to hear each other after restarting",
    () =>
      log.since(restartMark, "peer-online", [A]).some((e) => e.peer === B) &&
      log.since(restartMark, "peer-online", [B]).some((e) => e.peer === A),
    { timeoutMs: 5000 },
  );
  await cluster.settle(nodes);
  await cluster.quiesce();
}

/**
 * Datagrams from an address that is no peer's pass the node's admission control (a rate limit) before the
 * session layer sees them: counted there too, so that one dropped unexamined could not pass for one refused.
 */
function admissionTotals(run: Run): Admission {
  return run.nodes
    .map((n) => run.cluster.node(n).admission.stats())
    .reduce(
      (a, s) => ({
        admitted: a.admitted + s.admitted,
        dropped: a.dropped + s.droppedSource + s.droppedGlobal,
      }),
      { admitted: 0, dropped: 0 },
    );
}

/** Sessions the running nodes established (a handshake completed on either side). */
function establishedNow(run: Run): number {
  return run.nodes.reduce((n, name) => n + run.cluster.node(name).stats().sessions.established, 0);
}

function refusalsSince(run: Run, start: ReplayStart, attacker: AttackerSocket): Refusals {
  const d = diffTotals(run.cluster.totalsOf(run.nodes), start.totals);
  const names = portsToNames(run.cluster, run.nodes);
  const answers = attacker.received.filter((r) => sessionKindOf(r.bytes) === "response");
  const answeredBy: Record<string, number> = {};
  for (const r of answers) {
    const by = names.get(r.fromPort) ?? "elsewhere";
    answeredBy[by] = (answeredBy[by] ?? 0) + 1;
  }
  return {
    unknownIndex: d.sessionRefused["unknown-index"] ?? 0,
    replayedInitiation: d.sessionRefused["replayed-initiation"] ?? 0,
    sessionRefused: d.sessionRefused,
    answered: answers.length,
    answeredBy,
    otherToAttacker: attacker.received.length - answers.length,
    total: Object.values(d.sessionRefused).reduce((a, b) => a + b, 0) + answers.length,
  };
}

/** 3. The replay, from an attacker's socket; returns once every datagram of it has been refused or answered. */
async function replayCaptured(
  run: Run,
  captured: readonly CapturedDatagram[],
  n: Counts,
): Promise<{ start: ReplayStart; refused: Refusals }> {
  const { cluster, nodes } = run;
  const attacker = await AttackerSocket.open(HOST);
  try {
    const start: ReplayStart = {
      totals: cluster.totalsOf(nodes),
      admission: admissionTotals(run),
      established: establishedNow(run),
      mark: cluster.log.mark(),
    };
    await attacker.send(captured.map((d) => ({ port: d.toPort, bytes: d.bytes })));
    await cluster.waitFor(
      "every replayed datagram to be refused (or a replayed initiation answered)",
      () => refusalsSince(run, start, attacker).total >= captured.length,
      {
        timeoutMs: 5000,
        progress: () => {
          const r = refusalsSince(run, start, attacker);
          return (
            `unknown-index ${r.unknownIndex}/${n.response + n.transport}, ` +
            `replayed-initiation ${r.replayedInitiation} + answered ${r.answered}/${n.initiation}`
          );
        },
      },
    );
    await cluster.settle(nodes);
    await cluster.quiesce();
    return { start, refused: refusalsSince(run, start, attacker) };
  } finally {
    await attacker.close();
  }
}

/** Nothing shown or reported, nothing reached an engine, each datagram refused by its type, none unexamined. */
function checkReplayRefused(
  run: Run,
  start: ReplayStart,
  captured: readonly CapturedDatagram[],
  n: Counts,
  r: Refusals,
): void {
  const { cluster, check, nodes } = run;
  const log = cluster.log;
  const d = diffTotals(cluster.totalsOf(nodes), start.totals);
  check.equal("replayed messages shown", 0, log.since(start.mark, "message", nodes).length);
  check.equal(
    "delivery or failure reports caused by the replay",
    0,
    log.since(start.mark, "delivered", nodes).length + log.since(start.mark, "failed", nodes).length,
  );
  check.equal("replayed datagrams the engines saw as duplicates", 0, d.duplicates);
  check.equalCounts("engine rejections during the replay", {}, d.rejected);
  check.equalCounts(
    "session refusals of the replay",
    { "unknown-index": n.response + n.transport, "replayed-initiation": n.initiation - r.answered },
    r.sessionRefused,
  );
  check.equal(
    "replayed initiations of frank's that zoe answered (she has had a newer one)",
    0,
    r.answeredBy[A] ?? 0,
  );
  check.equal(
    "replayed initiations of zoe's that frank answered (he keeps the newest he had)",
    0,
    r.answeredBy[B] ?? 0,
  );
  check.equal("sessions established by the replay", 0, establishedNow(run) - start.established);
  check.equal("datagrams sent to the attacker other than handshake answers", 0, r.otherToAttacker);
  const admissionAfter = admissionTotals(run);
  check.equal(
    "replayed datagrams handed to the session layer",
    captured.length,
    admissionAfter.admitted - start.admission.admitted,
  );
  check.equal(
    "replayed datagrams dropped by admission control",
    0,
    admissionAfter.dropped - start.admission.dropped,
  );
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
  const answered = r.answered > 0 ? `, ${r.answered} initiation(s) answered to the attacker, in vain` : "";
  note(
    `${captured.length} sealed datagrams replayed after the restart (${n.initiation} initiation, ` +
      `${n.response} response, ${n.transport} transport): 0 delivered; ${r.unknownIndex} unknown-index, ` +
      `${r.replayedInitiation} replayed-initiation${answered}`,
  );
  // The table's rejections: the engines' (none expected) and the session layer's refusals of the replay.
  const result = outcome(sent.length, deliveries, delta, giveUps);
  return { ...result, rejections: { ...result.rejections, ...r.sessionRefused } };
}
