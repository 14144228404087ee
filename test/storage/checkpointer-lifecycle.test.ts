/**
 * The checkpoint worker's life (src/storage/checkpointer.ts): when it starts, that close() ends every connection
 * it opened, how a silent exit is reported, one checkpoint at a time, and the raised restart threshold after a
 * restart found the WAL busy. A manual clock; every wait is for a condition, with a generous deadline.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import {
  CHECKPOINT_EVERY_MS,
  type CheckpointerOptions,
  WAL_FRAMES_MAX,
  walCheckpointer,
} from "../../src/storage/checkpointer.ts";

const dir = mkdtempSync(join(tmpdir(), "chatnode-checkpoint-life-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const DRIVER = createRequire(import.meta.url).resolve("better-sqlite3");
const EXITING_DRIVER = fileURLToPath(new URL("./fixtures/exiting-driver.cjs", import.meta.url));
const WAIT_MS = 20_000;

/** Polls `predicate` until it holds; throws after `timeoutMs` (a deadline, never an expectation about speed). */
async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A WAL database whose connection never checkpoints on its own, a manual clock, and a checkpointer on both. */
function setup(name: string, options: Partial<CheckpointerOptions> = {}, startAt = 0) {
  const path = join(dir, `${name}.sqlite`);
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("wal_autocheckpoint = 0");
  db.exec("CREATE TABLE t (x BLOB)");
  const insert = db.prepare("INSERT INTO t (x) VALUES (?)");
  const clock = { now: startAt };
  const checkpointer = walCheckpointer({
    path,
    driverPath: DRIVER,
    busyTimeoutMs: 2000,
    onFailure: (e) => assert.fail(`worker failed: ${e}`),
    restart: () => true,
    now: () => clock.now,
    ...options,
  });
  /** One commit after the interval: the checkpointer is due to ask its worker. */
  const commitLater = (bytes = 100) => {
    insert.run(Buffer.alloc(bytes));
    clock.now += CHECKPOINT_EVERY_MS;
    checkpointer.committed();
  };
  return { path, db, insert, clock, checkpointer, commitLater };
}

describe("storage: the checkpoint worker's life", () => {
  it("starts no worker before the first interval has passed, whatever the clock read at the start, nor after close", () => {
    const { db, insert, clock, checkpointer } = setup("not-yet", { onFailure: () => {} }, 1_000_000);
    for (let i = 0; i < 10; i++) {
      insert.run(Buffer.alloc(100));
      clock.now += CHECKPOINT_EVERY_MS / 20;
      checkpointer.committed();
    }
    // close() says whether a worker was started (and so whether the caller must empty the WAL itself).
    assert.equal(checkpointer.close(), false);
    // Nor after close(), however long after.
    insert.run(Buffer.alloc(100));
    clock.now += 10 * CHECKPOINT_EVERY_MS;
    checkpointer.committed();
    assert.equal(checkpointer.close(), false);
    db.close();
  });

  it("close() ends every connection the worker opened, and nothing starts one after it", async () => {
    const { path, db, insert, clock, checkpointer, commitLater } = setup("ends");
    commitLater();
    await until(() => checkpointer.done === 1, WAIT_MS, "the first checkpoint");
    commitLater();
    await until(() => checkpointer.done === 2, WAIT_MS, "the second checkpoint");
    assert.equal(checkpointer.close(), true);
    // Commits after close() ask for nothing.
    insert.run(Buffer.alloc(100));
    clock.now += 10 * CHECKPOINT_EVERY_MS;
    checkpointer.committed();
    assert.equal(checkpointer.close(), true);
    db.close();
    // Our connection closed first, so the worker's is the last: its close copies the WAL back and deletes it.
    await until(() => !existsSync(`${path}-wal`), WAIT_MS, "the worker's connection to close");
    assert.equal(checkpointer.done, 2);
  });

  it("reports a worker that exits without an error as a failure, once, with its exit code", async () => {
    const failures: unknown[] = [];
    const { db, checkpointer, commitLater } = setup("exits", {
      driverPath: EXITING_DRIVER,
      onFailure: (e) => failures.push(e),
      restart: () => assert.fail("no restart without a worker"),
    });
    try {
      commitLater();
      await until(() => failures.length === 1, WAIT_MS, "the failure");
      assert.ok(failures[0] instanceof Error);
      assert.match(failures[0].message, /checkpoint worker exited \(code 3\)/);
      commitLater();
      assert.equal(failures.length, 1);
      assert.equal(checkpointer.done, 0);
    } finally {
      checkpointer.close();
      db.close();
    }
  });

  it("asks for one checkpoint at a time: commits while one runs ask for no other", async () => {
    const { db, checkpointer, commitLater } = setup("one-at-a-time");
    try {
      commitLater();
      commitLater(); // a whole interval later, but the first checkpoint has not answered yet
      commitLater();
      await until(() => checkpointer.done >= 1, WAIT_MS, "the checkpoint");
      assert.equal(checkpointer.done, 1);
      commitLater();
      await until(() => checkpointer.done >= 2, WAIT_MS, "the next checkpoint");
      assert.equal(checkpointer.done, 2);
    } finally {
      checkpointer.close();
      db.close();
    }
  });

  it("after a restart found the WAL busy, asks again only once the WAL grew by WAL_FRAMES_MAX more frames", async () => {
    const calls: number[] = [];
    const { path, db, insert, checkpointer, commitLater } = setup("held", {
      restart: () => {
        calls.push(checkpointer.done);
        return false;
      },
    });
    // A reader in the middle of a read transaction (a backup, say): no checkpoint can copy the frames after its
    // snapshot, and the WAL cannot start over, so it only grows.
    const reader = new Database(path, { readonly: true });
    reader.exec("BEGIN");
    reader.prepare("SELECT count(*) FROM t").get();
    const report = async (commits: number) => {
      for (let i = 0; i < commits; i++) insert.run(Buffer.alloc(3000, i));
      const before = checkpointer.done;
      commitLater();
      await until(() => checkpointer.done === before + 1, WAIT_MS, "a checkpoint");
    };
    try {
      await report(WAL_FRAMES_MAX + 1);
      assert.equal(calls.length, 1);
      await report(10); // longer than WAL_FRAMES_MAX, but not by WAL_FRAMES_MAX more than when found busy
      assert.equal(calls.length, 1);
      await report(WAL_FRAMES_MAX);
      assert.equal(calls.length, 2);
    } finally {
      reader.exec("COMMIT");
      reader.close();
      checkpointer.close();
      db.close();
    }
  });
  it("restarts a WAL of WAL_FRAMES_MAX + 1 frames, not one of exactly WAL_FRAMES_MAX, and lowers a raised threshold back", async () => {
    const calls: number[] = [];
    const { path, db, clock, checkpointer } = setup("exact", {
      restart: () => {
        calls.push(checkpointer.done);
        return false;
      },
    });
    db.exec("CREATE TABLE one (n INTEGER); INSERT INTO one (n) VALUES (0)");
    // One row on one page: each update is a commit of exactly one frame.
    const bump = db.prepare("UPDATE one SET n = n + 1");
    const frames = () => (db.pragma("wal_checkpoint(PASSIVE)") as { log: number }[])[0]?.log ?? -1;
    const growTo = (target: number) => {
      for (let n = frames(); n < target; n = frames()) for (let i = n; i < target; i++) bump.run();
      assert.equal(frames(), target);
    };
    const report = async () => {
      const before = checkpointer.done;
      clock.now += CHECKPOINT_EVERY_MS;
      checkpointer.committed();
      await until(() => checkpointer.done === before + 1, WAIT_MS, "a checkpoint");
    };
    // A reader in a read transaction keeps the WAL from starting over while it grows.
    const hold = () => {
      const reader = new Database(path, { readonly: true });
      reader.exec("BEGIN");
      reader.prepare("SELECT n FROM one").get();
      return () => {
        reader.exec("COMMIT");
        reader.close();
      };
    };
    let release = hold();
    try {
      growTo(WAL_FRAMES_MAX);
      await report();
      assert.equal(calls.length, 0, "a WAL of exactly WAL_FRAMES_MAX frames is within bounds");
      growTo(WAL_FRAMES_MAX + 1);
      await report();
      assert.equal(calls.length, 1, "one frame more is not");
      // The restart was refused, so the threshold went up. Once the WAL has started over and is back within
      // WAL_FRAMES_MAX, the threshold comes down again: one frame past WAL_FRAMES_MAX asks for a restart.
      release();
      db.pragma("wal_checkpoint(PASSIVE)");
      bump.run();
      assert.ok(frames() < WAL_FRAMES_MAX, "the WAL started over");
      release = hold();
      growTo(WAL_FRAMES_MAX);
      await report();
      assert.equal(calls.length, 1);
      growTo(WAL_FRAMES_MAX + 1);
      await report();
      assert.equal(calls.length, 2);
    } finally {
      release();
      checkpointer.close();
      db.close();
    }
  });
});
