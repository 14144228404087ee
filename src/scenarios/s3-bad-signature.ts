/**
 * 3. Invalid signature. First alice's node corrupts the signature of every DATA datagram it sends (one bit
 * flipped): every receiver must reject every corrupted copy; once the fault is off, her retransmissions (the
 * engine keeps the good bytes) deliver those messages, once. Then a forged datagram: a message claiming to be
 * alice's, to bob, with her epoch and the very next sequence number bob expects, signed by an attacker's key and
 * MAC'd with a key the attacker made up (only alice and bob can compute the real one), sent raw from another
 * socket. Bob must reject it at the MAC, before any signature check, and never show it; alice's next real messages
 * (which take that same sequence number) must still arrive.
 */
import { createHmac, randomBytes } from "node:crypto";
import { signBatch } from "../crypto/batch-signature.ts";
import { ed25519Signer, generateEd25519Seed } from "../crypto/ed25519.ts";
import type { MsgId, PeerId } from "../engine/types.ts";
import { type DataPacket, dataSignedBytes, decode, encodeData, PacketType } from "../engine/wire.ts";
import { type CapturedDatagram, sendRaw, tapUdp } from "./capture.ts";
import type { Checker } from "./checks.ts";
import { checkDeliveries, giveUpsSince } from "./deliveries.ts";
import { diffTotals, type Totals } from "./totals.ts";
import { outcome, waitDelivered } from "./traffic.ts";
import type { Scenario, ScenarioOutcome } from "./types.ts";
import { HOST, type ScenarioUser, type Sent, type UdpCluster } from "./udp-cluster.ts";

const FORGED_TEXT = "s3: FORGED - alice never wrote this";

/** What every step shares: where the scenario started counting, and alice and bob (sender and forgery target). */
interface Run {
  readonly cluster: UdpCluster;
  readonly check: Checker;
  readonly nodes: readonly string[];
  readonly alice: ScenarioUser;
  readonly bob: ScenarioUser;
  readonly before: Totals;
  readonly mark: number;
}

export const badSignature: Scenario = {
  id: 3,
  title: "Invalid signature",
  proves:
    "corrupted and forged messages are rejected (bad-signature) and never shown; the sender's later valid messages still arrive",
  nodes: ["zoe", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const alice = cluster.user("alice");
    const bob = cluster.user("bob");
    const before = cluster.totalsOf(nodes);
    const run: Run = { cluster, check, nodes, alice, bob, before, mark: cluster.log.mark() };

    const { corrupted, toBob } = await sendWithBrokenSignatures(run);
    await injectForgedDatagram(run, forgeNextDatagram(run, latestDataPacket(toBob)));
    const later = await sendValidAfterForgery(run);
    return checkOutcome(run, [...corrupted, ...later], note);
  },
};

/** The nodes' counters since the scenario began. */
function sinceStart(run: Run): Totals {
  return diffTotals(run.cluster.totalsOf(run.nodes), run.before);
}

function badSignatures(run: Run): number {
  return sinceStart(run).rejected["bad-signature"] ?? 0;
}

/**
 * Part 1: every datagram alice sends carries a broken signature until the fault is turned off; then her
 * retransmissions deliver. Her datagrams to bob are captured meanwhile, as the model for the forgery.
 */
async function sendWithBrokenSignatures(run: Run): Promise<{ corrupted: Sent[]; toBob: CapturedDatagram[] }> {
  const { cluster, check, nodes, alice, bob, mark } = run;
  const toBob: CapturedDatagram[] = [];
  const untap = tapUdp((d) => {
    if (d.fromPort === alice.port && d.toPort === bob.port) toBob.push(d);
  });
  try {
    cluster.setFaults(["alice"], { badSignaturePpm: 1_000_000 });
    const corrupted = [
      cluster.broadcast("alice", "s3: alice to everyone (first copies corrupted)"),
      cluster.sendPrivate("alice", "bob", "s3: alice to bob (first copies corrupted)"),
    ];
    // Nine copies of the broadcast and one of the private message, at least, all rejected.
    await cluster.waitFor(
      "every receiver to reject alice's corrupted datagrams",
      () => badSignatures(run) >= 10,
      {
        timeoutMs: 5000,
        progress: () => `${badSignatures(run)} rejected`,
      },
    );
    check.equal(
      "messages shown while every signature was broken",
      0,
      cluster.log.since(mark, "message", nodes).length,
    );
    cluster.setFaults(["alice"], { badSignaturePpm: 0 });
    await waitDelivered(cluster, "alice's retransmissions to deliver", corrupted, {
      timeoutMs: 5000,
      mark,
      nodes,
    });
    await cluster.settle(["alice"]);
    return { corrupted, toBob };
  } finally {
    untap();
  }
}

/** The DATA packet with the highest sequence number among `captured`. */
function latestDataPacket(captured: readonly CapturedDatagram[]): DataPacket {
  const genuine = captured
    .map((d) => decode(d.bytes))
    .flatMap((r) => (r.ok && r.packet.type === PacketType.Data ? [r.packet] : []))
    .sort((a, b) => a.seq - b.seq)
    .at(-1);
  if (!genuine) throw new Error("captured none of alice's datagrams to bob");
  return genuine;
}

/**
 * A datagram claiming to be alice's next to bob (her epoch, the sequence number after `genuine`'s), signed by an
 * attacker's key and MAC'd with a key the attacker made up: the real MAC key is shared by alice and bob only.
 */
function forgeNextDatagram(run: Run, genuine: DataPacket): Uint8Array {
  const attacker = ed25519Signer(generateEd25519Seed());
  const next = (genuine.seq + 1) >>> 0;
  const fields = {
    sender: run.alice.id as PeerId,
    recipient: run.bob.id as PeerId,
    epoch: genuine.epoch,
    seq: next,
    floor: next,
    flags: 0,
    fragIndex: 0,
    fragCount: 1,
    msgId: randomBytes(16).toString("hex") as MsgId,
    sentAt: Date.now(),
    payload: new TextEncoder().encode(FORGED_TEXT),
  };
  const attackerMacKey = randomBytes(32);
  const [proof] = signBatch([dataSignedBytes(fields)], attacker.sign);
  if (!proof) throw new Error("a batch of one has one proof");
  return encodeData(fields, proof, (authed) =>
    createHmac("sha256", attackerMacKey).update(authed).digest().subarray(0, 16),
  );
}

/** Part 2: the forgery, sent raw from another socket; bob must reject it at the MAC. */
async function injectForgedDatagram(run: Run, forged: Uint8Array): Promise<void> {
  const { cluster, check, mark } = run;
  const badMacs = () => sinceStart(run).rejected["bad-mac"] ?? 0;
  const rejectedBefore = badMacs();
  await sendRaw(HOST, [{ port: run.bob.port, bytes: forged }]);
  await cluster.waitFor("bob to reject the forged datagram", () => badMacs() > rejectedBefore, {
    timeoutMs: 5000,
  });
  const forgedRejection = cluster.log
    .since(mark, "rejected", ["bob"])
    .some((e) => e.reason === "bad-mac" && e.from === "alice");
  check.that("bob reported the forgery as bad-mac from alice", forgedRejection, String(forgedRejection));
}

/**
 * Part 3: alice's next messages, valid, one of them on the sequence number the forgery tried to take. Returns
 * once they are delivered and every corrupted copy of part 1 has been accounted for.
 */
async function sendValidAfterForgery(run: Run): Promise<Sent[]> {
  const { cluster, nodes, mark } = run;
  const later = [
    cluster.sendPrivate("alice", "bob", "s3: alice to bob, valid, after the forgery"),
    cluster.broadcast("alice", "s3: alice to everyone, valid, after the forgery"),
  ];
  await waitDelivered(cluster, "alice's later messages to arrive", later, { timeoutMs: 5000, mark, nodes });
  await cluster.settle(nodes);
  // Corrupted copies still on their way when the fault was lifted: wait until every one was rejected.
  await cluster.waitFor(
    "every corrupted copy to be rejected",
    () => badSignatures(run) >= sinceStart(run).faults.badSignatures,
    { timeoutMs: 5000, progress: () => `${badSignatures(run)} rejected` },
  );
  return later;
}

/** Every message delivered once, the forgery never shown, and each rejection accounted for by its cause. */
function checkOutcome(run: Run, sent: Sent[], note: (text: string) => void): ScenarioOutcome {
  const { cluster, check, nodes, mark } = run;
  const log = cluster.log;
  const delta = sinceStart(run);
  const deliveries = checkDeliveries(check, log, sent, { mark, nodes });
  const forgedShown = log.since(mark, "message", nodes).filter((e) => e.text === FORGED_TEXT).length;
  check.equal("forged message shown", 0, forgedShown);
  check.atLeast("signatures corrupted by the fault", 10, delta.faults.badSignatures);
  check.equalCounts(
    "rejections",
    { "bad-signature": delta.faults.badSignatures, "bad-mac": 1 },
    delta.rejected,
  );
  const giveUps = giveUpsSince(log, mark, nodes);
  check.equal("give-ups", 0, giveUps);
  note(`${delta.faults.badSignatures} corrupted copies rejected as bad-signature, 1 forgery as bad-mac`);
  return outcome(sent.length, deliveries, delta, giveUps);
}
