/**
 * 3. Invalid signature, and a datagram altered on the wire. First alice's node corrupts the signature of every
 * DATA it sends (one bit flipped, before her session seals it: a peer with a bad signer, which the session layer
 * cannot tell from a good one): every receiver's engine must reject every corrupted copy as bad-signature; once
 * the fault is off, her retransmissions (the engine keeps the good bytes) deliver those messages, once.
 *
 * Then an attacker on the path, without keys: alice sends bob a message; the attacker takes her sealed datagram
 * off the wire (bob never gets it), flips one byte of its ciphertext and delivers that, from its own socket, in
 * place of the original. Bob's session layer
 * must refuse it (bad-aead) before his engine sees anything, and never show it; alice's retransmission then
 * delivers the real message, once, and her next messages still arrive.
 */
import { TRANSPORT_HEADER_BYTES } from "../session/wire.ts";
import { type CapturedDatagram, interceptUdp, sendRaw, sessionKindOf } from "./capture.ts";
import type { Checker } from "./checks.ts";
import { checkDeliveries, giveUpsSince } from "./deliveries.ts";
import { diffTotals, type Totals } from "./totals.ts";
import { outcome, waitDelivered } from "./traffic.ts";
import type { Scenario, ScenarioOutcome } from "./types.ts";
import { HOST, type ScenarioUser, type Sent, type UdpCluster } from "./udp-cluster.ts";

/** What every step shares: where the scenario started counting, and alice and bob (sender and target). */
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
    "corrupted signatures are rejected (bad-signature) and a datagram altered on the wire is refused (bad-aead); neither is ever shown, and the sender's valid messages still arrive",
  nodes: ["zoe", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"],
  async run({ cluster, check, note }) {
    const nodes = this.nodes;
    const alice = cluster.user("alice");
    const bob = cluster.user("bob");
    const before = cluster.totalsOf(nodes);
    const run: Run = { cluster, check, nodes, alice, bob, before, mark: cluster.log.mark() };

    const corrupted = await sendWithBrokenSignatures(run);
    const intercepted = await alterOnTheWire(run);
    const later = await sendValidAfterward(run);
    return checkOutcome(run, [...corrupted, intercepted, ...later], note);
  },
};

/** The nodes' counters since the scenario began. */
function sinceStart(run: Run): Totals {
  return diffTotals(run.cluster.totalsOf(run.nodes), run.before);
}

function badSignatures(run: Run): number {
  return sinceStart(run).rejected["bad-signature"] ?? 0;
}

function badAeads(run: Run): number {
  return sinceStart(run).sessionRefused["bad-aead"] ?? 0;
}

/**
 * Part 1: every DATA alice sends carries a broken signature until the fault is turned off; then her
 * retransmissions deliver.
 */
async function sendWithBrokenSignatures(run: Run): Promise<Sent[]> {
  const { cluster, check, nodes, mark } = run;
  cluster.setFaults(["alice"], { badSignaturePpm: 1_000_000 });
  const corrupted = [
    cluster.broadcast("alice", "s3: alice to everyone (first copies corrupted)"),
    cluster.sendPrivate("alice", "bob", "s3: alice to bob (first copies corrupted)"),
  ];
  // Nine copies of the broadcast and one of the private message, at least, all rejected.
  await cluster.waitFor(
    "every receiver to reject alice's corrupted datagrams",
    () => badSignatures(run) >= 10,
    { timeoutMs: 5000, progress: () => `${badSignatures(run)} rejected` },
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
  return corrupted;
}

/** `datagram` with one byte of its ciphertext flipped (the header, index and counter, left as they were). */
function flipCiphertextByte(datagram: CapturedDatagram): Uint8Array {
  const altered = Uint8Array.from(datagram.bytes);
  const at = TRANSPORT_HEADER_BYTES + Math.floor((altered.length - TRANSPORT_HEADER_BYTES) / 2);
  altered[at] = (altered[at] as number) ^ 0x01;
  return altered;
}

/**
 * Part 2: an attacker on the path takes alice's next sealed datagram to bob off the wire, flips one byte of its
 * ciphertext and delivers that instead, from its own socket. Bob never saw that counter, so only the AEAD can tell:
 * his session layer must refuse it (bad-aead) before his engine sees anything; her retransmission delivers.
 */
async function alterOnTheWire(run: Run): Promise<Sent> {
  const { cluster, check, alice, bob, mark } = run;
  let original: CapturedDatagram | undefined;
  const interception = interceptUdp((d) => d.fromPort === alice.port && d.toPort === bob.port);
  let intercepted: Sent;
  try {
    void interception.taken.then((d) => {
      original = d;
    });
    intercepted = cluster.sendPrivate("alice", "bob", "s3: alice to bob (first copy altered on the wire)");
    await cluster.waitFor(
      "alice's sealed datagram to bob, taken off the wire",
      () => original !== undefined,
      {
        timeoutMs: 5000,
      },
    );
  } finally {
    interception.stop();
  }
  const taken = original as CapturedDatagram;
  check.equal(
    "session type of the datagram taken off the wire",
    "transport",
    String(sessionKindOf(taken.bytes)),
  );
  const refusedBefore = badAeads(run);
  await sendRaw(HOST, [{ port: bob.port, bytes: flipCiphertextByte(taken) }]);
  await cluster.waitFor(
    "bob's session layer to refuse the altered datagram",
    () => badAeads(run) > refusedBefore,
    {
      timeoutMs: 5000,
      progress: () => `session refusals so far: ${JSON.stringify(sinceStart(run).sessionRefused)}`,
    },
  );
  await waitDelivered(cluster, "alice's retransmission of the intercepted message", [intercepted], {
    timeoutMs: 5000,
    mark,
    nodes: run.nodes,
  });
  return intercepted;
}

/**
 * Part 3: alice's next messages, valid. Returns once they are delivered and every corrupted copy of part 1 has
 * been accounted for.
 */
async function sendValidAfterward(run: Run): Promise<Sent[]> {
  const { cluster, nodes, mark } = run;
  const later = [
    cluster.sendPrivate("alice", "bob", "s3: alice to bob, valid, after the altered datagram"),
    cluster.broadcast("alice", "s3: alice to everyone, valid, after the altered datagram"),
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

/** Every message delivered once with its own text, and each rejection and refusal accounted for by its cause. */
function checkOutcome(run: Run, sent: Sent[], note: (text: string) => void): ScenarioOutcome {
  const { cluster, check, nodes, mark } = run;
  const log = cluster.log;
  const delta = sinceStart(run);
  const deliveries = checkDeliveries(check, log, sent, { mark, nodes });
  const textOf = new Map(sent.map((s) => [s.msgId, s.text]));
  const altered = log.since(mark, "message", nodes).filter((e) => textOf.get(e.msgId) !== e.text).length;
  check.equal("messages shown with a text their sender did not write", 0, altered);
  check.atLeast("signatures corrupted by the fault", 10, delta.faults.badSignatures);
  check.equalCounts("engine rejections", { "bad-signature": delta.faults.badSignatures }, delta.rejected);
  check.equalCounts("session refusals", { "bad-aead": 1 }, delta.sessionRefused);
  const giveUps = giveUpsSince(log, mark, nodes);
  check.equal("give-ups", 0, giveUps);
  note(
    `${delta.faults.badSignatures} corrupted copies rejected as bad-signature; ` +
      "1 datagram altered on the wire refused by bob's session layer as bad-aead",
  );
  const result = outcome(sent.length, deliveries, delta, giveUps);
  return { ...result, rejections: { ...result.rejections, ...delta.sessionRefused } };
}
