/**
 * Replays over real UDP, at both layers, at once, later, and after both nodes restart on their SQLite stores
 * (same epoch):
 *
 * - On the wire (an attacker without keys): every sealed datagram of a session (handshakes, and transports
 *   carrying DATA, private DATA, fragments, ACKs, HELLOs, both ways) is captured and sent again, from a stranger's
 *   address and from the genuine sender's own address (as an on-path attacker spoofing it would). The session
 *   layer refuses every one (replayed counter, unknown index, replayed initiation): none reaches the engine.
 * - Through a session (an attacker holding the sender's session keys): every engine datagram the sender handed its
 *   session is sealed again under it. The engine refuses every one (duplicate, replayed HELLO, an ACK that
 *   acknowledges nothing).
 *
 * 0 accepted: no message shown or stored again, nothing newly acknowledged, no HELLO taken as fresh, no peer
 * address moved.
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
import type { SessionRefusal } from "../../src/session/events.ts";
import { SessionPacketType } from "../../src/session/wire.ts";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import { makeUsers, nodeFor, type TestUser, until } from "../helpers/loopback-nodes.ts";
import {
  addressOf,
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
/** HELLOs every 250 ms, so that the session has several each way to replay. */
const CONFIG = { heartbeatMs: 250 };
/** The only reasons a replayed wire datagram may be refused for. */
const REPLAY_REFUSALS: readonly SessionRefusal[] = ["replayed", "unknown-index", "replayed-initiation"];

interface Watched {
  node: ChatNode;
  user: TestUser;
  shown: string[];
  delivered: string[];
}

const sum = (r: Partial<Record<string, number>>) =>
  Object.values(r).reduce((x: number, y) => x + (y ?? 0), 0);

describe("replayed datagrams are never accepted", { timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "chatnode-replay-"));
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  it("at once, later, and after both nodes restart with their stores", async (t) => {
    const users = await makeUsers(["alice", "bob"]);
    const [alice, bob] = users as [TestUser, TestUser];
    const wire: WireRecord[] = [];
    const taps: Array<{ stop(): void }> = [];
    let recording = true;
    const start = async (user: TestUser): Promise<Watched> => {
      const node = nodeFor(user, users, {
        store: openSqliteStore(join(dir, `${user.contact.name}.db`)),
        ephemeral: false,
        config: CONFIG,
      });
      const w: Watched = { node, user, shown: [], delivered: [] };
      node.on("message", (m) => w.shown.push(m.text));
      node.on("delivered", (d) => w.delivered.push(d.msgId));
      await node.start();
      // Tapped at once (first life only), so that the handshake is captured too.
      if (recording) taps.push(tapWire(node, wire));
      node.admission.configure(WIDE_OPEN); // the nodes themselves must refuse every replay
      cleanups.push(() => node.close());
      return w;
    };
    let a = await start(alice);
    let b = await start(bob);
    const inner = new Capture();
    tapInner(a.node, inner);
    tapInner(b.node, inner);

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
    for (const tap of taps) tap.stop();
    recording = inner.recording = false;
    const types = (type: PacketType) => inner.count(type);
    const wireTypes = (type: number) => wire.filter((w) => w.bytes[0] === type).length;
    t.diagnostic(
      `captured ${wire.length} wire datagrams (${wireTypes(SessionPacketType.Initiation)} initiations, ` +
        `${wireTypes(SessionPacketType.Response)} responses, ${wireTypes(SessionPacketType.Transport)} transports), ` +
        `carrying ${inner.all.length} engine datagrams: ${types(PacketType.Data)} DATA, ${types(PacketType.Batch)} BATCH, ` +
        `${types(PacketType.Ack)} ACK, ${types(PacketType.Hello)} HELLO`,
    );
    const frames = inner.all.reduce((n, c) => n + (c.frames ?? 0), 0);
    assert.ok(frames >= 15 && types(PacketType.Ack) >= 2 && types(PacketType.Hello) >= 4, `${frames} frames`);
    const handshakes = wireTypes(SessionPacketType.Initiation) + wireTypes(SessionPacketType.Response);
    assert.ok(handshakes >= 1, "a handshake captured");
    assert.ok(wireTypes(SessionPacketType.Transport) >= inner.all.length);
    const epochOf = (id: PeerId) => inner.all.find((c) => c.sender === id && c.frames !== undefined)?.epoch;
    const epochs = { alice: epochOf(alice.contact.id), bob: epochOf(bob.contact.id) };

    const rogue = await udpSocket();
    cleanups.push(() => closeSocket(rogue));
    let accepted = 0;
    const totals = {
      wire: 0,
      inner: 0,
      refused: {} as Partial<Record<string, number>>,
      duplicates: 0,
      hellos: 0,
    };

    const snapshot = () =>
      [a, b].map((w) => ({
        stats: w.node.stats(),
        shown: w.shown.length,
        delivered: w.delivered.length,
        history: w.node.history(1000).length,
        addresses: w.node.peers().map((p) => p.address),
      }));
    /** What a replay must never change at the engine, whichever layer refused it. */
    const assertNothingAccepted = (name: string, w: Watched, was: ReturnType<typeof snapshot>[number]) => {
      const s = w.node.stats();
      const d = (k: "messagesDelivered" | "framesAcked" | "messagesAcked") => s[k] - was.stats[k];
      accepted +=
        d("messagesDelivered") +
        d("framesAcked") +
        d("messagesAcked") +
        (w.shown.length - was.shown) +
        (w.delivered.length - was.delivered);
      assert.equal(d("messagesDelivered"), 0, `${name}: no message delivered again`);
      assert.equal(w.shown.length, was.shown, `${name}: nothing shown again`);
      assert.equal(d("framesAcked"), 0, `${name}: nothing newly acknowledged`);
      assert.equal(w.delivered.length, was.delivered, `${name}: no delivered event`);
      assert.equal(w.node.history(1000).length, was.history, `${name}: nothing stored`);
      assert.deepEqual(
        w.node.peers().map((p) => p.address),
        was.addresses,
        `${name}: no address moved`,
      );
    };
    const nodeAt = (port: number) => (port === alice.contact.port ? a : b);

    /**
     * Sends every captured wire datagram to the node that received it, from `from(sender)`: the session layer
     * refuses all, after a restart too (the newest initiation timestamp of each peer is kept in the node's store).
     */
    const replayWire = async (label: string, from: (sender: ChatNode) => Socket) => {
      const nodes = [a, b];
      const before = snapshot();
      const sentTo = new Map<ChatNode, number>();
      const initiationsTo = new Map<ChatNode, number>();
      for (const r of wire) {
        const to = nodeAt(r.to);
        await new Promise<void>((resolve) =>
          from(nodeAt(r.from).node).send(r.bytes, to.user.contact.port, "127.0.0.1", () => resolve()),
        );
        sentTo.set(to.node, (sentTo.get(to.node) ?? 0) + 1);
        if (r.bytes[0] === SessionPacketType.Initiation)
          initiationsTo.set(to.node, (initiationsTo.get(to.node) ?? 0) + 1);
        totals.wire++;
      }
      const refusedSince = (i: number) => {
        const now = nodes[i]?.node.stats().sessions.refused ?? {};
        const was = before[i]?.stats.sessions.refused ?? {};
        const out: Partial<Record<string, number>> = {};
        for (const [k, v] of Object.entries(now))
          if ((v ?? 0) > (was[k as SessionRefusal] ?? 0)) out[k] = (v ?? 0) - (was[k as SessionRefusal] ?? 0);
        return out;
      };
      for (const [i, w] of nodes.entries()) {
        const sent = sentTo.get(w.node) ?? 0;
        await until(
          () => sum(refusedSince(i)) >= sent,
          5000,
          `${w.user.contact.name} to refuse the replays`,
        ).catch((e: Error) => {
          throw new Error(`${label}: ${e.message}: ${sent} sent, refused ${JSON.stringify(refusedSince(i))}`);
        });
      }
      await new Promise((r) => setTimeout(r, 100)); // anything a replay set off arrives too
      for (const [i, w] of nodes.entries()) {
        const was = before[i];
        assert.ok(was);
        const name = `${label}: ${w.user.contact.name}`;
        const refused = refusedSince(i);
        const sent = sentTo.get(w.node) ?? 0;
        const initiations = initiationsTo.get(w.node) ?? 0;
        for (const [k, v] of Object.entries(refused)) totals.refused[k] = (totals.refused[k] ?? 0) + (v ?? 0);
        for (const reason of Object.keys(refused))
          assert.ok(REPLAY_REFUSALS.includes(reason as SessionRefusal), `${name}: refused as ${reason}`);
        const staleInitiations = refused["replayed-initiation"] ?? 0;
        assert.ok(
          staleInitiations <= initiations,
          `${name}: only initiations refused as replayed initiations`,
        );
        // Every response, transport and initiation refused, after the restart too.
        // (A replay from the sender's own address of a session the recipient no longer has makes it handshake
        // with the real sender: that handshake's stray responses may add refusals of their own.)
        const other = nodes[1 - i];
        const strays =
          (other?.node.stats().sessions.handshakesStarted ?? 0) -
          (before[1 - i]?.stats.sessions.handshakesStarted ?? 0);
        const expected = sent;
        accepted += Math.max(0, expected - sum(refused));
        assert.ok(
          sum(refused) >= expected && sum(refused) <= expected + strays,
          `${name}: every replay refused by the session layer, once (${sum(refused)} refused, ${expected} expected)`,
        );
        const s = w.node.stats();
        // None reached the engine: it saw no duplicate and refused nothing (only genuine heartbeats arrived).
        assert.equal(s.duplicates, was.stats.duplicates, `${name}: no replay reached the engine`);
        assert.equal(sum(s.rejected), sum(was.stats.rejected), `${name}: the engine refused nothing`);
        assertNothingAccepted(name, w, was);
        t.diagnostic(
          `${name}: ${sent} wire datagrams replayed → refused by the session layer ${JSON.stringify(refused)}`,
        );
      }
    };

    /**
     * Seals every captured engine datagram again under its sender's session with its recipient (the attacker who
     * holds the sender's session keys): the engine refuses all. After a restart (`newEpochs`), each sender is in a
     * newer epoch (src/node/restore.ts): everything captured before is refused as stale-epoch.
     */
    const replayInner = async (label: string, newEpochs = false) => {
      const nodes = [a, b];
      const before = snapshot();
      const sentTo = new Map<ChatNode, number>();
      const hellosTo = new Map<ChatNode, number>();
      const dataTo = new Map<ChatNode, number>();
      for (const [i, c] of inner.all.entries()) {
        const [from, to] = c.recipient === alice.contact.id ? [b, a] : [a, b];
        if (c.type === PacketType.Hello) hellosTo.set(to.node, (hellosTo.get(to.node) ?? 0) + 1);
        // Each frame of a DATA or a BATCH replayed is one duplicate.
        if (c.frames) dataTo.set(to.node, (dataTo.get(to.node) ?? 0) + c.frames);
        sendInner(from.node, c.recipient, c.bytes);
        sentTo.set(to.node, (sentTo.get(to.node) ?? 0) + 1);
        totals.inner++;
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 1));
      }
      const staleHellos = (i: number) =>
        (nodes[i]?.node.stats().rejected["replayed-hello"] ?? 0) -
        (before[i]?.stats.rejected["replayed-hello"] ?? 0);
      const duplicates = (i: number) =>
        (nodes[i]?.node.stats().duplicates ?? 0) - (before[i]?.stats.duplicates ?? 0);
      const staleEpoch = (i: number) =>
        (nodes[i]?.node.stats().rejected["stale-epoch"] ?? 0) -
        (before[i]?.stats.rejected["stale-epoch"] ?? 0);
      for (const [i, w] of nodes.entries()) {
        await until(
          () =>
            w.node.stats().datagramsIn - (before[i]?.stats.datagramsIn ?? 0) >= (sentTo.get(w.node) ?? 0) &&
            (newEpochs
              ? staleEpoch(i) >= (sentTo.get(w.node) ?? 0)
              : staleHellos(i) >= (hellosTo.get(w.node) ?? 0) && duplicates(i) >= (dataTo.get(w.node) ?? 0)),
          5000,
          `${w.user.contact.name} to receive the replays`,
        ).catch((e: Error) => {
          throw new Error(
            `${label}: ${e.message}: ${staleHellos(i)}/${hellosTo.get(w.node) ?? 0} HELLOs refused as replays, ` +
              `${duplicates(i)}/${dataTo.get(w.node) ?? 0} DATA dropped as duplicates`,
          );
        });
      }
      await new Promise((r) => setTimeout(r, 100)); // the answers a duplicate gets (an ACK) arrive too
      for (const [i, w] of nodes.entries()) {
        const was = before[i];
        assert.ok(was);
        const s = w.node.stats();
        const name = `${label}: ${w.user.contact.name}`;
        // Genuine heartbeats go on arriving; each replayed HELLO must be refused as a replay.
        if (newEpochs) {
          // At least every replay (the peer's genuine datagrams still under way from before its restart are too).
          assert.ok(
            staleEpoch(i) >= (sentTo.get(w.node) ?? 0),
            `${name}: every replay refused as stale-epoch`,
          );
        } else {
          const helloReplays = hellosTo.get(w.node) ?? 0;
          accepted += helloReplays - staleHellos(i);
          assert.equal(staleHellos(i), helloReplays, `${name}: every replayed HELLO refused as a replay`);
        }
        assertNothingAccepted(name, w, was);
        totals.duplicates += duplicates(i);
        totals.hellos += staleHellos(i);
        t.diagnostic(
          `${name}: ${sentTo.get(w.node)} engine datagrams replayed through the sender's session → ` +
            `${duplicates(i)} duplicates, ${staleHellos(i)} replayed HELLOs, ${staleEpoch(i)} stale-epoch, ` +
            `${s.acksReceived - was.stats.acksReceived} ACKs that acknowledged nothing`,
        );
      }
    };
    const genuine = (sender: ChatNode) => socketOf(sender);

    await replayWire("at once, from a stranger", () => rogue);
    await replayWire("at once, from the sender's own address", genuine);
    await replayInner("at once, through the sender's session");
    await new Promise((r) => setTimeout(r, 1500));
    await replayWire("1.5 s later, from a stranger", () => rogue);
    await replayWire("1.5 s later, from the sender's own address", genuine);
    await replayInner("1.5 s later, through the sender's session");

    // Restart both on their databases.
    await a.node.close();
    await b.node.close();
    a = await start(alice);
    b = await start(bob);
    // The start-up HELLOs (fresh ones) are exchanged first, over new sessions; then nothing moves.
    await until(
      () => a.node.stats().hellosReceived >= 1 && b.node.stats().hellosReceived >= 1,
      5000,
      "HELLOs",
    );
    await new Promise((r) => setTimeout(r, 200));
    const nowOf = (n: ChatNode) => (n as unknown as { now(): number }).now();
    assert.ok(tunnelOf(a.node).sessions.hasSession(bob.contact.id, nowOf(a.node)), "a new session");
    assert.ok(tunnelOf(b.node).sessions.hasSession(alice.contact.id, nowOf(b.node)), "both ways");
    for (const [name, expected] of Object.entries(epochs)) {
      const store = openSqliteStore(join(dir, `${name}.db`));
      assert.ok(
        Number(store.getMeta("epoch")) > (expected ?? Number.POSITIVE_INFINITY),
        `${name}: a newer epoch`,
      );
      store.close();
    }
    await replayWire("after restart, from a stranger", () => rogue);
    await replayWire("after restart, from the sender's own address", genuine);
    await replayInner("after restart, through the sender's session", true);
    t.diagnostic(
      `${totals.wire} wire datagrams replayed, refused by the session layer: ${JSON.stringify(totals.refused)}` +
        "; " +
        `${totals.inner} engine datagrams replayed through the sender's session: ${totals.duplicates} duplicates, ` +
        `${totals.hellos} replayed HELLOs; ${accepted} accepted`,
    );
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
