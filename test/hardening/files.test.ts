/**
 * Files on disk, end to end through openNode (test/storage and test/crypto cover each file type alone): a whole data
 * directory is private whatever the umask; a damaged database or key file stops the node with a clear error and is
 * left exactly as it was (nothing is silently re-created or overwritten), so restoring a backup loses nothing.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { MsgId, PeerId } from "../../src/engine/types.ts";
import { IdentityError } from "../../src/identity/errors.ts";
import { registerUser } from "../../src/identity/register.ts";
import type { ChatNode } from "../../src/node/chat-node.ts";
import { databasePath, openNode } from "../../src/node/open-node.ts";
import { isStoreError } from "../../src/storage/errors.ts";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import { freePorts, until } from "../helpers/loopback-nodes.ts";

const mode = (path: string) => statSync(path).mode & 0o777;

const root = mkdtempSync(join(tmpdir(), "chatnode-files-"));
after(() => rmSync(root, { recursive: true, force: true }));

let homes = 0;
/** A data directory with alice and bob registered, who have exchanged `messages` messages each way. */
async function chattedHome(messages: number): Promise<string> {
  const dataDir = join(root, `home-${++homes}`);
  const [alicePort, bobPort] = (await freePorts(2)) as [number, number];
  await registerUser({ dataDir, username: "alice", password: "pw-a", port: alicePort, scryptN: 2 ** 10 });
  await registerUser({ dataDir, username: "bob", password: "pw-b", port: bobPort, scryptN: 2 ** 10 });
  const nodes = await Promise.all([
    openNode({ dataDir, username: "alice", password: "pw-a", closeGraceMs: 100 }),
    openNode({ dataDir, username: "bob", password: "pw-b", closeGraceMs: 100 }),
  ]);
  const got = new Map<ChatNode, number>(nodes.map((n) => [n, 0]));
  for (const n of nodes) {
    n.on("message", () => got.set(n, (got.get(n) ?? 0) + 1));
    await n.start();
  }
  const [alice, bob] = nodes as [ChatNode, ChatNode];
  for (let i = 0; i < messages; i++) {
    alice.broadcast(`from alice ${i}`);
    bob.sendPrivate("alice", `from bob ${i}`);
  }
  await until(() => got.get(alice) === messages && got.get(bob) === messages, 10_000, "the exchange");
  await until(() => alice.stats().pending === 0 && bob.stats().pending === 0, 10_000, "acknowledgements");
  await Promise.all(nodes.map((n) => n.close()));
  return dataDir;
}

/** Every directory and file under `dir`, with its permission bits as they are now. */
function walk(dir: string): { dirs: Map<string, number>; files: Map<string, number> } {
  const out = { dirs: new Map([[dir, mode(dir)]]), files: new Map<string, number>() };
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      const sub = walk(path);
      for (const [p, m] of sub.dirs) out.dirs.set(p, m);
      for (const [p, m] of sub.files) out.files.set(p, m);
    } else out.files.set(path, mode(path));
  }
  return out;
}

describe("files on disk", { timeout: 60_000 }, () => {
  it("a whole data directory is 0700 directories and 0600 files, even with umask 000, while running and after", async () => {
    const previous = process.umask(0o000);
    try {
      const dataDir = await chattedHome(3);
      const node = await openNode({ dataDir, username: "alice", password: "pw-a", closeGraceMs: 50 });
      await node.start();
      node.broadcast("while running"); // the -wal and -shm files exist now
      await new Promise((r) => setTimeout(r, 50));
      const running = walk(dataDir);
      await node.close();
      const stopped = walk(dataDir);
      for (const tree of [running, stopped]) {
        for (const [d, m] of tree.dirs) assert.equal(m.toString(8), "700", d);
        for (const [f, m] of tree.files) assert.equal(m.toString(8), "600", f);
      }
      const names = [...running.files.keys()].map((f) => f.slice(dataDir.length + 1)).sort();
      for (const expected of [
        "users.json",
        "keys/alice.key",
        "keys/bob.key",
        "db/alice.sqlite",
        "db/alice.sqlite-wal",
      ])
        assert.ok(names.includes(expected), `${expected} among ${names.join(", ")}`);
    } finally {
      process.umask(previous);
    }
  });

  it("a damaged database stops the node with DB_DAMAGED naming the file, changes nothing, and a backup restores all", async () => {
    const dataDir = await chattedHome(5);
    const dbPath = databasePath(dataDir, "alice");
    // Enough history for many pages, then a backup.
    const store = openSqliteStore(dbPath);
    store.transaction(() => {
      for (let i = 0; i < 300; i++)
        store.addReceived({
          msgId: randomBytes(16).toString("hex") as MsgId,
          from: "0123456789abcdef" as PeerId,
          kind: "broadcast",
          text: "y".repeat(400),
          sentAt: i,
          receivedAt: i,
        });
    });
    const historyBefore = store.history(100_000).length;
    store.close();
    const backup = readFileSync(dbPath);
    const damaged = Buffer.from(backup);
    const pageSize = damaged.readUInt16BE(16);
    const page = Math.floor(damaged.length / pageSize / 2);
    randomBytes(pageSize).copy(damaged, page * pageSize);
    writeFileSync(dbPath, damaged);
    const node = await openNode({ dataDir, username: "alice", password: "pw-a" }).catch((e: unknown) => e);
    assert.ok(isStoreError(node, "DB_DAMAGED"), `expected DB_DAMAGED, got ${String(node)}`);
    assert.ok(node.message.includes(dbPath), node.message);
    assert.match(node.message, /backup/);
    assert.deepEqual(readFileSync(dbPath), damaged, "the damaged file is left as it was, for recovery");
    writeFileSync(dbPath, backup);
    const restored = await openNode({ dataDir, username: "alice", password: "pw-a", closeGraceMs: 50 });
    assert.equal(restored.history(100_000).length, historyBefore, "everything is back");
    await restored.start();
    await restored.close();
  });

  it("a damaged key file stops the node with DAMAGED, and neither it nor the database is touched", async () => {
    const dataDir = await chattedHome(2);
    const keyPath = join(dataDir, "keys", "alice.key");
    const dbPath = databasePath(dataDir, "alice");
    const json = JSON.parse(readFileSync(keyPath, "utf8")) as { ciphertext: string };
    const bytes = Buffer.from(json.ciphertext, "base64");
    bytes[10] = (bytes[10] ?? 0) ^ 0x01;
    json.ciphertext = bytes.toString("base64");
    writeFileSync(keyPath, JSON.stringify(json));
    const keyBefore = readFileSync(keyPath);
    const dbBefore = readFileSync(dbPath);
    await assert.rejects(
      openNode({ dataDir, username: "alice", password: "pw-a" }),
      (e: unknown) => e instanceof IdentityError && e.code === "DAMAGED" && e.message.includes(keyPath),
    );
    assert.deepEqual(readFileSync(keyPath), keyBefore);
    assert.deepEqual(readFileSync(dbPath), dbBefore);
  });

  it("a database truncated to zero bytes is refused, not silently replaced by an empty one", async () => {
    const dataDir = await chattedHome(2);
    const dbPath = databasePath(dataDir, "alice");
    truncateSync(dbPath, 0);
    await assert.rejects(openNode({ dataDir, username: "alice", password: "pw-a" }), (e: unknown) =>
      isStoreError(e, "DB_DAMAGED"),
    );
  });

  it("a damaged saved peer state stops start() with a StoreError naming the file, releasing its port", async () => {
    const dataDir = await chattedHome(2);
    const dbPath = databasePath(dataDir, "alice");
    const db = new Database(dbPath);
    db.prepare("UPDATE peer_state SET json = '{not json'").run();
    db.close();
    const node = await openNode({ dataDir, username: "alice", password: "pw-a", closeGraceMs: 0 });
    const leaked = await node.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    let again: unknown;
    try {
      const second = await openNode({ dataDir, username: "alice", password: "pw-a", closeGraceMs: 0 });
      again = await second.start().then(
        () => second.close(),
        (e: unknown) => e,
      );
    } catch (e) {
      again = e;
    } finally {
      await node.close(); // releases what the failed start() left behind, so that this process can exit
    }
    assert.ok(isStoreError(leaked) && leaked.message.includes(dbPath), `a StoreError, not ${String(leaked)}`);
    // A second node on the same files meets the same damage, not a port in use or a locked database.
    assert.ok(isStoreError(again, "DB_DAMAGED"), `the port and the database were released: ${String(again)}`);
  });

  it("a damaged saved epoch is an error, not silently epoch 0 (which every peer refuses as stale)", async () => {
    const dataDir = await chattedHome(1);
    const dbPath = databasePath(dataDir, "alice");
    const db = new Database(dbPath);
    db.prepare("UPDATE meta SET value = 'banana' WHERE key = 'epoch'").run();
    db.close();
    const node = await openNode({ dataDir, username: "alice", password: "pw-a", closeGraceMs: 50 });
    const started = await node.start().then(
      () => true,
      () => false,
    );
    if (started) await node.close();
    assert.equal(started, false, "start() refuses a damaged epoch");
  });
});
