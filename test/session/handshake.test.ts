import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  INITIATION_OVERHEAD,
  InitiatorHandshake,
  RESPONSE_OVERHEAD,
  ResponderHandshake,
  SessionKeys,
  staticKeyPair,
} from "../../src/session/handshake.ts";
import { SessionCipher } from "../../src/session/transport.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/**
 * Noise_IK_25519_ChaChaPoly_BLAKE2b from the noise-c test vectors (rweather/noise-c, tests/vector/noise-c-basic.txt),
 * generated independently of noise-handshake: two handshake messages, then four transport messages alternating
 * initiator → responder and back, each payload a name.
 */
const VECTOR = {
  prologue: hex("50726f6c6f677565313233"),
  initStatic: hex("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1"),
  initEphemeral: hex("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"),
  respStatic: hex("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893"),
  respEphemeral: hex("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b"),
  messages: [
    [
      "4c756477696720766f6e204d69736573",
      "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944ba83a447b38c83e327ad936929812f624884847b7831e95e197b2f797088efdd232fe541af156ec6d0657602902a8c3ee64e470f4b6fcd9298ce0b56fe20f86e60d9d933ec6e103ffb09e6001d6abb64",
    ],
    [
      "4d757272617920526f746862617264",
      "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088439f069b267a06b3de3ecb1043bcb09807c6cd101f3826192a65f11ef3fe4317",
    ],
    ["462e20412e20486179656b", "cd54383060e7a28434cca27fb1cc524cfbabeb18181589df219d07"],
    ["4361726c204d656e676572", "a856d3bf0246bfc476c655009cd1ed677b8dcc5b349ae8ef2a05f2"],
    [
      "4a65616e2d426170746973746520536179",
      "49063084b2c51f098337cb8a13739ac848f907e67cfb2cc8a8b60586467aa02fc7",
    ],
    [
      "457567656e2042f6686d20766f6e2042617765726b",
      "8b9709d23b47e4639df7678d7a21741eba4ef1e9c60383001c7435549c20f9d56f30e935d3",
    ],
  ].map(([payload, ciphertext]) => ({
    payload: hex(payload as string),
    ciphertext: hex(ciphertext as string),
  })),
  handshakeHash:
    "00e51d2aac81a9b8ebe441d6af3e1c8efc0f030cc608332edcb42588ff6a0ce26415ddc106e95277a5e6d54132f1e5245976b89caf96d262f1fe5a7f0c55c078",
};

function message(i: number) {
  const m = VECTOR.messages[i];
  assert.ok(m);
  return m;
}

/** Two fresh users' keys and one complete handshake between them, with random ephemeral secrets. */
function pair() {
  const alice = staticKeyPair(crypto.getRandomValues(new Uint8Array(32)));
  const bob = staticKeyPair(crypto.getRandomValues(new Uint8Array(32)));
  return { alice, bob };
}
const random32 = () => crypto.getRandomValues(new Uint8Array(32));

describe("the Noise IK handshake", () => {
  test("matches the noise-c test vector byte for byte: both messages, the handshake hash, the transport", () => {
    const initiator = new InitiatorHandshake(
      staticKeyPair(VECTOR.initStatic),
      staticKeyPair(VECTOR.respStatic).publicKey,
      VECTOR.initEphemeral,
      message(0).payload,
      VECTOR.prologue,
    );
    assert.equal(toHex(initiator.message), toHex(message(0).ciphertext));

    const read = ResponderHandshake.read(
      staticKeyPair(VECTOR.respStatic),
      initiator.message,
      () => true,
      VECTOR.prologue,
    );
    assert.ok(read.ok);
    assert.equal(toHex(read.value.payload), toHex(message(0).payload));
    assert.equal(toHex(read.value.remoteStatic), toHex(staticKeyPair(VECTOR.initStatic).publicKey));
    const reply = read.value.reply(VECTOR.respEphemeral, message(1).payload);
    assert.equal(toHex(reply.message), toHex(message(1).ciphertext));

    const done = initiator.finish(reply.message);
    assert.ok(done.ok);
    assert.equal(toHex(done.value.payload), toHex(message(1).payload));
    const i = done.value.keys;
    const r = reply.keys;
    assert.equal(toHex(i.handshakeHash), VECTOR.handshakeHash);
    assert.equal(toHex(r.handshakeHash), VECTOR.handshakeHash);

    const iSend = new SessionCipher(i.send);
    const rSend = new SessionCipher(r.send);
    const iRecv = new SessionCipher(i.receive);
    const rRecv = new SessionCipher(r.receive);
    // Messages 2..5 alternate direction; each direction's nonce counts from 0.
    for (const [k, [sealer, opener]] of [
      [iSend, rRecv],
      [rSend, iRecv],
      [iSend, rRecv],
      [rSend, iRecv],
    ].entries()) {
      const m = message(k + 2);
      const counter = k >> 1;
      const sealed = (sealer as SessionCipher).seal(counter, m.payload);
      assert.equal(toHex(sealed), toHex(m.ciphertext), `transport message ${k + 2}`);
      assert.equal(
        toHex((opener as SessionCipher).open(counter, sealed) ?? new Uint8Array()),
        toHex(m.payload),
      );
    }
  });

  test("the messages are as long as the overheads say, plus the payload", () => {
    const { alice, bob } = pair();
    const initiator = new InitiatorHandshake(alice, bob.publicKey, random32(), new Uint8Array(10));
    assert.equal(initiator.message.length, INITIATION_OVERHEAD + 10);
    const read = ResponderHandshake.read(bob, initiator.message, () => true);
    assert.ok(read.ok);
    assert.equal(read.value.reply(random32(), new Uint8Array(3)).message.length, RESPONSE_OVERHEAD + 3);
  });

  test("both sides derive crossed keys and the same handshake hash", () => {
    const { alice, bob } = pair();
    const initiator = new InitiatorHandshake(alice, bob.publicKey, random32());
    const read = ResponderHandshake.read(bob, initiator.message, () => true);
    assert.ok(read.ok);
    const reply = read.value.reply(random32());
    const done = initiator.finish(reply.message);
    assert.ok(done.ok);
    assert.equal(toHex(done.value.keys.send), toHex(reply.keys.receive));
    assert.equal(toHex(done.value.keys.receive), toHex(reply.keys.send));
    assert.notEqual(toHex(done.value.keys.send), toHex(done.value.keys.receive));
    assert.equal(toHex(done.value.keys.handshakeHash), toHex(reply.keys.handshakeHash));
    assert.equal(toHex(done.value.keys.remoteStatic), toHex(bob.publicKey));
    assert.ok(initiator.finished);
  });

  test("an initiator whose static key is not pinned is refused as unknown-key", () => {
    const { alice, bob } = pair();
    const initiator = new InitiatorHandshake(alice, bob.publicKey, random32());
    let asked: Uint8Array | undefined;
    const read = ResponderHandshake.read(bob, initiator.message, (key) => {
      asked = key;
      return false;
    });
    assert.deepEqual(read, { ok: false, reason: "unknown-key" });
    assert.equal(toHex(asked ?? new Uint8Array()), toHex(alice.publicKey));
  });

  test("an initiation for another responder, or with any byte changed, does not verify", () => {
    const { alice, bob } = pair();
    const carol = staticKeyPair(random32());
    const initiator = new InitiatorHandshake(alice, carol.publicKey, random32());
    assert.deepEqual(
      ResponderHandshake.read(bob, initiator.message, () => true),
      {
        ok: false,
        reason: "decrypt-failed",
      },
    );
    const good = new InitiatorHandshake(alice, bob.publicKey, random32()).message;
    for (let i = 0; i < good.length; i += 7) {
      const bad = Uint8Array.from(good);
      bad[i] = (bad[i] as number) ^ 0x40;
      const read = ResponderHandshake.read(bob, bad, () => true);
      assert.equal(read.ok, false, `byte ${i} changed`);
    }
  });

  test("a different prologue (another protocol version) does not verify", () => {
    const { alice, bob } = pair();
    const v1 = new TextEncoder().encode("chatnode session v1");
    const initiator = new InitiatorHandshake(alice, bob.publicKey, random32(), undefined, v1);
    assert.deepEqual(
      ResponderHandshake.read(bob, initiator.message, () => true),
      {
        ok: false,
        reason: "decrypt-failed",
      },
    );
  });

  test("short messages are refused as bad-length without being parsed", () => {
    const { alice, bob } = pair();
    const initiator = new InitiatorHandshake(alice, bob.publicKey, random32());
    assert.deepEqual(
      ResponderHandshake.read(bob, initiator.message.subarray(0, INITIATION_OVERHEAD - 1), () => true),
      {
        ok: false,
        reason: "bad-length",
      },
    );
    assert.deepEqual(initiator.finish(new Uint8Array(RESPONSE_OVERHEAD - 1)), {
      ok: false,
      reason: "bad-length",
    });
  });

  test("a low-order ephemeral key (all zeros) is refused", () => {
    const { alice, bob } = pair();
    const message = Uint8Array.from(new InitiatorHandshake(alice, bob.publicKey, random32()).message);
    message.fill(0, 0, 32);
    assert.deepEqual(
      ResponderHandshake.read(bob, message, () => true),
      { ok: false, reason: "decrypt-failed" },
    );
  });

  test("a forged response leaves the initiator waiting, and the real one still completes", () => {
    const { alice, bob } = pair();
    const initiator = new InitiatorHandshake(alice, bob.publicKey, random32());
    const read = ResponderHandshake.read(bob, initiator.message, () => true);
    assert.ok(read.ok);
    const reply = read.value.reply(random32());
    const forged = Uint8Array.from(reply.message);
    forged[40] = (forged[40] as number) ^ 1;
    assert.deepEqual(initiator.finish(forged), { ok: false, reason: "decrypt-failed" });
    assert.deepEqual(initiator.finish(crypto.getRandomValues(new Uint8Array(64))), {
      ok: false,
      reason: "decrypt-failed",
    });
    assert.equal(initiator.finished, false);
    const done = initiator.finish(reply.message);
    assert.ok(done.ok);
    assert.equal(toHex(done.value.keys.send), toHex(reply.keys.receive));
  });

  test("the responder's reply to a replayed initiation makes different keys: a fresh ephemeral each time", () => {
    const { alice, bob } = pair();
    const initiation = new InitiatorHandshake(alice, bob.publicKey, random32()).message;
    const copy = toHex(initiation);
    const keys = [0, 1].map(() => {
      const read = ResponderHandshake.read(bob, initiation, () => true);
      assert.ok(read.ok);
      return toHex(read.value.reply(random32()).keys.send);
    });
    assert.notEqual(keys[0], keys[1]);
    assert.equal(toHex(initiation), copy, "reading changed the caller's message");
  });

  test("ephemeral secrets are erased: the caller's copy is untouched, the handshake's own is zeroed", () => {
    const { alice, bob } = pair();
    const secret = random32();
    const kept = toHex(secret);
    const initiator = new InitiatorHandshake(alice, bob.publicKey, secret);
    assert.equal(toHex(secret), kept);
    const read = ResponderHandshake.read(bob, initiator.message, () => true);
    assert.ok(read.ok);
    assert.ok(initiator.finish(read.value.reply(random32()).message).ok);
    assert.ok(initiator.finished);
    assert.throws(() => initiator.finish(new Uint8Array(64)), /already finished/);
    assert.throws(() => read.value.reply(random32()), /already answered/);
  });

  test("erased session keys are all zeros", () => {
    const keys = new SessionKeys(random32(), random32(), new Uint8Array(64).fill(1), random32());
    keys.erase();
    for (const k of [keys.send, keys.receive, keys.handshakeHash]) assert.ok(k.every((b) => b === 0));
  });

  test("wrong key lengths are programming errors", () => {
    const { alice, bob } = pair();
    assert.throws(() => staticKeyPair(new Uint8Array(31)), RangeError);
    assert.throws(() => new InitiatorHandshake(alice, bob.publicKey, new Uint8Array(31)), RangeError);
    assert.throws(() => new InitiatorHandshake(alice, new Uint8Array(33), random32()), RangeError);
  });
});
