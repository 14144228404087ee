import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type Database from "better-sqlite3";
import { type Checkpointer, WAL_FRAMES_MAX, walCheckpointer } from "./checkpointer.ts";
import { StoreError } from "./errors.ts";
import { assertKnownVersion, migrate, schemaVersion } from "./migrations.ts";
import { BUSY_TIMEOUT_MS, driverPath, sqlite } from "./sqlite-driver.ts";
import { damaged, messageOf, translate } from "./sqlite-errors.ts";
import { checkpointWal, SqliteStore } from "./sqlite-store.ts";
import type { Store } from "./store.ts";

/** SQLite's default for wal_autocheckpoint, restored if the checkpoint worker fails. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

/** "CNOD" in the SQLite header's application id: marks the file as a ChatNode database. */
const APPLICATION_ID = 0x434e4f44;

/**
 * Opens (creating if need be) the SQLite store at `path`, or a private in-memory one for ":memory:".
 *
 * A new file is created 0600 in a directory created 0700 (an existing directory or file keeps its mode); SQLite
 * gives the -wal and -shm files the database file's mode. Throws `StoreError`: `DB_DAMAGED` if the file is not an
 * SQLite database or fails `PRAGMA quick_check`, `DB_TOO_NEW` if a newer ChatNode wrote it, `DB_LOCKED`,
 * `DB_UNAVAILABLE`.
 */
export function openSqliteStore(path: string | ":memory:"): Store {
  if (path !== ":memory:") createPrivateFile(path);
  let db: Database.Database;
  try {
    db = new (sqlite())(path, { timeout: BUSY_TIMEOUT_MS });
  } catch (error) {
    throw translate(error, path);
  }
  try {
    prepareDatabase(db, path);
    return new SqliteStore(db, path, path === ":memory:" ? undefined : checkpointOffTheLoop(db, path));
  } catch (error) {
    db.close();
    throw translate(error, path);
  }
}

/** SQLite's automatic checkpoints off, a worker's on (src/storage/checkpointer.ts); back to SQLite's if it fails. */
function checkpointOffTheLoop(db: Database.Database, path: string): Checkpointer {
  db.pragma("wal_autocheckpoint = 0");
  return walCheckpointer({
    path,
    driverPath: driverPath(),
    busyTimeoutMs: BUSY_TIMEOUT_MS,
    onFailure: () => {
      if (db.open) db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
    },
    // Not waiting for a reader in another process (a backup, the sqlite3 shell): busy now, tried again later.
    restart: () => checkpointWal(db, "RESTART", 0),
  });
}

function createPrivateFile(path: string): void {
  try {
    const dir = dirname(path);
    // mkdir's mode is only applied to directories it creates: an existing directory is the user's to choose.
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (existsSync(path)) {
      // We never leave an empty file behind (see below), so an empty one was truncated: refuse it rather than
      // start an empty history over the lost one.
      if (statSync(path).size === 0) throw damaged(path, "the file is empty (0 bytes)");
      return;
    }
    // A new database is made under a temporary name (0600 before SQLite writes a byte), given its first page,
    // then renamed into place: a crash at any point never leaves an empty file at `path`.
    const temp = `${path}.creating`;
    closeSync(openSync(temp, "w", 0o600));
    const fresh = new (sqlite())(temp);
    fresh.pragma(`application_id = ${APPLICATION_ID}`);
    fresh.close();
    renameSync(temp, path);
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new StoreError("DB_UNAVAILABLE", `cannot create database file ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

function prepareDatabase(db: Database.Database, path: string): void {
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // The first read of the file: a file that is not SQLite fails here with SQLITE_NOTADB.
  const version = schemaVersion(db);
  // quick_check reads every page (O(size)) and finds truncation and most
  // corruption, at open, rather than as a confusing failure mid-conversation. (1): stop at the first problem.
  const problem = db.prepare<[], { quick_check: string }>("PRAGMA quick_check(1)").get()?.quick_check;
  if (problem !== "ok") throw damaged(path, problem ?? "quick_check returned nothing");
  // Refuse a newer schema before changing anything in the file, the journal mode included.
  assertKnownVersion(version, path);
  db.pragma("journal_mode = WAL");
  // WAL + NORMAL: a commit is appended to the -wal file with write() but not fsync()ed (the WAL is synced at
  // checkpoints, which a worker thread runs: src/storage/checkpointer.ts). Once write() returns the data is in the
  // OS page cache, so a crash of this process - kill -9 included - loses nothing committed; the next open replays
  // the WAL. An OS crash or power loss may lose the last commits (never corrupting the file), possibly after we
  // ACKed them. FULL would close that window with an fsync per commit, but better-sqlite3 runs on the event loop,
  // so every received message would stall UDP handling and timers for a disk flush. We judge that worse than the
  // power-loss window.
  db.pragma("synchronous = NORMAL");
  // The WAL is started over in place (checkpointer.ts), so its file keeps its largest size: past twice the frames
  // that trigger a restart (4 KiB pages and their 24-byte frame headers), the first commit after one cuts it back.
  // At the usual size, nothing is cut and grown again.
  db.pragma(`journal_size_limit = ${2 * WAL_FRAMES_MAX * (4096 + 24)}`);
  db.pragma("foreign_keys = ON");
  migrate(db, path);
}
