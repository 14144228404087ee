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
import { dataSignedBytes, decode, encodeData, PacketType } from "../engine/wire.ts";
import { type CapturedDatagram, sendRaw, tapUdp } from "./capture.ts";
import { checkDeliveries, giveUpsSince } from "./deliveries.ts";
import { diffTotals } from "./totals.ts";
import { outcome, waitDelivered } from "./traffic.ts";
import type { Scenario } from "./types.ts";
import { HOST } from "./udp-cluster.ts";

const FORGED_TEXT = "s3: FORGED - alice never wrote this";

export const badSignature: Scenario = {
  id: 3,
  title: "Invalid signature",
  proves:
    "corrupted and forged messages are rejected (bad-signature) and never shown; the sender's later valid messages still arrive",
  nodes: ["zoe", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const log = cluster.log;
    const alice = cluster.user("alice");
    const bob = cluster.user("bob");
    const before = cluster.totalsOf(nodes);
    const mark = log.mark();
    const badSigs = () => diffTotals(cluster.totalsOf(nodes), before).rejected["bad-signature"] ?? 0;

    // Part 1: every datagram alice sends carries a broken signature until the fault is turned off.
    const captured: CapturedDatagram[] = [];
    const untap = tapUdp((d) => {
      if (d.fromPort === alice.port && d.toPort === bob.port) captured.push(d);
    });
    let corrupted: ReturnType<typeof cluster.broadcast>[];
    try {
      cluster.setFaults(["alice"], { badSignaturePpm: 1_000_000 });
      corrupted = [
        cluster.broadcast("alice", "s3: alice to everyone (first copies corrupted)"),
        cluster.sendPrivate("alice", "bob", "s3: alice to bob (first copies corrupted)"),
      ];
      // Nine copies of the broadcast and one of the private message, at least, all rejected.
      await cluster.waitFor("every receiver to reject alice's corrupted datagrams", () => badSigs() >= 10, {
        timeoutMs: 5000,
        progress: () => `${badSigs()} rejected`,
      });
      check.equal(
        "messages shown while every signature was broken",
        0,
        log.since(mark, "message", nodes).length,
      );
      cluster.setFaults(["alice"], { badSignaturePpm: 0 });
      await waitDelivered(cluster, "alice's retransmissions to deliver", corrupted, {
        timeoutMs: 5000,
        mark,
        nodes,
      });
      await cluster.settle(["alice"]);
    } finally {
      untap();
    }

    // Part 2: the forgery, modelled on alice's latest genuine datagram to bob.
    const genuine = captured
      .map((d) => decode(d.bytes))
      .flatMap((r) => (r.ok && r.packet.type === PacketType.Data ? [r.packet] : []))
      .sort((a, b) => a.seq - b.seq)
      .at(-1);
    if (!genuine) throw new Error("captured none of alice's datagrams to bob");
    const attacker = ed25519Signer(generateEd25519Seed());
    const next = (genuine.seq + 1) >>> 0;
    const fields = {
      sender: alice.id as PeerId,
      recipient: bob.id as PeerId,
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
    const forged = encodeData(fields, proof, (authed) =>
      createHmac("sha256", attackerMacKey).update(authed).digest().subarray(0, 16),
    );
    const badMacs = () => diffTotals(cluster.totalsOf(nodes), before).rejected["bad-mac"] ?? 0;
    const rejectedBefore = badMacs();
    await sendRaw(HOST, [{ port: bob.port, bytes: forged }]);
    await cluster.waitFor("bob to reject the forged datagram", () => badMacs() > rejectedBefore, {
      timeoutMs: 5000,
    });
    const forgedRejection = log
      .since(mark, "rejected", ["bob"])
      .some((e) => e.reason === "bad-mac" && e.from === "alice");
    check.that("bob reported the forgery as bad-mac from alice", forgedRejection, String(forgedRejection));

    // Part 3: alice's next messages, valid, one of them on the sequence number the forgery tried to take.
    const later = [
      cluster.sendPrivate("alice", "bob", "s3: alice to bob, valid, after the forgery"),
      cluster.broadcast("alice", "s3: alice to everyone, valid, after the forgery"),
    ];
    await waitDelivered(cluster, "alice's later messages to arrive", later, { timeoutMs: 5000, mark, nodes });
    await cluster.settle(nodes);
    // Corrupted copies still on their way when the fault was lifted: wait until every one was rejected.
    await cluster.waitFor(
      "every corrupted copy to be rejected",
      () => badSigs() >= diffTotals(cluster.totalsOf(nodes), before).faults.badSignatures,
      { timeoutMs: 5000, progress: () => `${badSigs()} rejected` },
    );

    const delta = diffTotals(cluster.totalsOf(nodes), before);
    const sent = [...corrupted, ...later];
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
  },
};
