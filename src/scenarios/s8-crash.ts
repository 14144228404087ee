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
import type { NodeStats } from "../node/types.ts";
import type { Checker } from "./checks.ts";
import { ChildNode } from "./child.ts";
import {
  allDelivered,
  checkDeliveries,
  giveUpsSince,
  missingDeliveries,
  unexpectedFailure,
} from "./deliveries.ts";
import { diffTotals, type Totals } from "./totals.ts";
import type { Scenario, ScenarioOutcome } from "./types.ts";
import type { Sent, UdpCluster } from "./udp-cluster.ts";

const VICTIM = "carol";
const PEERS = ["alice", "bob"];

/** What every step shares: where the scenario started counting, and carol's child process while one runs. */
interface Run {
  readonly cluster: UdpCluster;
  readonly check: Checker;
  readonly nodes: readonly string[];
  /** Alice's and bob's totals: carol's counters live in her child process. */
  readonly before: Totals;
  readonly mark: number;
  /** The child process last started (still set once killed, so that a wait can name its death). */
  child: ChildNode | undefined;
}

/** Messages in flight at the crash, each way. */
interface InFlight {
  toCarol: Sent[];
  fromCarol: Sent[];
}

export const crash: Scenario = {
  id: 8,
  title: "Crash and restart (SIGKILL)",
  proves:
    "a node killed with SIGKILL mid-conversation and restarted on its SQLite data loses nothing and shows nothing twice",
  nodes: [VICTIM, ...PEERS],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const before = cluster.totalsOf(PEERS);
    const run: Run = { cluster, check, nodes, before, mark: cluster.log.mark(), child: undefined };

    await cluster.stopNode(VICTIM);
    try {
      const firstLife = await startChild(run);
      await waitUntilAcquainted(run);
      const phase1 = await muteCarol(run, firstLife);
      const phase2 = await deafenCarol(run, firstLife);
      const inFlight = {
        toCarol: [...phase1.toCarol, ...phase2.toCarol],
        fromCarol: [...phase1.fromCarol, ...phase2.fromCarol],
      };
      const shown = shownBeforeCrash(run, inFlight);
      checkNothingAcknowledged(run, inFlight);
      const statsBefore = await firstLife.stats();
      await firstLife.kill();
      noteCrash(inFlight, shown, note);

      const restartMark = cluster.log.mark();
      const secondLife = await startChild(run);
      const sent = [...inFlight.toCarol, ...inFlight.fromCarol];
      await waitEverythingDelivered(run, sent);
      const recovery = checkRecovery(run, sent, shown.fromCarol, restartMark);
      const statsAfter = await quitChild(run, secondLife);
      return {
        sent: sent.length,
        ...recovery.deliveries,
        // Carol's retransmissions: her first life up to the kill, and her second life.
        retransmits: recovery.delta.retransmits + statsBefore.retransmits + statsAfter.retransmits,
        duplicatesIgnored: recovery.duplicatesIgnored,
        rejections: recovery.rejections,
        giveUps: recovery.giveUps,
      };
    } finally {
      if (run.child) await run.child.kill();
      await cluster.startNode(VICTIM);
    }
  },
};

/** Carol's node in a child process, on her SQLite store. */
async function startChild(run: Run): Promise<ChildNode> {
  run.child = await ChildNode.start({ cluster: run.cluster, username: VICTIM });
  return run.child;
}

/** Waits for `sent`, but stops at once if a node reports a failure or carol's child process dies. */
function waitOpts(run: Run, sent: Sent[], timeoutMs = 8000) {
  const log = run.cluster.log;
  return {
    timeoutMs,
    progress: () => missingDeliveries(log, sent),
    abort: () => unexpectedFailure(log, run.mark, run.nodes) ?? run.child?.deathReason(),
  };
}

function shownAll(run: Run, sent: Sent[]): boolean {
  return sent.every((s) => s.to.every((to) => run.cluster.log.shown(to, s.msgId, s.from) > 0));
}

/** Peers send only to a peer they hear from, and carol's clean stop just told them she left. */
async function waitUntilAcquainted(run: Run): Promise<void> {
  const { cluster, mark } = run;
  const log = cluster.log;
  const greeted = () =>
    PEERS.every(
      (peer) =>
        log.since(mark, "peer-online", [peer]).some((e) => e.peer === VICTIM) &&
        log.since(mark, "peer-online", [VICTIM]).some((e) => e.peer === peer),
    );
  await cluster.waitFor("carol and her peers to hear each other", greeted, { timeoutMs: 8000 });
}

/** Phase 1: carol receives but cannot answer, so she shows their messages and none of her ACKs gets out. */
async function muteCarol(run: Run, child: ChildNode): Promise<InFlight> {
  const { cluster } = run;
  await child.setFaults({ lossOutPpm: 1_000_000 });
  const toCarol = PEERS.flatMap((from) =>
    [1, 2, 3].map((i) => cluster.sendPrivate(from, VICTIM, `s8: ${from} to carol #${i}`)),
  );
  const fromCarol = [
    await child.send("alice", "s8: carol to alice #1 (before the crash)"),
    await child.send("bob", "s8: carol to bob #1 (before the crash)"),
  ];
  await cluster.waitFor(
    "carol's child process to show the messages sent to her",
    () => shownAll(run, toCarol),
    waitOpts(run, toCarol),
  );
  return { toCarol, fromCarol };
}

/**
 * Phase 2: nothing reaches carol any more; then her datagrams leave again. Two steps, so that no ACK for an
 * earlier datagram can slip out between them.
 */
async function deafenCarol(run: Run, child: ChildNode): Promise<InFlight> {
  const { cluster } = run;
  await child.setFaults({ lossInPpm: 1_000_000 });
  await child.setFaults({ lossOutPpm: 0 });
  const fromCarol = [
    await child.send("alice", "s8: carol to alice #2 (before the crash)"),
    await child.send("bob", "s8: carol to bob #2 (before the crash)"),
  ];
  const toCarol = PEERS.map((from) =>
    cluster.sendPrivate(from, VICTIM, `s8: ${from} to carol #4 (lost on arrival)`),
  );
  await cluster.waitFor(
    "alice and bob to show carol's latest messages",
    () => shownAll(run, fromCarol),
    waitOpts(run, fromCarol),
  );
  return { toCarol, fromCarol };
}

/** What was shown before the crash: by carol, of the messages to her; by alice and bob both, of hers. */
function shownBeforeCrash(run: Run, { toCarol, fromCarol }: InFlight): InFlight {
  const log = run.cluster.log;
  return {
    toCarol: toCarol.filter((s) => log.shown(VICTIM, s.msgId, s.from) > 0),
    fromCarol: fromCarol.filter((s) => s.to.every((to) => log.shown(to, s.msgId, VICTIM) > 0)),
  };
}

/** Nothing either way is acknowledged: the crash must find every message in flight. */
function checkNothingAcknowledged(run: Run, { toCarol, fromCarol }: InFlight): void {
  const log = run.cluster.log;
  const ackedCount = (sent: Sent[]) =>
    sent.reduce((n, s) => n + s.to.filter((to) => log.acked(s.from, s.msgId, to) > 0).length, 0);
  run.check.equal("messages to carol acknowledged before the crash", 0, ackedCount(toCarol));
  run.check.equal("carol's messages acknowledged before the crash", 0, ackedCount(fromCarol));
}

function noteCrash(inFlight: InFlight, shown: InFlight, note: (text: string) => void): void {
  note(
    `SIGKILL with ${inFlight.toCarol.length} messages in flight to carol (${shown.toCarol.length} already shown) ` +
      `and ${inFlight.fromCarol.length} from her (${shown.fromCarol.length} already shown)`,
  );
}

async function waitEverythingDelivered(run: Run, sent: Sent[]): Promise<void> {
  const { cluster } = run;
  await cluster.waitFor(
    "every message to be shown and acknowledged after the restart",
    () => allDelivered(cluster.log, sent),
    waitOpts(run, sent, 10_000),
  );
  await cluster.settle(PEERS);
}

/** Everything delivered exactly once after the restart, and what carol had re-sent recognised as duplicates. */
function checkRecovery(run: Run, sent: Sent[], shownByPeersBefore: Sent[], restartMark: number) {
  const { cluster, check, nodes, mark } = run;
  const log = cluster.log;
  const deliveries = checkDeliveries(check, log, sent, { mark, nodes });
  const delta = diffTotals(cluster.totalsOf(PEERS), run.before);
  const childDuplicates = log.since(restartMark, "duplicate", [VICTIM]).length;
  const childRejections = log.since(mark, "rejected", [VICTIM]);
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
  const rejections: ScenarioOutcome["rejections"] = { ...delta.rejected };
  for (const r of childRejections) rejections[r.reason] = (rejections[r.reason] ?? 0) + 1;
  return { deliveries, delta, duplicatesIgnored: delta.duplicates + childDuplicates, rejections, giveUps };
}

/** Carol's counters from her second life, then a clean /quit. */
async function quitChild(run: Run, child: ChildNode): Promise<NodeStats> {
  const statsAfter = await child.stats();
  const exit = await child.quit();
  run.child = undefined;
  run.check.equal("carol's child process exit code after /quit", 0, exit.code ?? -1);
  return statsAfter;
}
