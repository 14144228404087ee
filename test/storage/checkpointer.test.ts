/**
 * WAL checkpoints on a worker thread (src/storage/checkpointer.ts), against a real SQLite file whose own
 * connection never checkpoints: whatever reaches the database file got there through the worker.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import {
  CHECKPOINT_EVERY_MS,
  type CheckpointerOptions,
  WAL_FRAMES_MAX,
  walCheckpointer,
} from "../../src/storage/checkpointer.ts";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import { until } from "../helpers/loopback-nodes.ts";

const dir = mkdtempSync(join(tmpdir(), "chatnode-checkpoint-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const DRIVER = createRequire(import.meta.url).resolve("better-sqlite3");

/** A WAL database whose connection never checkpoints on its own, and a manual clock. */
function setup(name: string) {
  const path = join(dir, `${name}.sqlite`);
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("wal_autocheckpoint = 0");
  db.exec("CREATE TABLE t (x BLOB)");
  const insert = db.prepare("INSERT INTO t (x) VALUES (?)");
  const clock = { now: 0 };
  return {
    path,
    db,
    insert,
    clock,
    checkpointer: (options: Partial<CheckpointerOptions>) => start(path, clock, options),
  };
}

/** A checkpointer on `path` with the manual clock; a worker failure fails the test unless `onFailure` says else. */
function start(path: string, clock: { now: number }, options: Partial<CheckpointerOptions>) {
  return walCheckpointer({
    path,
    driverPath: DRIVER,
    busyTimeoutMs: 2000,
    onFailure: (e) => assert.fail(`worker failed: ${e}`),
    restart: () => true,
    now: () => clock.now,
    ...options,
  });
}

describe("storage: WAL checkpoints on a worker thread", () => {
  it("copies committed pages into the database file, at most once per interval", async () => {
    const { path, db, insert, clock, checkpointer: startOn } = setup("copies");
    let restarted = 0;
    const checkpointer = startOn({
      restart: () => {
        restarted++;
        return true;
      },
    });
    try {
      const before = statSync(path).size;
      // Within the first interval: commits, but no checkpoint yet.
      for (let i = 0; i < 100; i++) {
        insert.run(Buffer.alloc(4000, i));
        checkpointer.committed();
      }
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(checkpointer.done, 0);
      assert.equal(statSync(path).size, before);
      clock.now += CHECKPOINT_EVERY_MS;
      insert.run(Buffer.alloc(4000, 1));
      checkpointer.committed();
      await until(() => checkpointer.done === 1, 10_000, "the first checkpoint");
      assert.ok(statSync(path).size > before + 100 * 4000, `${statSync(path).size}`);
      assert.equal(restarted, 0);
      // Everything is readable through a fresh connection (the WAL is still there, and the copy agrees).
      const reader = new Database(path, { readonly: true });
      assert.deepEqual(reader.prepare("SELECT count(*) AS n FROM t").get(), { n: 101 });
      reader.close();
    } finally {
      checkpointer.close();
      db.close();
    }
  });

  it("asks the main connection to restart a WAL that grew past WAL_FRAMES_MAX frames", async () => {
    const { db, insert, clock, checkpointer: startOn } = setup("restart");
    let restarted = 0;
    const checkpointer = startOn({
      restart: () => {
        restarted++;
        db.pragma("wal_checkpoint(RESTART)");
        return true;
      },
    });
    try {
      // One commit per page: more frames than WAL_FRAMES_MAX before the worker is asked once.
      for (let i = 0; i <= WAL_FRAMES_MAX; i++) {
        insert.run(Buffer.alloc(3000, i));
        checkpointer.committed();
      }
      clock.now += CHECKPOINT_EVERY_MS;
      insert.run(Buffer.alloc(3000, 1));
      checkpointer.committed();
      await until(() => restarted === 1, 10_000, "the restart");
      // The next commit writes the WAL from its beginning again: the few frames of one row, not WAL_FRAMES_MAX more.
      insert.run(Buffer.alloc(3000, 2));
      const [{ log }] = db.pragma("wal_checkpoint(PASSIVE)") as [{ log: number }];
      assert.ok(log < 10, `${log} frames`);
    } finally {
      checkpointer.close();
      db.close();
    }
  });

  it("a restart that finds the WAL busy is tried again only after as many frames more", async () => {
    const { db, insert, clock, checkpointer: startOn } = setup("busy");
    const calls: number[] = [];
    const checkpointer = startOn({
      restart: () => {
        calls.push(checkpointer.done);
        return false; // as if a reader in another process held the WAL
      },
    });
    const commitsThenReport = async (commits: number) => {
      for (let i = 0; i < commits; i++) insert.run(Buffer.alloc(3000, i));
      clock.now += CHECKPOINT_EVERY_MS;
      const before = checkpointer.done;
      insert.run(Buffer.alloc(10));
      checkpointer.committed();
      await until(() => checkpointer.done === before + 1, 10_000, "a checkpoint");
    };
    try {
      await commitsThenReport(WAL_FRAMES_MAX + 1);
      assert.equal(calls.length, 1);
      await commitsThenReport(10); // still long, but no longer than when it was found busy
      assert.equal(calls.length, 1);
      await commitsThenReport(WAL_FRAMES_MAX);
      assert.equal(calls.length, 2);
    } finally {
      checkpointer.close();
      db.close();
    }
  });

  it("the worker never creates a database that is not there", async () => {
    const path = join(dir, "gone.sqlite");
    const failures: unknown[] = [];
    const clock = { now: 0 };
    const checkpointer = start(path, clock, { onFailure: (e) => failures.push(e) });
    clock.now += CHECKPOINT_EVERY_MS;
    checkpointer.committed();
    await until(() => failures.length === 1, 10_000, "the failure");
    assert.equal(existsSync(path), false);
    checkpointer.close();
  });

  it("a store closed after its worker started leaves the whole history in the database file itself", async () => {
    const path = join(dir, "whole.sqlite");
    const store = openSqliteStore(path);
    const until500 = Date.now() + 500;
    for (let n = 0; Date.now() < until500; n++) {
      store.setMeta("k", `v${n}`);
      await new Promise((r) => setImmediate(r));
    }
    store.setMeta("last", "written just before close");
    store.close();
    // The file alone, without its -wal: what a copy or a move right after close would take.
    const copy = join(dir, "whole-copy.sqlite");
    copyFileSync(path, copy);
    const reader = new Database(copy, { readonly: true });
    assert.deepEqual(reader.prepare("SELECT value FROM meta WHERE key = 'last'").get(), {
      value: "written just before close",
    });
    reader.close();
  });

  it("a worker that cannot work reports one failure and is not asked again", async () => {
    const { db, insert, clock, checkpointer: startOn } = setup("failure");
    const failures: unknown[] = [];
    const checkpointer = startOn({
      driverPath: join(dir, "no-such-driver.js"),
      onFailure: (e) => failures.push(e),
      restart: () => assert.fail("no restart without a worker"),
    });
    try {
      clock.now += CHECKPOINT_EVERY_MS;
      insert.run(Buffer.alloc(10));
      checkpointer.committed();
      await until(() => failures.length === 1, 10_000, "the failure");
      clock.now += CHECKPOINT_EVERY_MS;
      checkpointer.committed();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(failures.length, 1);
      assert.equal(checkpointer.done, 0);
    } finally {
      checkpointer.close();
      db.close();
    }
  });

  it("a store's WAL comes back under its bound after a long burst of commits, and everything stays readable", async () => {
    const path = join(dir, "store.sqlite");
    const store = openSqliteStore(path);
    const deadline = Date.now() + 1_500;
    let n = 0;
    while (Date.now() < deadline) {
      store.setMeta(`k${n % 50}`, "x".repeat(2000) + n);
      n++;
      // Let the worker's answers in now and then, as a node's event loop would.
      if (n % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    // The file is bounded by its size limit (twice the WAL_FRAMES_MAX that trigger a restart) plus what the
    // commits since the last restart added. On a machine whose cores are busy the worker falls behind during the
    // burst and the file overshoots (seen: up to ~165 MB with two copies of this test at once); it must come back
    // under the bound once the worker has caught up: a few more commits let the restart and the size limit act.
    const bound = 3 * WAL_FRAMES_MAX * 4120;
    const settleBy = Date.now() + 15_000;
    while (statSync(`${path}-wal`).size >= bound && Date.now() < settleBy) {
      store.setMeta("settle", String(Date.now()));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(statSync(`${path}-wal`).size < bound, `${statSync(`${path}-wal`).size} bytes`);
    assert.equal(store.getMeta(`k${(n - 1) % 50}`), "x".repeat(2000) + (n - 1));
    store.close();
  });
});
