/**
 * Replays over real UDP: every datagram of a session (DATA, private DATA, fragments, ACKs, HELLOs, both ways) is
 * captured, then sent again at once, later, and after both nodes restart on their SQLite stores (same epoch): each
 * time from a stranger's address and from the genuine sender's own address (as an on-path attacker spoofing it
 * would). 0 accepted: no message shown or stored again, nothing newly acknowledged, no HELLO taken as fresh, no
 * peer address moved.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { PeerId } from "../../src/engine/types.ts";
import { PacketType } from "../../src/engine/wire.ts";
import type { ChatNode } from "../../src/node/chat-node.ts";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import { makeUsers, nodeFor, type TestUser, until } from "../helpers/loopback-nodes.ts";
import { addressOf, Capture, closeSocket, socketOf, tapSends, udpSocket } from "./helpers/capture.ts";

const WIDE_OPEN = { sourceRatePerSec: 1e9, sourceBurst: 1e9, globalRatePerSec: 1e9, globalBurst: 1e9 };
/** HELLOs every 250 ms, so that the session has several each way to replay. */
const CONFIG = { heartbeatMs: 250 };

interface Watched {
  node: ChatNode;
  user: TestUser;
  shown: string[];
  delivered: string[];
  rejected: Map<string, number>;
}

describe("replayed datagrams are never accepted", { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "chatnode-replay-"));
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  it("at once, later, and after both nodes restart with their stores", async (t) => {
    const users = await makeUsers(["alice", "bob"]);
    const [alice, bob] = users as [TestUser, TestUser];
    const start = async (user: TestUser): Promise<Watched> => {
      const node = nodeFor(user, users, {
        store: openSqliteStore(join(dir, `${user.contact.name}.db`)),
        ephemeral: false,
        config: CONFIG,
      });
      const w: Watched = { node, user, shown: [], delivered: [], rejected: new Map() };
      node.on("message", (m) => w.shown.push(m.text));
      node.on("delivered", (d) => w.delivered.push(d.msgId));
      node.on("rejected", (r) => w.rejected.set(r.reason, (w.rejected.get(r.reason) ?? 0) + 1));
      await node.start();
      node.admission.configure(WIDE_OPEN); // the engine itself must refuse every replay
      cleanups.push(() => node.close());
      return w;
    };
    let a = await start(alice);
    let b = await start(bob);
    const capture = new Capture();
    tapSends(a.node, capture);
    tapSends(b.node, capture);

    // The session.
    for (let i = 0; i < 5; i++) a.node.broadcast(`a${i}`);
    a.node.sendPrivate("bob", "a-private");
    a.node.broadcast("long ".repeat(600)); // three fragments
    for (let i = 0; i < 5; i++) b.node.broadcast(`b${i}`);
    b.node.sendPrivate("alice", "b-private");
    await until(() => a.delivered.length === 7 && b.delivered.length === 6, 10_000, "the session");
    await until(
      () => a.node.stats().pending === 0 && b.node.stats().pending === 0,
      10_000,
      "all acknowledged",
    );
    await new Promise((r) => setTimeout(r, 1200)); // heartbeats both ways (about four each)
    capture.recording = false;
    const types = (type: PacketType) => capture.count(type);
    t.diagnostic(
      `captured ${capture.all.length} datagrams: ${types(PacketType.Data)} DATA, ${types(PacketType.Ack)} ACK, ${types(PacketType.Hello)} HELLO`,
    );
    assert.ok(types(PacketType.Data) >= 15 && types(PacketType.Ack) >= 2 && types(PacketType.Hello) >= 4);
    const epochOf = (id: PeerId) =>
      capture.all.find((c) => c.sender === id && c.type === PacketType.Data)?.epoch;
    const epochs = { alice: epochOf(alice.contact.id), bob: epochOf(bob.contact.id) };

    const rogue = await udpSocket();
    cleanups.push(() => closeSocket(rogue));
    let accepted = 0;
    let replayed = 0;

    /** Sends every captured datagram to its recipient from `from(sender)`, and checks that nothing was accepted. */
    const replayAll = async (label: string, from: (sender: PeerId) => Socket) => {
      const nodes = [a, b];
      const before = nodes.map((w) => ({
        stats: w.node.stats(),
        shown: w.shown.length,
        delivered: w.delivered.length,
        history: w.node.history(1000).length,
        addresses: w.node.peers().map((p) => p.address),
      }));
      const sentTo = new Map<ChatNode, number>();
      const hellosTo = new Map<ChatNode, number>();
      for (const c of capture.all) {
        const to = c.recipient === alice.contact.id ? a : b;
        if (c.type === PacketType.Hello) hellosTo.set(to.node, (hellosTo.get(to.node) ?? 0) + 1);
        await new Promise<void>((resolve) =>
          from(c.sender).send(c.bytes, to.user.contact.port, "127.0.0.1", () => resolve()),
        );
        sentTo.set(to.node, (sentTo.get(to.node) ?? 0) + 1);
        replayed++;
      }
      for (const w of nodes) {
        const i = nodes.indexOf(w);
        await until(
          () => w.node.stats().datagramsIn - (before[i]?.stats.datagramsIn ?? 0) >= (sentTo.get(w.node) ?? 0),
          5000,
          `${w.user.contact.name} to receive the replays`,
        );
      }
      await new Promise((r) => setTimeout(r, 100)); // the answers a duplicate gets (an ACK) arrive too
      for (const [i, w] of nodes.entries()) {
        const was = before[i];
        assert.ok(was);
        const s = w.node.stats();
        const d = (k: "messagesDelivered" | "framesAcked" | "messagesAcked") => s[k] - was.stats[k];
        const name = `${label}: ${w.user.contact.name}`;
        // Genuine heartbeats go on arriving; each replayed HELLO must be refused as a replay.
        const staleHellos = (s.rejected["replayed-hello"] ?? 0) - (was.stats.rejected["replayed-hello"] ?? 0);
        const helloReplays = hellosTo.get(w.node) ?? 0;
        const gained =
          d("messagesDelivered") + d("framesAcked") + d("messagesAcked") + helloReplays - staleHellos;
        accepted += gained + (w.shown.length - was.shown) + (w.delivered.length - was.delivered);
        assert.equal(d("messagesDelivered"), 0, `${name}: no message delivered again`);
        assert.equal(w.shown.length, was.shown, `${name}: nothing shown again`);
        assert.equal(d("framesAcked"), 0, `${name}: nothing newly acknowledged`);
        assert.equal(w.delivered.length, was.delivered, `${name}: no delivered event`);
        assert.equal(staleHellos, helloReplays, `${name}: every replayed HELLO refused as a replay`);
        assert.equal(w.node.history(1000).length, was.history, `${name}: nothing stored`);
        assert.deepEqual(
          w.node.peers().map((p) => p.address),
          was.addresses,
          `${name}: no address moved`,
        );
        const rejected = Object.values(s.rejected).reduce((x, y) => x + (y ?? 0), 0);
        const wasRejected = Object.values(was.stats.rejected).reduce((x, y) => x + (y ?? 0), 0);
        t.diagnostic(
          `${name}: ${sentTo.get(w.node)} replayed → ${rejected - wasRejected} rejected ` +
            `(${JSON.stringify(s.rejected)} in total), ${s.duplicates - was.stats.duplicates} duplicates, ` +
            `${s.acksReceived - was.stats.acksReceived} ACKs that acknowledged nothing`,
        );
      }
    };
    const genuine = (sender: PeerId) => socketOf(sender === alice.contact.id ? a.node : b.node);

    await replayAll("at once, from a stranger", () => rogue);
    await replayAll("at once, from the sender's own address", genuine);
    await new Promise((r) => setTimeout(r, 1500));
    await replayAll("1.5 s later, from a stranger", () => rogue);
    await replayAll("1.5 s later, from the sender's own address", genuine);

    // Restart both on their databases.
    await a.node.close();
    await b.node.close();
    a = await start(alice);
    b = await start(bob);
    // The start-up HELLOs (fresh ones) are exchanged first; then nothing moves.
    await until(
      () => a.node.stats().hellosReceived >= 1 && b.node.stats().hellosReceived >= 1,
      5000,
      "HELLOs",
    );
    await new Promise((r) => setTimeout(r, 200));
    for (const [name, expected] of Object.entries(epochs)) {
      const store = openSqliteStore(join(dir, `${name}.db`));
      assert.equal(Number(store.getMeta("epoch")), expected, `${name} kept its epoch`);
      store.close();
    }
    await replayAll("after restart, from a stranger", () => rogue);
    await replayAll("after restart, from the sender's own address", genuine);
    t.diagnostic(`${replayed} datagrams replayed in all; ${accepted} accepted`);
    assert.equal(accepted, 0);

    // And the pair still talks.
    a.node.broadcast("after the replays");
    b.node.sendPrivate("alice", "me too");
    await until(
      () => b.shown.includes("after the replays") && a.shown.includes("me too"),
      5000,
      "fresh messages",
    );
    assert.deepEqual(a.shown, ["me too"]);
    assert.deepEqual(b.shown, ["after the replays"]);
    assert.equal(addressOf(rogue).startsWith("127.0.0.1:"), true);
  });
});
