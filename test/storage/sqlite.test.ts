import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { isStoreError, type StoreErrorCode } from "../../src/storage/errors.ts";
import { MIGRATIONS, SCHEMA_VERSION } from "../../src/storage/migrations.ts";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import type { Store } from "../../src/storage/store.ts";
import { msg, outgoing, peer, received, storeContract } from "./store-contract.ts";

const dir = mkdtempSync(join(tmpdir(), "chatnode-sqlite-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function freshPath(): string {
  files += 1;
  return join(dir, `store-${files}.db`);
}

storeContract("sqlite file", () => openSqliteStore(freshPath()));
storeContract("sqlite :memory:", () => openSqliteStore(":memory:"));

const ALICE = peer(0xa);
const BOB = peer(0xb);

function fill(store: Store, messages: number, textBytes = 10): void {
  store.transaction(() => {
    for (let i = 0; i < messages; i++)
      store.addReceived({ ...received(ALICE, i), text: "x".repeat(textBytes) });
  });
}

/** Asserts that opening `path` fails with `code` and a one-line message that names the file. */
function assertOpenFails(path: string, code: StoreErrorCode): void {
  assert.throws(
    () => openSqliteStore(path),
    (e) => {
      assert.ok(isStoreError(e, code), `expected StoreError ${code}, got ${String(e)}`);
      assert.ok(e.message.includes(path), e.message);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    },
  );
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

describe("sqlite store: schema migrations", () => {
  it("a version 1 database (recipients keyed by msg_id) opens as the current schema with its outbox intact", () => {
    const path = freshPath();
    const v1 = new Database(path);
    v1.exec(MIGRATIONS[0]?.sql ?? "");
    v1.pragma("user_version = 1");
    const addOut = v1.prepare(
      "INSERT INTO outgoing (msg_id, seq, kind, text, sent_at) VALUES (?, ?, 'broadcast', ?, 5)",
    );
    const addTo = v1.prepare(
      "INSERT INTO outgoing_recipients (msg_id, peer, state, reason, updated_at) VALUES (?, ?, ?, ?, 6)",
    );
    addOut.run(msg(1), 1, "first");
    addOut.run(msg(2), 3, "second");
    // Recipients in the order given, which is not the peers' order, nor all in one state.
    addTo.run(msg(1), peer(3), "delivered", null);
    addTo.run(msg(1), peer(1), "failed", "gave up after 30 tries");
    addTo.run(msg(2), peer(2), "pending", null);
    addTo.run(msg(2), peer(1), "delivered", null);
    v1.close();

    const store = openSqliteStore(path);
    try {
      assert.deepEqual(
        store.getOutgoing(msg(1))?.recipients.map((r) => [r.peer, r.state, r.reason]),
        [
          [peer(3), "delivered", undefined],
          [peer(1), "failed", "gave up after 30 tries"],
        ],
      );
      assert.deepEqual(
        store.unfinishedOutgoing().map((m) => m.msgId),
        [msg(1), msg(2)],
      );
      store.setRecipientState(msg(2), peer(2), "delivered", 7);
      store.setRecipientState(msg(1), peer(1), "delivered", 8);
      assert.deepEqual(store.unfinishedOutgoing(), []);
      store.addOutgoing(outgoing(4, [peer(1)]));
      assert.deepEqual(
        store.history(10).map((e) => e.msgId),
        [msg(1), msg(2), msg(4)],
      );
    } finally {
      store.close();
    }
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
    db.close();
  });
});

describe("sqlite store", () => {
  it("keeps everything across close and reopen, and carries on the history order", () => {
    const path = freshPath();
    let store = openSqliteStore(path);
    store.addOutgoing(outgoing(1, [ALICE, BOB]));
    store.addReceived(received(BOB, 2));
    store.setRecipientState(msg(1), BOB, "failed", 5, "offline");
    store.savePeerState(ALICE, '{"n":1}');
    store.setMeta("epoch", "3");
    store.upsertPeer({ id: ALICE, address: "127.0.0.1:1", rttMs: 2.5 });
    const before = {
      history: store.history(10),
      unfinished: store.unfinishedOutgoing(),
      states: store.loadPeerStates(),
      epoch: store.getMeta("epoch"),
      peers: store.peers(),
    };
    store.close();

    store = openSqliteStore(path);
    try {
      assert.deepEqual(
        {
          history: store.history(10),
          unfinished: store.unfinishedOutgoing(),
          states: store.loadPeerStates(),
          epoch: store.getMeta("epoch"),
          peers: store.peers(),
        },
        before,
      );
      store.addReceived(received(ALICE, 3));
      store.addOutgoing(outgoing(4, [BOB]));
      assert.deepEqual(
        store.history(10).map((e) => e.msgId),
        [msg(1), msg(2), msg(3), msg(4)],
      );
    } finally {
      store.close();
    }
  });

  it("uses WAL and records the schema version", () => {
    const path = freshPath();
    openSqliteStore(path).close();
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it("creates the file 0600 (and its -wal and -shm) in directories it creates 0700", () => {
    const parent = join(dir, "private");
    const path = join(parent, "nested", "chat.db");
    const store = openSqliteStore(path);
    try {
      store.setMeta("k", "v");
      assert.equal(mode(parent), 0o700);
      assert.equal(mode(join(parent, "nested")), 0o700);
      assert.equal(mode(path), 0o600);
      assert.equal(mode(`${path}-wal`), 0o600);
      assert.equal(mode(`${path}-shm`), 0o600);
    } finally {
      store.close();
    }
  });

  it("says DB_UNAVAILABLE when the file cannot be created", () => {
    const blocker = join(dir, "a-file");
    writeFileSync(blocker, "");
    assertOpenFails(join(blocker, "chat.db"), "DB_UNAVAILABLE");
  });

  it("refuses a file that is not SQLite as DB_DAMAGED", () => {
    for (const size of [10, 4096, 100_000]) {
      const path = freshPath();
      writeFileSync(path, randomBytes(size));
      assertOpenFails(path, "DB_DAMAGED");
    }
  });

  it("refuses a truncated database as DB_DAMAGED", () => {
    const path = freshPath();
    const store = openSqliteStore(path);
    fill(store, 200, 500);
    store.close();
    assert.equal(existsSync(`${path}-wal`), false, "close should checkpoint the WAL into the file");
    truncateSync(path, Math.floor(statSync(path).size / 2));
    assertOpenFails(path, "DB_DAMAGED");
  });

  it("refuses a database with a corrupt page as DB_DAMAGED", () => {
    const path = freshPath();
    const store = openSqliteStore(path);
    fill(store, 200, 500);
    store.close();
    const bytes = readFileSync(path);
    const pageSize = bytes.readUInt16BE(16);
    // A page in the middle of the received table's b-tree: its header and cell pointers become garbage.
    const page = Math.floor(bytes.length / pageSize / 2);
    randomBytes(pageSize).copy(bytes, page * pageSize);
    writeFileSync(path, bytes);
    assertOpenFails(path, "DB_DAMAGED");
  });

  it("refuses a database from a newer ChatNode as DB_TOO_NEW, without changing it", () => {
    const path = freshPath();
    openSqliteStore(path).close();
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.pragma("journal_mode = DELETE");
    db.close();
    assertOpenFails(path, "DB_TOO_NEW");
    const after = new Database(path, { readonly: true });
    try {
      assert.equal(after.pragma("journal_mode", { simple: true }), "delete");
    } finally {
      after.close();
    }
  });

  it("keeps every committed message across kill -9 of the writing process", async (t) => {
    const runs = [0, 1, 2].map(async () => {
      const path = freshPath();
      const killAfter = 1 + Math.floor(Math.random() * 1500);
      const printed = await runAndKill(path, killAfter);
      t.diagnostic(`killed after ${killAfter} lines; ${printed.length} read`);
      assert.ok(printed.length >= killAfter);
      const store = openSqliteStore(path);
      try {
        const missing = printed.filter((id) => !store.hasReceived(peer(1), msg(Number.parseInt(id, 16))));
        assert.deepEqual(missing, [], "committed messages lost");
        const last = JSON.parse(store.loadPeerStates().get(peer(1)) ?? "{}") as { last?: number };
        // The peer state was written in the same transactions: it is at least as new as the last line printed.
        assert.ok(
          (last.last ?? -1) >= printed.length - 1,
          `peer state ${last.last} behind ${printed.length}`,
        );
      } finally {
        store.close();
      }
    });
    await Promise.all(runs);
  });
});

const FIXTURE = fileURLToPath(new URL("./fixtures/crash-writer.ts", import.meta.url));
/** Far more than the kill point: if the kill never comes, the writer still ends (and the test fails) soon. */
const CRASH_WRITER_MESSAGES = 20_000;
const CRASH_WRITER_DEADLINE_MS = 30_000;
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Starts the crash writer, SIGKILLs it once it has printed `killAfter` ids, and returns every id it printed (the
 * kill lands at an arbitrary point after that: between transactions, inside one, or in the middle of a commit).
 */
function runAndKill(path: string, killAfter: number): Promise<string[]> {
  // Outside the test runner's context: the child is a plain program, not a test file.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, path, String(CRASH_WRITER_MESSAGES)], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const printed: string[] = [];
  let partial = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    printed.push(...lines);
    if (printed.length >= killAfter) child.kill("SIGKILL");
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
  });
  // A safety net for a loaded machine: never leave the writer running after the test.
  const deadline = setTimeout(() => child.kill("SIGKILL"), CRASH_WRITER_DEADLINE_MS);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(deadline);
      if (signal === "SIGKILL" && printed.length >= killAfter) resolve(printed);
      else
        reject(new Error(`crash writer ended (${signal ?? code}) after ${printed.length} lines: ${stderr}`));
    });
  });
}
