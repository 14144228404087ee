import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { after, describe, test } from "node:test";
import { publicKeysOf } from "../../src/crypto/keys.ts";
import { staticKeyDirectory } from "../../src/crypto/port.ts";
import type { ChatNode } from "../../src/node/chat-node.ts";
import { staticKeyPair } from "../../src/session/handshake.ts";
import { keySourceOf, sessionPeers } from "../../src/session/key-source.ts";
import { Sessions } from "../../src/session/sessions.ts";
import { SessionPacketType } from "../../src/session/wire.ts";
import { makeUsers, nodeFor, type TestUser, until } from "../helpers/loopback-nodes.ts";

interface Sent {
  from: string;
  to: string;
  bytes: Uint8Array;
}

/** Records every datagram `node`'s socket sends (a private field: tests only), as a capturing proxy would. */
function record(node: ChatNode, into: Sent[]): void {
  const socket = (node as unknown as { socket: Socket }).socket;
  const send = socket.send.bind(socket) as (...args: unknown[]) => void;
  (socket as unknown as { send: (...args: unknown[]) => void }).send = (...args: unknown[]) => {
    const [bytes, port, host] = args;
    if (bytes instanceof Uint8Array)
      into.push({ from: node.username, to: `${host}:${port}`, bytes: Uint8Array.from(bytes) });
    send(...args);
  };
}

const TEXTS = ["the launch code is 0451", "meet at the old mill", "private: bring the map"];

describe("sessions on the wire", { timeout: 60_000 }, () => {
  const closers: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const close of closers) await close();
  });

  async function conversation(): Promise<{ users: TestUser[]; wire: Sent[]; nodes: ChatNode[] }> {
    const users = await makeUsers(["alice", "bob"]);
    const nodes = users.map((u) => nodeFor(u, users));
    const wire: Sent[] = [];
    const seen = new Map<string, string[]>();
    for (const n of nodes) {
      seen.set(n.username, []);
      n.on("message", (m) => seen.get(n.username)?.push(m.text));
    }
    await Promise.all(nodes.map((n) => n.start()));
    closers.push(() => Promise.all(nodes.map((n) => n.close())));
    for (const n of nodes) record(n, wire);
    const [alice, bob] = nodes as [ChatNode, ChatNode];
    alice.broadcast(TEXTS[0] as string);
    bob.broadcast(TEXTS[1] as string);
    alice.sendPrivate("bob", TEXTS[2] as string);
    await until(
      () => (seen.get("bob")?.length ?? 0) === 2 && (seen.get("alice")?.length ?? 0) === 1,
      20_000,
      "delivery",
    );
    return { users, wire, nodes };
  }

  test("a capture of a conversation holds no text, no name, no key id: only session datagrams", async () => {
    const { users, wire } = await conversation();
    assert.ok(wire.length >= 6, `only ${wire.length} datagrams recorded`);
    const needles = [...TEXTS, "alice", "bob", ...users.map((u) => u.contact.id)];
    for (const d of wire) {
      assert.ok(
        [SessionPacketType.Initiation, SessionPacketType.Response, SessionPacketType.Transport].includes(
          d.bytes[0] as 4 | 5 | 6,
        ),
        `a datagram of type ${d.bytes[0]} on the wire`,
      );
      const bytes = Buffer.from(d.bytes);
      for (const needle of needles)
        assert.ok(!bytes.includes(Buffer.from(needle)), `"${needle}" on the wire`);
      // Not even fragments of a text: no 6-byte run of any of them.
      for (const t of TEXTS)
        for (let i = 0; i + 6 <= t.length; i += 3)
          assert.ok(!bytes.includes(Buffer.from(t.slice(i, i + 6))), `"${t.slice(i, i + 6)}" on the wire`);
    }
  });

  test("both users' stolen keys open nothing that was recorded", async () => {
    const { users, wire } = await conversation();
    const directory = staticKeyDirectory(users.map((u) => publicKeysOf(u.secrets)));
    let opened = 0;
    for (const thief of users) {
      // The thief runs a session layer with the stolen keys (what a restarted node would be) and feeds it the lot.
      const keys = keySourceOf(thief.secrets, directory);
      const peers = sessionPeers(
        users
          .filter((u) => u !== thief)
          .map((u) => ({ id: u.contact.id, address: `127.0.0.1:${u.contact.port}` })),
        keys,
      );
      const sessions = new Sessions(staticKeyPair(keys.privateKey), peers, (n) =>
        crypto.getRandomValues(new Uint8Array(n)),
      );
      for (const d of wire.filter((w) => w.to.endsWith(`:${thief.contact.port}`)))
        if (sessions.receive(Date.now(), `127.0.0.1:1`, d.bytes)) opened++;
      const refused = sessions.stats().refused;
      assert.ok((refused["unknown-index"] ?? 0) > 0, "no transport datagram reached the thief's sessions");
    }
    assert.equal(opened, 0, "a recorded datagram opened with stolen long-term keys");
  });

  test("a datagram of the old protocol is refused with a line that says so", async () => {
    const users = await makeUsers(["alice", "bob"]);
    const bob = nodeFor(users[1] as TestUser, users);
    const rejected: string[] = [];
    bob.on("rejected", (r) => rejected.push(r.reason));
    await bob.start();
    closers.push(() => bob.close());
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
    closers.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    // The first bytes of every protocol-v1 (engine wire version 3) datagram: magic "CN", version 3, type HELLO.
    socket.send(Uint8Array.of(0x43, 0x4e, 3, 3, ...new Uint8Array(40)), bob.port, "127.0.0.1");
    await until(() => rejected.length > 0, 10_000, "the refusal");
    assert.deepEqual(rejected, ["peer speaks protocol v1"]);
    assert.equal(bob.stats().sessions.refused["protocol-v1"], 1);
    // And a protocol-v2 initiation (session type 1, then sender index, Noise message, mac1: 125 bytes).
    socket.send(Uint8Array.of(0x01, ...new Uint8Array(124)), bob.port, "127.0.0.1");
    await until(() => rejected.length > 1, 10_000, "the second refusal");
    assert.deepEqual(rejected, ["peer speaks protocol v1", "peer speaks protocol v2"]);
    assert.equal(bob.stats().sessions.refused["protocol-v2"], 1);
  });
});
