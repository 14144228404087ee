/**
 * Opening an SQLite store: what it refuses and why, what it creates and where, what it leaves alone, and the
 * checkpoint helper the store runs on its own connection.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { isStoreError, type StoreErrorCode } from "../../src/storage/errors.ts";
import { MIGRATIONS, SCHEMA_VERSION } from "../../src/storage/migrations.ts";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import { BUSY_TIMEOUT_MS } from "../../src/storage/sqlite-driver.ts";
import { checkpointWal } from "../../src/storage/sqlite-store.ts";

const dir = mkdtempSync(join(tmpdir(), "chatnode-sqlite-open-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function freshPath(): string {
  files += 1;
  return join(dir, `open-${files}.db`);
}

/** Opening `path` fails with `code`; returns the error for more checks. */
function openFails(path: string, code: StoreErrorCode): Error {
  let caught: unknown;
  assert.throws(
    () => openSqliteStore(path),
    (e) => {
      caught = e;
      return isStoreError(e, code) && e.message.includes(path) && !e.message.includes("\n");
    },
  );
  assert.ok(caught instanceof Error);
  return caught;
}

/** Frames in the WAL of `path`, read through a connection of its own. */
function walFrames(path: string): number {
  const db = new Database(path);
  try {
    const [row] = db.pragma("wal_checkpoint(PASSIVE)") as { log: number }[];
    return row?.log ?? -1;
  } finally {
    db.close();
  }
}

describe("sqlite store: opening", () => {
  it("refuses an empty file as DB_DAMAGED rather than start a new history over it", () => {
    const path = freshPath();
    writeFileSync(path, "");
    const error = openFails(path, "DB_DAMAGED");
    assert.match(error.message, /empty/);
  });

  it("says DB_UNAVAILABLE, naming the file and keeping the cause, when the file cannot be created", () => {
    const blocker = join(dir, "a-file");
    writeFileSync(blocker, "not a directory");
    const path = join(blocker, "chat.db");
    const error = openFails(path, "DB_UNAVAILABLE");
    assert.match(error.message, /cannot create database file/);
    assert.ok(error.cause instanceof Error);
    assert.equal((error.cause as NodeJS.ErrnoException).code, "ENOTDIR");
  });

  it("says DB_UNAVAILABLE when the path is a directory", () => {
    const path = join(dir, "a-directory");
    mkdirSync(path);
    const error = openFails(path, "DB_UNAVAILABLE");
    assert.match(error.message, /^cannot open /);
  });

  it("creates no file for a :memory: store", () => {
    const here = process.cwd();
    const empty = mkdtempSync(join(dir, "cwd-"));
    process.chdir(empty);
    try {
      const store = openSqliteStore(":memory:");
      store.setMeta("k", "v");
      assert.equal(store.getMeta("k"), "v");
      store.close();
      assert.deepEqual(readdirSync(empty), []);
    } finally {
      process.chdir(here);
    }
  });

  it("writes a new database at the last migration's version, and a reopen changes nothing in the file", () => {
    assert.equal(SCHEMA_VERSION, MIGRATIONS[MIGRATIONS.length - 1]?.version);
    assert.deepEqual(
      MIGRATIONS.map((m) => m.version),
      MIGRATIONS.map((_, i) => i + 1),
    );
    const path = freshPath();
    const first = openSqliteStore(path);
    first.setMeta("k", "v");
    first.close();
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma("user_version", { simple: true }), MIGRATIONS.length);
    db.close();

    const again = openSqliteStore(path);
    try {
      // Opening a current database is all reads: not one frame in the WAL.
      assert.equal(walFrames(path), 0);
      assert.equal(again.getMeta("k"), "v");
    } finally {
      again.close();
    }
  });
});

describe("sqlite store: the WAL file", () => {
  it("keeps its size when it starts over, rather than being cut and grown again", () => {
    const path = freshPath();
    const store = openSqliteStore(path);
    try {
      // One commit, so that no checkpoint can start the WAL over half way through.
      store.transaction(() => {
        for (let i = 0; i < 300; i++) store.setMeta(`k${i}`, "x".repeat(4000));
      });
      const grown = statSync(`${path}-wal`).size;
      assert.ok(grown > 300 * 4096, `${grown} bytes`);
      // Another connection copies every frame back, so the store's next commit writes the WAL from its start.
      const other = new Database(path);
      other.pragma("wal_checkpoint(PASSIVE)");
      other.close();
      store.setMeta("after", "the restart");
      assert.equal(statSync(`${path}-wal`).size, grown);
      assert.equal(store.getMeta("k299"), "x".repeat(4000));
    } finally {
      store.close();
    }
  });
});

describe("sqlite store: checkpointWal", () => {
  it("reports whether the checkpoint completed, and puts the busy timeout back either way", () => {
    const path = freshPath();
    const db = new Database(path);
    const reader = new Database(path, { readonly: true });
    try {
      db.pragma("journal_mode = WAL");
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.exec("CREATE TABLE t (x)");
      db.prepare("INSERT INTO t (x) VALUES (1)").run();
      assert.equal(checkpointWal(db, "RESTART", 0), true);
      assert.equal(db.pragma("busy_timeout", { simple: true }), BUSY_TIMEOUT_MS);

      // A reader in the middle of a read transaction keeps the WAL from starting over.
      reader.exec("BEGIN");
      reader.prepare("SELECT count(*) FROM t").get();
      db.prepare("INSERT INTO t (x) VALUES (2)").run();
      assert.equal(checkpointWal(db, "RESTART", 0), false);
      assert.equal(checkpointWal(db, "TRUNCATE", 0), false);
      assert.equal(db.pragma("busy_timeout", { simple: true }), BUSY_TIMEOUT_MS);
      reader.exec("COMMIT");
      assert.equal(checkpointWal(db, "TRUNCATE", 0), true);
    } finally {
      reader.close();
      db.close();
    }
    assert.equal(checkpointWal(db, "TRUNCATE", 0), false, "a closed connection");
  });
});
