/**
 * Identity over real UDP: a peer is its key, never its address or its claimed name. On the wire every datagram is a
 * session datagram, so a stranger's key is refused by the session layer's handshake (unknown-key) and a claim to
 * another's key without its secret does not verify; inside a session, a datagram is the session's peer's (it names
 * no sender), so a message claiming another author fails its signature. A known peer that moves to another address is followed from its
 * authenticated datagrams (and only from those); a changed key for a known name is refused loudly at contact
 * import, and the running node goes by the pinned keys.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { generateSecretKeys, peerIdOf, publicKeysOf } from "../../src/crypto/keys.ts";
import { createCryptoPort, staticKeyDirectory } from "../../src/crypto/port.ts";
import type { MsgId } from "../../src/engine/types.ts";
import { DataFlags, dataSignedBytes, encodeData, encodeHello, HelloFlags } from "../../src/engine/wire.ts";
import { contactCard, exportContact, importContact } from "../../src/identity/contact.ts";
import { openDirectory } from "../../src/identity/directory.ts";
import { IdentityError } from "../../src/identity/errors.ts";
import { createUserRecord } from "../../src/identity/record.ts";
import { registerUser } from "../../src/identity/register.ts";
import type { ChatNode } from "../../src/node/chat-node.ts";
import { openNode } from "../../src/node/open-node.ts";
import { keySourceOf } from "../../src/session/key-source.ts";
import { SessionPacketType } from "../../src/session/wire.ts";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import { signedAlone } from "../helpers/batch.ts";
import { freePorts, makeUsers, nodeFor, type TestUser, until } from "../helpers/loopback-nodes.ts";
import { closeSocket, sendInner, tunnelOf, udpSocket } from "./helpers/capture.ts";
import {
  forgedInitiation,
  forgedTransport,
  ownInitiation,
  staticPublicOf,
  tapWire,
} from "./helpers/forge.ts";

const WIDE_OPEN = { sourceRatePerSec: 1e9, sourceBurst: 1e9, globalRatePerSec: 1e9, globalBurst: 1e9 };

function watch(node: ChatNode) {
  const w = { shown: [] as string[], rejected: [] as string[] };
  node.on("message", (m) => w.shown.push(`${m.from}:${m.text}`));
  node.on("rejected", (r) => w.rejected.push(r.reason));
  return w;
}

describe("identity", { timeout: 60_000 }, () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  const dir = mkdtempSync(join(tmpdir(), "chatnode-identity-"));
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a node with a key nobody registered is refused by the session layer as unknown-key, and never hears an answer", async () => {
    const users = await makeUsers(["alice", "bob", "mallory"]);
    const [, bob, mallory] = users as [TestUser, TestUser, TestUser];
    const known = users.slice(0, 2); // bob's directory: alice and bob
    const bobNode = nodeFor(bob, known);
    const bobSees = watch(bobNode);
    await bobNode.start();
    bobNode.admission.configure(WIDE_OPEN);
    cleanups.push(() => bobNode.close());
    // Mallory knows bob (his card is public) and runs a real node: it handshakes with bob under her own key.
    // Never answered, her node only probes bob (its messages wait): here every 100 ms.
    const malloryNode = nodeFor(mallory, [bob, mallory], { config: { probeMsMin: 100, probeMsMax: 100 } });
    await malloryNode.start();
    cleanups.push(() => malloryNode.close());
    malloryNode.broadcast("hello bob, it's me");
    malloryNode.sendPrivate("bob", "a secret");
    await until(
      () => (bobNode.stats().sessions.refused["unknown-key"] ?? 0) >= 2,
      10_000,
      "refused handshakes",
    );
    const refused = bobNode.stats().sessions.refused;
    assert.deepEqual(Object.keys(refused), ["unknown-key"], "every one of her datagrams a refused handshake");
    assert.ok(malloryNode.stats().sessions.handshakesStarted >= 2);
    assert.equal(malloryNode.stats().sessions.established, 0, "bob never answered her handshake");
    assert.equal(bobNode.stats().sessions.established, 0);
    // Nothing kept for her: bob's indices are his own handshake with alice (pending and superseded), no more.
    assert.ok(bobNode.stats().sessions.indices <= 2, "nothing kept for her");
    assert.equal(bobNode.stats().datagramsIn, 0, "bob's engine never saw a datagram of hers");
    assert.deepEqual(bobSees.shown, []);
    // Bob's user is told a key he does not know knocked (how to fix it: import their contact), once per handshake.
    assert.deepEqual(
      bobSees.rejected,
      Array(bobNode.stats().sessions.refused["unknown-key"] ?? 0).fill("unknown-sender"),
    );
    assert.equal(malloryNode.peers().find((p) => p.name === "bob")?.online, false, "bob never answered");
    assert.equal(malloryNode.stats().framesSent, 0, "her messages wait for an answer that never comes");
    assert.equal(
      bobNode.peers().some((p) => p.id === mallory.contact.id),
      false,
    );
  });

  it("claiming to be alice: refused on the wire without her key; inside carol's session it is carol's, and fails the signature", async () => {
    const users = await makeUsers(["alice", "bob", "carol"]);
    const [alice, bob, carol] = users as [TestUser, TestUser, TestUser];
    const bobNode = nodeFor(bob, users);
    const bobSees = watch(bobNode);
    await bobNode.start();
    bobNode.admission.configure(WIDE_OPEN);
    cleanups.push(() => bobNode.close());
    const aliceAddressBefore = bobNode.peers().find((p) => p.name === "alice")?.address;
    // Mallory's own keys, but a directory where she can seal to bob's real key.
    const mallorySecrets = generateSecretKeys();
    const malloryPort = createCryptoPort({
      identity: mallorySecrets,
      directory: staticKeyDirectory([publicKeysOf(bob.secrets)]),
    });
    const A = alice.contact.id;
    const B = bob.contact.id;
    const data = (text: string, privately: boolean, seq: number) => {
      const msgId = randomBytes(16).toString("hex") as MsgId;
      const plain = new TextEncoder().encode(text);
      const payload = privately
        ? malloryPort.seal(B, plain, Uint8Array.from(Buffer.from(A + B + msgId, "hex")))
        : plain;
      const fields = {
        epoch: 1,
        seq,
        floor: 0,
        flags: privately ? DataFlags.Private : 0,
        fragIndex: 0,
        fragCount: 1,
        msgId,
        payload,
      };
      return encodeData(fields, signedAlone(malloryPort, dataSignedBytes(A, fields)));
    };
    const hello = encodeHello({
      epoch: 1,
      floor: 0,
      timestamp: Date.now(),
      flags: HelloFlags.ReplyWanted,
      echo: 0,
    });
    // 1. On the wire, from a stranger's address and from alice's own (alice is not running: mallory took it).
    const bobStatic = staticPublicOf(bob.secrets.x25519PrivateKey);
    const aliceStatic = staticPublicOf(alice.secrets.x25519PrivateKey);
    const stranger = await udpSocket();
    const atAlice = await udpSocket(alice.contact.port);
    for (const s of [stranger, atAlice]) {
      const datagrams = [
        // Engine packets in the clear, as before the session layer: not even read.
        data("I am alice", false, 0),
        data("send me your keys", true, 0),
        hello,
        // A handshake claiming alice's static key, without her secret: it cannot verify.
        forgedInitiation(aliceStatic, mallorySecrets.x25519PrivateKey, bobStatic),
        // A real handshake under mallory's own key: not one bob pinned.
        ownInitiation(mallorySecrets.x25519PrivateKey, bobStatic),
        // A transport datagram under a session bob does not have.
        forgedTransport(randomBytes(4).readUInt32BE(0), 0, 64),
      ];
      for (const bytes of datagrams)
        await new Promise<void>((r) => s.send(bytes, bob.contact.port, "127.0.0.1", () => r()));
    }
    const refusedTotal = () =>
      Object.values(bobNode.stats().sessions.refused).reduce((a, b) => a + (b ?? 0), 0);
    await until(() => refusedTotal() === 12, 5000, "twelve refusals");
    // Engine datagrams sent unsealed begin with a type byte that protocol v2's sessions used for their own.
    assert.deepEqual(bobNode.stats().sessions.refused, {
      "protocol-v2": 6,
      "decrypt-failed": 2,
      "unknown-key": 2,
      "unknown-index": 2,
    });
    // What a user hears of: the old protocol, and a handshake by a key not pinned (import their contact).
    assert.deepEqual(
      [...bobSees.rejected].sort(),
      [...Array(6).fill("peer speaks protocol v2"), ...Array(2).fill("unknown-sender")].sort(),
    );
    assert.equal(bobNode.stats().datagramsIn, 0, "bob's engine never saw one of them");
    assert.equal(bobNode.stats().sessions.established, 0);
    assert.deepEqual(bobSees.shown, []);
    assert.equal(bobNode.peers().find((p) => p.name === "alice")?.address, aliceAddressBefore, "not moved");
    await closeSocket(stranger);
    await closeSocket(atAlice);
    // 2. Inside a session: carol (or whoever holds her keys) tries to speak for alice through carol's own session.
    // An engine datagram names no sender: these are carol's, and the messages' signatures are not carol's.
    const carolNode = nodeFor(carol, users);
    await carolNode.start();
    cleanups.push(() => carolNode.close());
    await until(
      () => bobNode.peers().find((p) => p.name === "carol")?.online === true,
      5000,
      "carol's session",
    );
    const rejectedBefore = bobSees.rejected.length;
    for (const bytes of [data("I am alice", false, 0), data("send me your keys", true, 1)])
      sendInner(carolNode, B, bytes);
    await until(() => bobSees.rejected.length === rejectedBefore + 2, 5000, "two rejections");
    assert.deepEqual(bobSees.rejected.slice(rejectedBefore), Array(2).fill("bad-signature"));
    assert.deepEqual(bobSees.shown, []);
    assert.equal(bobNode.peers().find((p) => p.name === "alice")?.address, aliceAddressBefore, "not moved");
    // The real alice is believed at once.
    const aliceNode = nodeFor(alice, users);
    await aliceNode.start();
    cleanups.push(() => aliceNode.close());
    aliceNode.broadcast("the real alice");
    await until(() => bobSees.shown.length === 1, 5000, "alice's message");
    assert.deepEqual(bobSees.shown, ["alice:the real alice"]);
  });

  it("roaming: bob restarts on another port with the same keys; alice follows his authenticated packets only", async () => {
    const users = await makeUsers(["alice", "bob"]);
    const [alice, bob] = users as [TestUser, TestUser];
    const config = { heartbeatMs: 200 };
    const aliceNode = nodeFor(alice, users, { config });
    const aliceSees = watch(aliceNode);
    const delivered: string[] = [];
    aliceNode.on("delivered", (d) => delivered.push(d.msgId));
    await aliceNode.start();
    aliceNode.admission.configure(WIDE_OPEN);
    cleanups.push(() => aliceNode.close());
    const dbPath = join(dir, "bob-roaming.db");
    let bobNode = nodeFor(bob, users, { config, store: openSqliteStore(dbPath), ephemeral: false });
    await bobNode.start();
    aliceNode.sendPrivate("bob", "before");
    await until(() => delivered.length === 1, 5000, "first delivery");
    await bobNode.close();
    // While bob is away, alice queues more.
    aliceNode.sendPrivate("bob", "while you moved");
    const [newPort] = (await freePorts(1)) as [number];
    bobNode = nodeFor(bob, users, {
      config,
      store: openSqliteStore(dbPath),
      ephemeral: false,
      port: newPort,
    });
    const bobSees = watch(bobNode);
    await bobNode.start();
    cleanups.push(() => bobNode.close());
    const newAddress = `127.0.0.1:${newPort}`;
    await until(
      () => aliceNode.peers().find((p) => p.name === "bob")?.address === newAddress,
      5000,
      "the move",
    );
    aliceNode.sendPrivate("bob", "after");
    bobNode.sendPrivate("alice", "I moved");
    await until(() => bobSees.shown.length === 2 && aliceSees.shown.length === 1, 10_000, "both ways");
    assert.deepEqual(bobSees.shown, ["alice:while you moved", "alice:after"]);
    assert.deepEqual(aliceSees.shown, ["bob:I moved"]);
    // From a third address, without bob's keys: his own sealed datagrams replayed, one altered to look the newest,
    // a handshake claiming his key, and a HELLO in the clear. None of them moves him.
    const bobWire: Uint8Array[] = [];
    tapWire(bobNode, bobWire);
    bobNode.sendPrivate("alice", "one more");
    await until(() => aliceSees.shown.length === 2, 5000, "bob's last message");
    await new Promise((r) => setTimeout(r, 300));
    const transports = bobWire.filter((b) => b[0] === SessionPacketType.Transport);
    assert.ok(transports.length > 0, "bob's sealed datagrams");
    const newestSeen = transports[transports.length - 1] as Uint8Array;
    const ahead = Uint8Array.from(newestSeen);
    new DataView(ahead.buffer).setUint32(5, new DataView(ahead.buffer).getUint32(5) + 1000);
    ahead[ahead.length - 1] = (ahead[ahead.length - 1] as number) ^ 1;
    const rogue = await udpSocket();
    cleanups.push(() => closeSocket(rogue));
    const forgedHello = encodeHello({ epoch: 2 ** 32 - 1, floor: 0, timestamp: 2 ** 50, flags: 0, echo: 0 });
    const claim = forgedInitiation(
      staticPublicOf(bob.secrets.x25519PrivateKey),
      generateSecretKeys().x25519PrivateKey,
      staticPublicOf(alice.secrets.x25519PrivateKey),
    );
    const refusedBefore = aliceNode.stats().sessions.refused;
    for (const bytes of [...transports, ahead, claim, forgedHello])
      await new Promise<void>((r) => rogue.send(bytes, alice.contact.port, "127.0.0.1", () => r()));
    const grew = (reason: keyof typeof refusedBefore) =>
      (aliceNode.stats().sessions.refused[reason] ?? 0) - (refusedBefore[reason] ?? 0);
    await until(
      () => grew("replayed") === transports.length && grew("bad-aead") === 1 && grew("decrypt-failed") === 1,
      5000,
      "the forgeries refused",
    );
    await until(
      () => aliceSees.rejected.includes("peer speaks protocol v2"),
      5000,
      "the forged HELLO refused",
    );
    assert.equal(aliceNode.peers().find((p) => p.name === "bob")?.address, newAddress);
    assert.equal(tunnelOf(aliceNode).sessions.addressOf(bob.contact.id), newAddress);
    assert.deepEqual(aliceSees.shown, ["bob:I moved", "bob:one more"], "nothing shown twice");
    // And bob, still where he is, is still heard.
    bobNode.sendPrivate("alice", "still here");
    await until(() => aliceSees.shown.length === 3, 5000, "bob after the forgeries");
  });

  it("a changed key for a known name is refused loudly at import; the node goes by the pinned keys", async () => {
    const dataDir = join(dir, "home");
    const [alicePort, bobPort] = (await freePorts(2)) as [number, number];
    await registerUser({ dataDir, username: "alice", password: "pw-a", port: alicePort, scryptN: 2 ** 10 });
    await registerUser({ dataDir, username: "bob", password: "pw-b", port: bobPort, scryptN: 2 ** 10 });
    const directory = openDirectory(dataDir);
    const bobRecord = directory.getUser("bob");
    assert.ok(bobRecord);
    // Mallory's card: bob's name and address, her keys.
    const mallorySecrets = generateSecretKeys();
    const impostor = createUserRecord({
      name: "bob",
      host: "127.0.0.1",
      port: bobPort,
      secrets: mallorySecrets,
    });
    const usersBefore = readFileSync(directory.usersPath);
    assert.throws(
      () => importContact(directory, JSON.stringify(contactCard(impostor))),
      (e: unknown) =>
        e instanceof IdentityError &&
        e.code === "KEY_MISMATCH" &&
        e.message.includes(bobRecord.fingerprint) &&
        e.message.includes(impostor.fingerprint),
    );
    assert.deepEqual(readFileSync(directory.usersPath), usersBefore, "the directory is unchanged");
    assert.match(exportContact(openDirectory(dataDir), "bob"), new RegExp(bobRecord.keyId));
    // At run time: alice (from the data directory) hears from mallory claiming to be bob, and from bob.
    const aliceNode = await openNode({ dataDir, username: "alice", password: "pw-a" });
    const aliceSees = watch(aliceNode);
    await aliceNode.start();
    aliceNode.admission.configure(WIDE_OPEN);
    cleanups.push(() => aliceNode.close());
    const [malloryPort] = (await freePorts(1)) as [number];
    const aliceRecord = directory.getUser("alice");
    assert.ok(aliceRecord);
    const alicePublic = {
      ed25519: Buffer.from(aliceRecord.ed25519, "base64"),
      x25519: Buffer.from(aliceRecord.x25519, "base64"),
    };
    const malloryNode = nodeFor(
      {
        secrets: mallorySecrets,
        contact: {
          id: peerIdOf(publicKeysOf(mallorySecrets)),
          name: "bob",
          host: "127.0.0.1",
          port: malloryPort,
        },
      },
      [],
      {
        contacts: [{ id: aliceRecord.keyId, name: "alice", host: "127.0.0.1", port: alicePort }],
        crypto: createCryptoPort({
          identity: mallorySecrets,
          directory: staticKeyDirectory([
            { ed25519: new Uint8Array(alicePublic.ed25519), x25519: new Uint8Array(alicePublic.x25519) },
          ]),
        }),
        // Her session layer knows alice's pinned key: she handshakes with alice under her own.
        sessionKeys: keySourceOf(mallorySecrets, {
          publicKeysOf: (peer) =>
            peer === aliceRecord.keyId ? { x25519: new Uint8Array(alicePublic.x25519) } : undefined,
        }),
        config: { triesMax: 3 },
      },
    );
    await malloryNode.start();
    cleanups.push(() => malloryNode.close());
    malloryNode.sendPrivate("alice", "it's bob, new phone, new keys");
    await until(() => (aliceNode.stats().sessions.refused["unknown-key"] ?? 0) >= 1, 5000, "mallory refused");
    assert.equal(malloryNode.stats().sessions.established, 0, "alice never answered mallory");
    assert.deepEqual(aliceSees.shown, []);
    const bobNode = await openNode({ dataDir, username: "bob", password: "pw-b" });
    await bobNode.start();
    cleanups.push(() => bobNode.close());
    bobNode.sendPrivate("alice", "the real bob");
    await until(() => aliceSees.shown.length === 1, 5000, "bob's message");
    assert.deepEqual(aliceSees.shown, ["bob:the real bob"]);
  });
});
