/**
 * ChatNode's two runtime promises, tested directly (each was once broken on purpose and no fast test noticed):
 * no datagram leaves before the store has committed what it acknowledges or announces, and what the outbox holds at
 * a restart is sent again.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { ChatNode } from "../../src/node/chat-node.ts";
import { createMemoryStore } from "../../src/storage/memory.ts";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import type { Store } from "../../src/storage/store.ts";
import { makeUsers, nodeFor, type TestUser, until } from "../helpers/loopback-nodes.ts";

const dir = mkdtempSync(join(tmpdir(), "chatnode-promises-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A store whose commits fail while `failing` is set, as a full disk would make them. */
function failingStore(inner: Store): { store: Store; fail(on: boolean): void } {
  let failing = false;
  const store = new Proxy(inner, {
    get(target, key) {
      if (key === "transaction" && failing)
        return () => {
          throw new Error("disk full");
        };
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store, fail: (on) => (failing = on) };
}

/** Records every datagram the node hands to its socket, in order. */
function recordSends(node: ChatNode): Uint8Array[] {
  const wire = (node as unknown as { wire: { send(to: string, bytes: Uint8Array): void } }).wire;
  const sent: Uint8Array[] = [];
  const send = wire.send.bind(wire);
  wire.send = (to, bytes) => {
    sent.push(bytes);
    send(to, bytes);
  };
  return sent;
}

describe("runtime promises", { timeout: 60_000 }, () => {
  it("no datagram leaves before the store commits: a failed commit sends nothing, the next one sends it all", async () => {
    const users = await makeUsers(["alice", "bob"]);
    const [alice, bob] = users as [TestUser, TestUser];
    const disk = failingStore(createMemoryStore());
    const aliceNode = nodeFor(alice, users, { store: disk.store, ephemeral: true });
    const bobNode = nodeFor(bob, users);
    const got: string[] = [];
    bobNode.on("message", (m) => got.push(m.text));
    let heard = false;
    aliceNode.on("peer-online", () => {
      heard = true;
    });
    await aliceNode.start();
    await bobNode.start();
    try {
      await until(() => heard, 10_000, "alice hears bob");
      const sent = recordSends(aliceNode);
      disk.fail(true);
      aliceNode.broadcast("only once it is stored");
      // The pump runs here, synchronously: its commit fails, and so nothing may have been handed to the socket.
      assert.throws(() => aliceNode.retryWaiting(), /disk full/);
      assert.equal(sent.length, 0, "a datagram left before its state was committed");
      disk.fail(false);
      aliceNode.retryWaiting();
      assert.ok(sent.length > 0, "the committed pump sends");
      await until(() => got.length === 1, 10_000, "delivery after the commit");
      assert.deepEqual(got, ["only once it is stored"]);
    } finally {
      disk.fail(false);
      await aliceNode.close();
      await bobNode.close();
    }
  });

  it("a restart sends again what the outbox holds: written while bob was away, delivered once he is back", async () => {
    const users = await makeUsers(["alice", "bob"]);
    const [alice, bob] = users as [TestUser, TestUser];
    const db = join(dir, "alice.sqlite");
    const first = nodeFor(alice, users, { store: openSqliteStore(db), ephemeral: false });
    let queued = 0;
    first.on("queued", () => queued++);
    await first.start();
    first.sendPrivate("bob", "written while you were away");
    first.broadcast("and one for everyone");
    await until(() => queued === 2, 5_000, "the outbox rows");
    await first.close();

    const second = nodeFor(alice, users, { store: openSqliteStore(db), ephemeral: false });
    const bobNode = nodeFor(bob, users);
    const got: string[] = [];
    bobNode.on("message", (m) => got.push(`${m.kind}: ${m.text}`));
    const delivered: string[] = [];
    second.on("delivered", (d) => delivered.push(d.msgId));
    await second.start();
    await bobNode.start();
    try {
      await until(() => delivered.length === 2, 10_000, "the outbox re-sent after the restart");
      assert.deepEqual(got, ["private: written while you were away", "broadcast: and one for everyone"]);
      assert.equal(second.stats().pending, 0);
    } finally {
      await second.close();
      await bobNode.close();
    }
  });
});
