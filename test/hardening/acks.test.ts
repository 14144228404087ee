/**
 * Over real UDP: while bob hears nothing (his socket drops every datagram it receives), alice's messages to him
 * stay pending whatever ACKs arrive, at both layers:
 *
 * - From attackers holding session keys, so that the session layer hands their datagrams to alice's engine: one
 *   holding bob's session with alice, and carol, a registered, malicious peer, through her own session. An engine
 *   datagram names no sender (its session does), so bob's session can only speak for bob: ACKs for another epoch,
 *   and bob's genuine ACKs replayed; carol's ACKs of everything, her rejections and random ACKs of every shape
 *   concern her own stream alone. None resolves a message to bob.
 * - From attackers on the network without keys, from a stranger's address, bob's and carol's: the same ACKs as
 *   plain engine datagrams, bob's sealed datagrams replayed, alice's reflected. The session layer refuses each.
 *
 * None marks a message delivered; when bob hears again, each is delivered once.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:dgram";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { generateSecretKeys, peerIdOf, publicKeysOf } from "../../src/crypto/keys.ts";
import { createCryptoPort, staticKeyDirectory } from "../../src/crypto/port.ts";
import { Engine } from "../../src/engine/engine.ts";
import type { CryptoPort } from "../../src/engine/ports.ts";
import {
  type AckFields,
  decode,
  encodeAck,
  PacketType,
  packetTypeOf,
  RejectCode,
} from "../../src/engine/wire.ts";
import { SeededRng } from "../../src/faults/seeded-rng.ts";
import type { ChatNode } from "../../src/node/chat-node.ts";
import type { SessionRefusal } from "../../src/session/events.ts";
import { makeUsers, nodeFor, type TestUser, until } from "../helpers/loopback-nodes.ts";
import {
  Capture,
  closeSocket,
  sendInner,
  socketOf,
  tapInner,
  tapWire,
  tunnelOf,
  udpSocket,
  type WireRecord,
} from "./helpers/capture.ts";

const WIDE_OPEN = { sourceRatePerSec: 1e9, sourceBurst: 1e9, globalRatePerSec: 1e9, globalBurst: 1e9 };

describe("ACKs that must not mark anything delivered", { timeout: 60_000 }, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("forged, replayed, reflected, stale and other peers' ACKs never mark a message delivered", async (t) => {
    const users = await makeUsers(["alice", "bob", "carol"]);
    const [alice, bob, carol] = users as [TestUser, TestUser, TestUser];
    const directory = staticKeyDirectory(users.map((u) => publicKeysOf(u.secrets)));
    const _port = (u: TestUser): CryptoPort => createCryptoPort({ identity: u.secrets, directory });
    const config = { heartbeatMs: 300 };
    const aliceNode = nodeFor(alice, users, { config });
    const delivered: string[] = [];
    const failed: string[] = [];
    const rejected = new Map<string, number>();
    aliceNode.on("delivered", (d) => delivered.push(`${d.to}:${d.msgId}`));
    aliceNode.on("failed", (f) => failed.push(`${f.to}:${f.code}`));
    aliceNode.on("rejected", (r) => rejected.set(r.reason, (rejected.get(r.reason) ?? 0) + 1));
    await aliceNode.start();
    aliceNode.admission.configure(WIDE_OPEN);
    cleanups.push(() => aliceNode.close());
    const bobNode = nodeFor(bob, users, { config });
    await bobNode.start();
    cleanups.push(() => bobNode.close());
    const carolNode = nodeFor(carol, users, { config });
    await carolNode.start();
    cleanups.push(() => carolNode.close());
    const nowOf = (n: ChatNode) => (n as unknown as { now(): number }).now();

    // A first exchange, captured: bob's genuine ACK of alice's message, alice's ACK of bob's, as engine datagrams
    // (before their sessions sealed them) and as sealed datagrams on the wire.
    const capture = new Capture();
    tapInner(aliceNode, capture);
    tapInner(bobNode, capture);
    const wire: WireRecord[] = [];
    const taps = [tapWire(aliceNode, wire), tapWire(bobNode, wire)];
    const m0 = aliceNode.sendPrivate("bob", "m0").msgId;
    bobNode.sendPrivate("alice", "b0");
    await until(
      () => delivered.includes(`bob:${m0}`) && bobNode.stats().pending === 0,
      5000,
      "the first exchange",
    );
    capture.recording = false;
    for (const tap of taps) tap.stop();
    const acks = (from: TestUser) =>
      capture.all.filter((c) => c.type === PacketType.Ack && c.sender === from.contact.id);
    const bobsAcks = acks(bob);
    const alicesAcks = acks(alice);
    assert.ok(bobsAcks.length > 0 && alicesAcks.length > 0);
    const epoch = capture.all.find((c) => c.sender === alice.contact.id && c.type === PacketType.Data)?.epoch;
    assert.ok(epoch !== undefined);
    const bobsSealed = wire.filter((w) => w.from === bob.contact.port && w.to === alice.contact.port);
    const alicesSealed = wire.filter((w) => w.from === alice.contact.port && w.to === bob.contact.port);
    assert.ok(bobsSealed.length > 0 && alicesSealed.length > 0);
    // Carol's session with alice, for carol to speak through.
    await until(
      () => tunnelOf(carolNode).sessions.hasSession(alice.contact.id, nowOf(carolNode)),
      5000,
      "carol's session with alice",
    );

    // Bob hears nothing any more (his session with alice stays: the attacker holding it sends through it); alice
    // writes to him. These must stay pending.
    bobNode.setFaults({ lossInPpm: 1_000_000 });
    const pendingIds = [aliceNode.sendPrivate("bob", "m1").msgId, aliceNode.sendPrivate("bob", "m2").msgId];
    const deliveredBefore = delivered.length;
    const framesAckedBefore = aliceNode.stats().framesAcked;
    const engineRejectedBefore = { ...aliceNode.stats().rejected };
    const refusedBefore = { ...aliceNode.stats().sessions.refused };

    const everything: AckFields = {
      epoch,
      next: 1_000_000,
      ranges: [{ start: 0, length: 65535 }],
      rejects: [],
    };
    const ack = (fields: Partial<AckFields> = {}) => encodeAck({ ...everything, ...fields });
    const A = alice.contact.id;
    // Inside a session an engine datagram speaks for the session's peer: one holding bob's session keys speaks as
    // bob (what it may say of bob's own reception is out of reach here), so what it can still try is another epoch
    // and bob's old ACKs; carol, through her own session, can say anything of her own streams, never of bob's.
    const viaBob: Array<[string, Uint8Array, string]> = [
      ["bob's session, alice's previous epoch", ack({ epoch: epoch - 1 }), "stale-epoch"],
      ["bob's session, a future epoch", ack({ epoch: epoch + 1 }), "stale-epoch"],
      [
        "bob's session, a rejection under another epoch",
        ack({ epoch: epoch + 1, next: 0, ranges: [], rejects: [{ seq: 1, code: RejectCode.Malformed }] }),
        "stale-epoch",
      ],
      ...bobsAcks.map((c): [string, Uint8Array, string] => ["replay of bob's genuine ACK", c.bytes, "none"]),
    ];
    const viaCarol: Array<[string, Uint8Array, string]> = [
      ["carol's ACK of everything", ack(), "none"],
      ["carol's rejection of seq 1", ack({ next: 0, ranges: [], rejects: [{ seq: 1, code: 2 }] }), "none"],
      ...bobsAcks.map((c): [string, Uint8Array, string] => ["bob's ACK, replayed by carol", c.bytes, "none"]),
    ];
    const attacks = [...viaBob, ...viaCarol];
    const expected = new Map<string, number>();
    const expect = (outcome: string) => {
      if (outcome !== "none") expected.set(outcome, (expected.get(outcome) ?? 0) + 1);
    };
    let inner = 0;
    for (const [node, list] of [
      [bobNode, viaBob],
      [carolNode, viaCarol],
    ] as const) {
      for (const [, bytes, outcome] of list) {
        sendInner(node, A, bytes);
        inner++;
        expect(outcome);
      }
    }
    // Random ACKs of every shape through carol's session: whatever she claims, it is of her own stream.
    const forgeries = fc.sample(
      fc.record({
        epoch: fc.constantFrom(epoch, epoch - 1, epoch + 1),
        next: fc.nat({ max: 0xffffffff }),
        ranges: fc.array(
          fc.record({ start: fc.nat({ max: 0xffffffff }), length: fc.integer({ min: 1, max: 0xffff }) }),
          { maxLength: 32 },
        ),
        rejects: fc.array(
          fc.record({
            seq: fc.nat({ max: 0xffffffff }),
            code: fc.constantFrom(RejectCode.DecryptFailed, RejectCode.Malformed),
          }),
          { maxLength: 16 },
        ),
      }),
      { numRuns: 300, seed: 7 },
    );
    // Paced, into a larger buffer: the kernel must not drop any (they must all reach alice herself).
    socketOf(aliceNode).setRecvBufferSize(4 * 1024 * 1024);
    for (const [i, f] of forgeries.entries()) {
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 2));
      sendInner(carolNode, A, encodeAck(f));
      inner++;
      expect(f.epoch === epoch ? "none" : "stale-epoch");
    }

    // On the network, without keys: a stranger, and whoever can send from bob's or carol's address.
    const stranger = await udpSocket();
    cleanups.push(() => closeSocket(stranger));
    const send = (s: Socket, bytes: Uint8Array) =>
      new Promise<void>((resolve) => s.send(bytes, alice.contact.port, "127.0.0.1", () => resolve()));
    let plain = 0;
    let sealed = 0;
    for (const s of [stranger, socketOf(bobNode), socketOf(carolNode)]) {
      for (const [, bytes] of attacks) {
        await send(s, bytes); // an engine datagram on the wire: not a session's, refused as protocol v2
        plain++;
      }
      for (const w of [...bobsSealed, ...alicesSealed]) {
        await send(s, w.bytes); // bob's replayed, alice's reflected (indices and handshakes not hers)
        sealed++;
      }
    }

    const refusedNow = () => {
      const now = aliceNode.stats().sessions.refused;
      const out: Partial<Record<SessionRefusal, number>> = {};
      for (const [k, v] of Object.entries(now)) {
        const d = (v ?? 0) - (refusedBefore[k as SessionRefusal] ?? 0);
        if (d > 0) out[k as SessionRefusal] = d;
      }
      return out;
    };
    const engineRejected = (reason: string) =>
      (aliceNode.stats().rejected[reason as keyof typeof engineRejectedBefore] ?? 0) -
      (engineRejectedBefore[reason as keyof typeof engineRejectedBefore] ?? 0);
    /** Refusals of sealed datagrams: a seen counter, an index not alice's, a handshake replayed or not for her. */
    const sessionReplays = () => {
      const { "protocol-v2": _, ...others } = refusedNow();
      return Object.values(others).reduce((a, b) => a + (b ?? 0), 0);
    };
    await until(
      () =>
        [...expected].every(([reason, n]) => engineRejected(reason) >= n) &&
        (refusedNow()["protocol-v2"] ?? 0) >= plain &&
        sessionReplays() >= sealed,
      5000,
      "every attack to be refused",
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}: expected ${JSON.stringify(Object.fromEntries(expected))} of the engine, got ` +
          `${JSON.stringify(aliceNode.stats().rejected)}; expected ${plain} protocol-v2 and ${sealed} replays of ` +
          `the session layer, got ${JSON.stringify(refusedNow())}`,
      );
    });
    await new Promise((r) => setTimeout(r, 300)); // and a few retransmissions of m1 and m2 go unanswered
    t.diagnostic(
      `${inner} ACKs sent to alice through bob's and carol's sessions; refused by her engine: ` +
        `${JSON.stringify(Object.fromEntries([...expected.keys()].map((k) => [k, engineRejected(k)])))}`,
    );
    t.diagnostic(
      `${plain + sealed} datagrams sent to alice on the wire without keys (${plain} plain ACKs, ${sealed} ` +
        `sealed replays and reflections); refused by her session layer: ${JSON.stringify(refusedNow())}`,
    );
    for (const [reason, n] of expected) assert.equal(engineRejected(reason), n, `${reason}`);
    const refused = refusedNow();
    // An unsealed engine datagram begins with a type byte (1 … 3) that protocol v2's sessions used for their own.
    assert.equal(refused["protocol-v2"], plain, "plain engine datagrams refused by the session layer");
    assert.equal(rejected.get("peer speaks protocol v2"), plain, "and said so");
    assert.ok(sessionReplays() >= sealed, "sealed replays and reflections refused by the session layer");
    for (const reason of Object.keys(refused))
      assert.ok(
        ["protocol-v2", "replayed", "unknown-index", "replayed-initiation", "bad-mac1"].includes(reason),
        `refused as ${reason}`,
      );
    assert.equal(delivered.length, deliveredBefore, "no message was marked delivered");
    assert.deepEqual(failed, [], "nor failed by a forged rejection");
    assert.equal(aliceNode.stats().framesAcked, framesAckedBefore, "no frame was acknowledged");
    assert.equal(aliceNode.stats().pending, 2);
    assert.ok(decode(bobsAcks[0]?.bytes as Uint8Array).ok);

    // Bob hears again: both messages are delivered, once.
    const bobGot: string[] = [];
    bobNode.on("message", (m) => bobGot.push(m.text));
    bobNode.setFaults({ lossInPpm: 0 });
    await until(
      () => pendingIds.every((id) => delivered.includes(`bob:${id}`)),
      10_000,
      "m1 and m2 delivered",
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(bobGot, ["m1", "m2"]);
    assert.equal(
      delivered.filter((d) => pendingIds.some((id) => d.endsWith(id))).length,
      2,
      "one delivered event each",
    );
  });
});

describe("liveness and epochs", { timeout: 30_000 }, () => {
  const [alice0, bob0] = [0, 1].map((i) => {
    const secrets = generateSecretKeys();
    return {
      secrets,
      contact: { id: peerIdOf(publicKeysOf(secrets)), name: `u${i}`, host: "127.0.0.1", port: 1 },
    };
  }) as [TestUser, TestUser];
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("an ephemeral node restarted within the same second: its new message must not be acknowledged unseen", async () => {
    const users = await makeUsers(["alice", "bob"]);
    const [alice, bob] = users as [TestUser, TestUser];
    while (Date.now() % 1000 > 150) await new Promise((r) => setTimeout(r, 5)); // all within one second
    const bobNode = nodeFor(bob, users);
    const shown: string[] = [];
    bobNode.on("message", (m) => shown.push(m.text));
    await bobNode.start();
    cleanups.push(() => bobNode.close());
    const delivered: string[] = [];
    let aliceNode = nodeFor(alice, users);
    aliceNode.on("delivered", (d) => delivered.push(d.msgId));
    await aliceNode.start();
    aliceNode.broadcast("first life");
    await until(() => delivered.length === 1, 3000, "first delivery");
    await aliceNode.close();
    aliceNode = nodeFor(alice, users);
    aliceNode.on("delivered", (d) => delivered.push(d.msgId));
    await aliceNode.start();
    cleanups.push(() => aliceNode.close());
    aliceNode.broadcast("second life");
    await until(() => delivered.length === 2 || shown.length === 2, 3000, "the second message");
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(shown, ["first life", "second life"], "delivered means shown");
  });

  // Found by this suite, fixed in the engine since (onAck: only an ACK that acknowledges something is "heard").
  it("replaying a peer's old ACK does not keep it online after it left", () => {
    // The engines alone, on a manual clock: deterministic.
    const users = [alice0, bob0];
    const directory = staticKeyDirectory(users.map((u) => publicKeysOf(u.secrets)));
    const engine = (self: TestUser, other: TestUser, address: string, t: number) =>
      new Engine({
        crypto: createCryptoPort({ identity: self.secrets, directory }),
        rng: new SeededRng(address.length),
        deliveryLog: { has: () => false, hasAnyFrom: () => false },
        now: t,
        epoch: 7,
        peers: [{ id: other.contact.id, address }],
        config: { heartbeatMs: 200, offlineAfterMs: 1000 },
      });
    const run = (replay: boolean) => {
      let t = 1_000_000;
      const a = engine(alice0, bob0, "bob", t);
      const b = engine(bob0, alice0, "alice", t);
      const acks: Uint8Array[] = [];
      const exchange = () => {
        for (let moved = true; moved; ) {
          moved = false;
          for (let x = a.pollTransmit(); x; x = a.pollTransmit()) {
            b.handleDatagram(t, "alice", x.bytes, alice0.contact.id);
            moved = true;
          }
          for (let x = b.pollTransmit(); x; x = b.pollTransmit()) {
            if (packetTypeOf(x.bytes) === PacketType.Ack) acks.push(x.bytes);
            a.handleDatagram(t, "bob", x.bytes, bob0.contact.id);
            moved = true;
          }
        }
      };
      a.handleTimeout(t);
      b.handleTimeout(t);
      a.send(t, { kind: "broadcast", text: "hi" });
      exchange();
      assert.equal(a.peers()[0]?.online, true);
      const old = acks[0];
      assert.ok(old);
      // Bob is gone. Three seconds pass; an attacker replays his old ACK every 100 ms (or not).
      for (let i = 0; i < 30; i++) {
        t += 100;
        a.handleTimeout(t);
        while (a.pollTransmit()) {}
        if (replay) a.handleDatagram(t, "attacker:1", old, bob0.contact.id);
      }
      return a.peers()[0]?.online;
    };
    assert.equal(run(false), false, "without replays bob goes offline");
    assert.equal(run(true), false, "replays of his old ACK do not keep him online");
  });
});

describe("ordering after a give-up", { timeout: 30_000 }, () => {
  it("messages given up during an outage are delivered in the order they were written once the peer is back", async () => {
    const users = await makeUsers(["alice", "bob"]);
    const [alice, bob] = users as [TestUser, TestUser];
    const config = { heartbeatMs: 100, offlineAfterMs: 400, triesMax: 6, rtoMsMax: 60 };
    const aliceNode = nodeFor(alice, users, { config });
    const bobNode = nodeFor(bob, users, { config });
    const shown: string[] = [];
    bobNode.on("message", (m) => shown.push(m.text));
    let failures = 0;
    aliceNode.on("waiting", () => failures++);
    let bobOnline = false;
    aliceNode.on("peer-online", () => {
      bobOnline = true;
    });
    await aliceNode.start();
    await bobNode.start();
    try {
      // Alice sends only to a peer she has heard from.
      await until(() => bobOnline, 10_000, "alice hears bob");
      bobNode.setFaults({ blackhole: true });
      const N = 20;
      for (let i = 0; i < N; i++) aliceNode.broadcast(`m${i}`);
      await until(() => failures === N, 10_000, "every message given up");
      bobNode.setFaults({ blackhole: false });
      await until(() => shown.length === N, 10_000, "delivery after the outage");
      assert.deepEqual(
        shown,
        Array.from({ length: N }, (_, i) => `m${i}`),
      );
    } finally {
      await aliceNode.close();
      await bobNode.close();
    }
  });
});
