import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { SeededRng } from "../../src/faults/seeded-rng.ts";
import { ResponderHandshake, staticKeyPair } from "../../src/session/handshake.ts";
import { Sessions } from "../../src/session/sessions.ts";
import { SessionCipher } from "../../src/session/transport.ts";
import {
  decodeSessionPacket,
  encodeInitiation,
  INITIATION_BYTES,
  SessionPacketType,
} from "../../src/session/wire.ts";
import { SessionNet } from "./fixtures/session-net.ts";

const text = (s: string) => new TextEncoder().encode(s);

function established(net: SessionNet): SessionNet {
  net.send("alice", "bob", "hello bob");
  net.runUntil(net.now + 1_000);
  net.send("bob", "alice", "hello alice");
  net.runUntil(net.now + 1_000);
  assert.deepEqual(net.node("bob").delivered, ["alice:hello bob"]);
  assert.deepEqual(net.node("alice").delivered, ["bob:hello alice"]);
  return net;
}

function typeOf(bytes: Uint8Array): number | undefined {
  return bytes[0];
}

describe("sessions between two nodes", () => {
  test("a first datagram starts the handshake and is delivered once the session exists, both ways", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    const a = net.node("alice").events.filter((e) => e.type === "established");
    const b = net.node("bob").events.filter((e) => e.type === "established");
    assert.deepEqual(a, [{ type: "established", peer: "bob", initiator: true }]);
    assert.deepEqual(b, [{ type: "established", peer: "alice", initiator: false }]);
    // One handshake: bob waited for alice's first datagram instead of starting his own.
    assert.equal(net.node("alice").sessions.stats().handshakesStarted, 1);
    assert.equal(net.node("bob").sessions.stats().handshakesStarted, 0);
  });

  test("nothing readable on the wire: no text, and no two datagrams alike", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    for (let i = 0; i < 20; i++) net.send("alice", "bob", `secret number ${i}`);
    net.runUntil(net.now + 1_000);
    assert.equal(net.node("bob").delivered.length, 21);
    const seen = new Set<string>();
    for (const d of net.wire) {
      const wire = Buffer.from(d.bytes);
      for (const needle of ["secret", "hello", "alice", "bob"])
        assert.ok(!wire.includes(Buffer.from(needle)), needle);
      seen.add(wire.toString("hex"));
    }
    assert.equal(seen.size, net.wire.length);
  });

  test("a thief of both users' static keys decrypts nothing recorded (forward secrecy)", () => {
    const net = established(new SessionNet(["alice", "bob"], { seed: 9 }));
    for (let i = 0; i < 5; i++) net.send("bob", "alice", `recorded ${i}`);
    net.runUntil(net.now + 1_000);
    const alice = net.node("alice");
    const bob = net.node("bob");
    // The thief replays everything into fresh session layers holding the stolen keys...
    const thief = new SessionNet(["alice", "bob"]);
    thief.node("alice").secret.set(alice.secret);
    thief.node("bob").secret.set(bob.secret);
    for (const n of thief.nodes) thief.boot(n);
    for (const d of net.wire) {
      const target = d.to === bob.address ? thief.node("bob") : thief.node("alice");
      assert.equal(target.sessions.receive(thief.now, d.from, d.bytes), undefined);
    }
    // ...and, with bob's static key, answers alice's recorded initiation itself: keys of its own making, which
    // open none of the recorded transport datagrams.
    for (const d of net.wire.filter((w) => typeOf(w.bytes) === SessionPacketType.Initiation)) {
      const packet = decodeSessionPacket(d.bytes, staticKeyPair(bob.secret).publicKey);
      assert.ok(packet.ok && packet.packet.type === SessionPacketType.Initiation);
      const read = ResponderHandshake.read(staticKeyPair(bob.secret), packet.packet.noise, () => true);
      assert.ok(read.ok, "the thief can read who initiated");
      const keys = read.value.reply(new Uint8Array(32).fill(7)).keys;
      for (const k of [keys.send, keys.receive]) {
        const cipher = new SessionCipher(k);
        for (const t of net.wire.filter((w) => typeOf(w.bytes) === SessionPacketType.Transport)) {
          const p = decodeSessionPacket(t.bytes, new Uint8Array(32));
          assert.ok(p.ok && p.packet.type === SessionPacketType.Transport);
          assert.equal(cipher.open(p.packet.counter, p.packet.sealed, p.packet.header), undefined);
        }
      }
    }
    assert.equal(alice.delivered.length, 6);
  });

  test("handshakes complete under 40% loss and reordering, and the engine's retransmissions get through", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const net = new SessionNet(["alice", "bob"], { seed, lossPpm: 400_000, delayMs: 5, jitterMs: 40 });
      // The engine above retransmits every second until acknowledged; the session layer never does.
      for (let k = 0; k < 60 && net.node("bob").delivered.length === 0; k++) {
        net.send("alice", "bob", `try ${k}`);
        net.runUntil(net.now + 1_000);
      }
      assert.ok(net.node("bob").delivered.length > 0, `seed ${seed}: nothing arrived in 60 s`);
      assert.ok(net.node("alice").sessions.hasSession(net.node("bob").id, net.now), `seed ${seed}`);
    }
  });

  test("a restarted receiver refuses every old datagram, and the pair makes a fresh session", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    const recorded = net.wire.filter((d) => d.to === net.node("bob").address);
    net.boot(net.node("bob"));
    const bob = net.node("bob");
    bob.delivered.length = 0;
    for (const d of recorded) net.inject(d.from, d.to, d.bytes);
    net.runUntil(net.now + 1_000);
    assert.deepEqual(bob.delivered, [], "a captured datagram was shown again after the restart");
    const refused = bob.sessions.stats().refused;
    assert.ok((refused["unknown-index"] ?? 0) + (refused["replayed-initiation"] ?? 0) >= recorded.length - 1);
    net.send("bob", "alice", "I am back");
    net.runUntil(net.now + 1_000);
    net.send("alice", "bob", "welcome back");
    net.runUntil(net.now + 1_000);
    assert.deepEqual(bob.delivered, ["alice:welcome back"]);
    assert.equal(net.node("alice").delivered.at(-1), "bob:I am back");
  });

  test("a restarted node refuses a replayed old initiation without answering it: the newest timestamp is kept", () => {
    for (const ephemeral of [false, true]) {
      const net = established(new SessionNet(["alice", "bob"], { ephemeral }));
      const initiation = net.wire.find((d) => typeOf(d.bytes) === SessionPacketType.Initiation);
      assert.ok(initiation);
      net.boot(net.node("bob"));
      const before = net.wire.length;
      net.inject("10.9.9.9:666", initiation.to, initiation.bytes);
      net.runUntil(net.now + 100);
      const answered = net.wire.slice(before).filter((d) => d.to === "10.9.9.9:666").length;
      const refused = net.node("bob").sessions.stats().refused["replayed-initiation"] ?? 0;
      if (ephemeral) {
        // Without a store there is nothing to remember: one answer, which the replayer cannot use.
        assert.equal(answered, 1);
        assert.equal(net.node("bob").sessions.hasSession(net.node("alice").id, net.now), false);
      } else {
        assert.equal(answered, 0, "a replayed initiation was answered after a restart");
        assert.equal(refused, 1);
      }
    }
  });

  test("after the receiver restarted silently, the sender's unanswered datagrams make it handshake anew", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    net.boot(net.node("bob"));
    const bob = net.node("bob");
    bob.delivered.length = 0;
    for (let k = 0; k < 30; k++) {
      net.send("alice", "bob", `m${k}`);
      net.runUntil(net.now + 1_000);
    }
    assert.ok(bob.delivered.length > 0, "alice never noticed bob lost the session");
    assert.ok(bob.delivered.length >= 30 - 17, `only ${bob.delivered.length} arrived`);
  });

  test("a restarted initiator makes a fresh session with a responder that kept its state", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    net.boot(net.node("alice"));
    net.runUntil(net.now + 10);
    net.send("alice", "bob", "after my restart");
    net.runUntil(net.now + 1_000);
    assert.equal(net.node("bob").delivered.at(-1), "alice:after my restart");
  });

  test("a replayed initiation does not displace the working session", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    const initiation = net.wire.find((d) => typeOf(d.bytes) === SessionPacketType.Initiation);
    assert.ok(initiation);
    net.inject("10.9.9.9:666", initiation.to, initiation.bytes);
    net.runUntil(net.now + 100);
    assert.equal(net.node("bob").sessions.stats().refused["replayed-initiation"], 1);
    net.send("alice", "bob", "still here");
    net.send("bob", "alice", "me too");
    net.runUntil(net.now + 100);
    assert.equal(net.node("bob").delivered.at(-1), "alice:still here");
    assert.equal(net.node("alice").delivered.at(-1), "bob:me too");
  });

  test("a replayed transport datagram is refused, also when reordered within the window", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    net.send("alice", "bob", "once");
    net.runUntil(net.now + 100);
    const last = net.wire.filter((d) => d.to === net.node("bob").address).at(-1);
    assert.ok(last);
    net.inject(last.from, last.to, last.bytes);
    net.inject("10.1.2.3:4", last.to, last.bytes);
    net.runUntil(net.now + 100);
    assert.deepEqual(net.node("bob").delivered, ["alice:hello bob", "alice:once"]);
    assert.equal(net.node("bob").sessions.stats().refused.replayed, 2);
    assert.equal(net.node("bob").sessions.addressOf(net.node("alice").id), net.node("alice").address);
  });

  test("roaming: a peer whose address changes keeps its session, and replies follow it", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    const started = net.node("alice").sessions.stats().handshakesStarted;
    net.move("alice", "192.168.7.7:7000");
    net.send("alice", "bob", "from the café");
    net.runUntil(net.now + 100);
    net.send("bob", "alice", "got it");
    net.runUntil(net.now + 100);
    assert.equal(net.node("bob").delivered.at(-1), "alice:from the café");
    assert.equal(net.node("alice").delivered.at(-1), "bob:got it");
    assert.equal(net.node("bob").sessions.addressOf(net.node("alice").id), "192.168.7.7:7000");
    assert.equal(net.node("alice").sessions.stats().handshakesStarted, started);
    assert.ok(net.node("bob").events.some((e) => e.type === "roamed"));
  });

  test("the initiator rekeys after two minutes in use; the old keys open late datagrams, then are erased", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    const bob = net.node("bob");
    let late: Uint8Array | undefined;
    for (let k = 0; k < 13; k++) {
      net.send("alice", "bob", `tick ${k}`);
      if (k === 11) {
        // A second datagram under the first keys, held back by the network, to arrive after the rekey.
        net.drop = (_from, _to, bytes) => {
          late = bytes;
          return true;
        };
        net.send("alice", "bob", "late");
        net.drop = undefined;
      }
      net.runUntil(net.now + 10_000);
    }
    assert.equal(net.node("alice").sessions.stats().handshakesStarted, 2, "no rekey after 120 s");
    assert.equal(bob.delivered.at(-1), "alice:tick 12");
    assert.ok(late);
    net.inject(net.node("alice").address, bob.address, late);
    net.runUntil(net.now + 100);
    assert.equal(bob.delivered.at(-1), "alice:late", "the previous keys no longer open a late datagram");
    net.runUntil(net.now + net.timing.previousGraceMs);
    assert.ok(net.node("alice").sessions.stats().keysErased >= 1);
    assert.ok(bob.sessions.stats().keysErased >= 1);
    const unknown = bob.sessions.stats().refused["unknown-index"] ?? 0;
    net.inject(net.node("alice").address, bob.address, late);
    net.runUntil(net.now + 100);
    assert.equal(bob.sessions.stats().refused["unknown-index"], unknown + 1, "erased keys still known");
    assert.equal(bob.delivered.length, 15);
  });

  test("a key that has sealed rekeyAfterMessages datagrams is replaced", () => {
    const net = established(new SessionNet(["alice", "bob"], { timing: { rekeyAfterMessages: 10 } }));
    for (let k = 0; k < 25; k++) net.send("alice", "bob", `n${k}`);
    net.runUntil(net.now + 1_000);
    assert.ok(net.node("alice").sessions.stats().handshakesStarted >= 2);
    assert.equal(net.node("bob").delivered.length, 26);
  });

  test("a session unused past rejectAfterMs is erased, and the next datagram handshakes anew", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    net.runUntil(net.now + 181_000);
    assert.equal(net.node("alice").sessions.hasSession(net.node("bob").id, net.now), false);
    assert.equal(net.node("alice").sessions.stats().indices, 0);
    net.send("alice", "bob", "later");
    net.runUntil(net.now + 1_000);
    assert.equal(net.node("bob").delivered.at(-1), "alice:later");
  });

  test("an unreachable peer: retries back off, then the handshake gives up and drops what waited", () => {
    const net = new SessionNet(["alice", "bob"]);
    net.drop = () => true;
    net.send("alice", "bob", "into the void");
    net.runUntil(net.now + 200_000);
    const initiations = net.wire.filter((d) => typeOf(d.bytes) === SessionPacketType.Initiation).length;
    assert.ok(initiations >= 5 && initiations <= 16, `${initiations} initiations in 200 s`);
    assert.deepEqual(
      net.node("alice").events.filter((e) => e.type === "gave-up"),
      [{ type: "gave-up", peer: "bob", dropped: 1 }],
    );
    assert.equal(net.node("alice").sessions.pollTimeout(), undefined, "still busy after giving up");
  });

  test("a protocol-v1 or protocol-v2 datagram is refused with an old-protocol event naming the version", () => {
    const net = new SessionNet(["alice", "bob"]);
    const bob = net.node("bob");
    assert.equal(
      bob.sessions.receive(net.now, "10.0.0.9:1", Uint8Array.of(0x43, 0x4e, 3, 1, 0, 0)),
      undefined,
    );
    assert.deepEqual(bob.sessions.pollEvent(), { type: "old-protocol", from: "10.0.0.9:1", version: 1 });
    assert.equal(bob.sessions.stats().refused["protocol-v1"], 1);
    for (const type of [0x01, 0x02, 0x03]) {
      assert.equal(bob.sessions.receive(net.now, "10.0.0.9:2", Uint8Array.of(type, 0, 0, 0, 0)), undefined);
      assert.deepEqual(bob.sessions.pollEvent(), { type: "old-protocol", from: "10.0.0.9:2", version: 2 });
    }
    assert.equal(bob.sessions.stats().refused["protocol-v2"], 3);
  });
});

describe("sessions under hostile input", () => {
  test("random datagrams never throw, never deliver, and allocate no session state", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    const bob = net.node("bob").sessions;
    const before = bob.stats().indices;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 3 }), (bytes, type) => {
        const datagram = Uint8Array.from(bytes);
        if (datagram.length > 0) datagram[0] = type;
        assert.equal(bob.receive(net.now, "10.6.6.6:6", datagram), undefined);
      }),
      { numRuns: 2_000 },
    );
    assert.equal(bob.stats().indices, before);
  });

  test("a flood of initiations from spoofed sources allocates nothing and the honest pair keeps talking", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    const bob = net.node("bob");
    const bobPublic = staticKeyPair(bob.secret).publicKey;
    const rng = new SeededRng(5);
    const stranger = staticKeyPair(rng.bytes(32));
    const toBob = [{ id: bob.id, staticKey: bobPublic, address: bob.address }];
    for (let i = 0; i < 3_000; i++) {
      const from = `172.16.${i & 255}.${i >> 8}:9`;
      if (i % 2 === 0) {
        // A correct mac1 (the attacker knows bob's public key) around garbage.
        net.inject(from, bob.address, encodeInitiation(i, rng.bytes(INITIATION_BYTES - 21), bobPublic));
      } else {
        // A real handshake, by a key bob has not pinned.
        const strangerSessions = new Sessions(stranger, toBob, (n) => rng.bytes(n));
        strangerSessions.send(net.now, bob.id, text("flood"));
        const initiation = strangerSessions.pollTransmit();
        assert.ok(initiation);
        net.inject(from, bob.address, initiation.bytes);
      }
    }
    net.send("alice", "bob", "through the flood");
    net.runUntil(net.now + 1_000);
    assert.equal(bob.delivered.at(-1), "alice:through the flood");
    assert.equal(bob.sessions.stats().refused["decrypt-failed"], 1_500);
    assert.equal(bob.sessions.stats().refused["unknown-key"], 1_500);
    assert.equal(bob.sessions.stats().indices, 1);
  });

  test("an initiation by a real key that bob has not pinned is refused as unknown-key", () => {
    const net = new SessionNet(["alice", "bob", "mallory"]);
    // Mallory's own session layer knows bob, but bob's does not know mallory.
    const bob = net.node("bob");
    const peers = [{ id: bob.id, staticKey: staticKeyPair(bob.secret).publicKey, address: bob.address }];
    bob.sessions = new Sessions(
      staticKeyPair(bob.secret),
      [
        {
          id: net.node("alice").id,
          staticKey: staticKeyPair(net.node("alice").secret).publicKey,
          address: "x",
        },
      ],
      (n) => new SeededRng(3).bytes(n),
    );
    const mallory = new Sessions(staticKeyPair(net.node("mallory").secret), peers, (n) =>
      new SeededRng(4).bytes(n),
    );
    mallory.send(net.now, bob.id, text("let me in"));
    const initiation = mallory.pollTransmit();
    assert.ok(initiation);
    assert.equal(bob.sessions.receive(net.now, "10.0.0.3:7000", initiation.bytes), undefined);
    assert.equal(bob.sessions.stats().refused["unknown-key"], 1);
    assert.equal(bob.sessions.pollTransmit(), undefined, "bob answered a stranger");
  });
});

/** `from`'s session layer handshakes to `address` for `to`; what it transmits goes on the net. */
function tryAddress(net: SessionNet, from: string, to: string, address: string): void {
  const n = net.node(from);
  n.sessions.tryAddress(net.now, net.node(to).id, address);
  for (let t = n.sessions.pollTransmit(); t; t = n.sessions.pollTransmit())
    net.inject(n.address, t.to, t.bytes);
}

describe("trying an address a peer may be at (LAN discovery)", () => {
  test("a handshake to the right address moves the peer there only once it is answered", () => {
    const net = new SessionNet(["alice", "bob"]);
    const alice = net.node("alice");
    const bob = net.node("bob");
    net.move("bob", "10.0.0.99:7000"); // alice's hint for bob is now dead
    net.send("alice", "bob", "are you there");
    net.runUntil(net.now + 500);
    assert.deepEqual(bob.delivered, []);
    tryAddress(net, "alice", "bob", "10.6.6.6:7000"); // a forged candidate: nobody answers
    tryAddress(net, "alice", "bob", "10.0.0.99:7000");
    assert.equal(alice.sessions.addressOf(bob.id), "10.0.0.2:7000", "sending an initiation moves nothing");
    net.runUntil(net.now + 100);
    assert.equal(alice.sessions.addressOf(bob.id), "10.0.0.99:7000", "the authenticated response did");
    assert.deepEqual(bob.delivered, ["alice:are you there"]);
  });

  test("an address that never answers leaves the peer where it is, and the session working", () => {
    const net = established(new SessionNet(["alice", "bob"]));
    const alice = net.node("alice");
    const bob = net.node("bob");
    tryAddress(net, "alice", "bob", "10.6.6.6:7000");
    net.send("alice", "bob", "still here");
    net.runUntil(net.now + 5_000);
    assert.equal(alice.sessions.addressOf(bob.id), bob.address);
    assert.equal(bob.delivered.at(-1), "alice:still here");
  });
});

describe("a session confirmed from a new address", () => {
  test("what waited for the session goes to where the peer was confirmed, not to a stale hint", () => {
    // Both hints are dead and data waits on both sides; alice finds bob (LAN discovery) and handshakes there.
    const net = new SessionNet(["alice", "bob"]);
    const [alice, bob] = [net.node("alice"), net.node("bob")];
    net.move("alice", "10.1.0.1:7000");
    net.move("bob", "10.1.0.2:7000");
    net.send("alice", "bob", "a1");
    net.send("bob", "alice", "b1");
    net.runUntil(net.now + 500);
    tryAddress(net, "alice", "bob", bob.address);
    net.runUntil(net.now + 200); // a few round trips: no retry timer (1 s) comes into it
    assert.deepEqual([alice.delivered, bob.delivered], [["bob:b1"], ["alice:a1"]]);
    assert.equal(bob.sessions.addressOf(alice.id), alice.address);
  });
});

describe("crossing handshakes to addresses found meanwhile", () => {
  test("an initiator that completed with an answer the responder has since replaced gets a new handshake at once", () => {
    // Both hints dead, both sides find the other a few ms apart: each answers the other's initiations, and the
    // winner of the crossing completes with the loser's first answer, which the loser replaced when the winner's
    // retry came. The loser, refusing that session's datagrams (unknown-index), handshakes back to where they
    // come from, instead of leaving the pair without a session until the 5 s silence.
    for (let seed = 1; seed <= 10; seed++)
      for (let offset = 0; offset <= 12; offset++) {
        const net = new SessionNet(["alice", "bob"], { seed });
        const [alice, bob] = [net.node("alice"), net.node("bob")];
        net.move("alice", "10.1.0.1:7000");
        net.move("bob", "10.1.0.2:7000");
        net.send("alice", "bob", "a1");
        net.send("bob", "alice", "b1");
        net.runUntil(net.now + 500);
        tryAddress(net, "alice", "bob", bob.address);
        net.runUntil(net.now + offset);
        tryAddress(net, "bob", "alice", alice.address);
        net.runUntil(net.now + 300);
        // What the race lost, the engine re-sends; here: new data, which must arrive within a second.
        net.send("alice", "bob", "a2");
        net.send("bob", "alice", "b2");
        net.runUntil(net.now + 1000);
        const got = [alice.delivered.includes("bob:b2"), bob.delivered.includes("alice:a2")];
        assert.deepEqual(got, [true, true], `seed ${seed}, ${offset} ms apart`);
      }
  });
});
