import { closeSync, existsSync, mkdirSync, openSync, renameSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import type Database from "better-sqlite3";
import type { MessageKind, MsgId, PeerId } from "../engine/types.ts";
import { type Checkpointer, WAL_FRAMES_MAX, walCheckpointer } from "./checkpointer.ts";
import { StoreError } from "./errors.ts";
import { assertKnownVersion, migrate, schemaVersion } from "./migrations.ts";
import type {
  HistoryEntry,
  OutgoingMessage,
  OutgoingRecipient,
  PeerRecord,
  RecipientState,
  Store,
} from "./store.ts";

/**
 * How long a statement waits for another process's lock before failing with `DB_LOCKED`. better-sqlite3 is
 * synchronous, so the wait blocks the event loop: keep it short. Only a second process on the same data
 * directory (a misconfiguration) ever contends.
 */
const BUSY_TIMEOUT_MS = 2000;

/**
 * The driver, loaded on the first open rather than with this module: a start opens the database while scrypt
 * unlocks the keys on the thread pool (src/node/open-node.ts), so loading the native addon then costs no time.
 */
let driver: typeof Database | undefined;
function sqlite(): typeof Database {
  driver ??= createRequire(import.meta.url)("better-sqlite3") as typeof Database;
  return driver;
}

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
    return sqliteStore(db, path, path === ":memory:" ? undefined : checkpointOffTheLoop(db, path));
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
    driverPath: createRequire(import.meta.url).resolve("better-sqlite3"),
    busyTimeoutMs: BUSY_TIMEOUT_MS,
    onFailure: () => {
      if (db.open) db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
    },
    // Not waiting for a reader in another process (a backup, the sqlite3 shell): busy now, tried again later.
    restart: () => checkpointWal(db, "RESTART", 0),
  });
}

/**
 * Copies the whole WAL back into the database, then has the next commit write it from its beginning (RESTART) or
 * empties the file (TRUNCATE); false if a reader (or a checkpoint) of another connection kept it from finishing
 * within `busyTimeoutMs`. Never throws: what is left stays in the WAL, safely.
 */
function checkpointWal(db: Database.Database, mode: "RESTART" | "TRUNCATE", busyTimeoutMs: number): boolean {
  if (!db.open) return false;
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    return (db.pragma(`wal_checkpoint(${mode})`) as Array<{ busy: number }>)[0]?.busy === 0;
  } catch {
    return false;
  } finally {
    if (db.open) db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  }
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
  // quick_check reads every page (O(size), milliseconds for a chat history) and finds truncation and most
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
  // so every received message would stall UDP handling and timers for a disk flush (0.1 ms to tens of ms). We
  // judge that worse than the power-loss window.
  db.pragma("synchronous = NORMAL");
  // The WAL is started over in place (checkpointer.ts), so its file keeps its largest size: past twice the frames
  // that trigger a restart (4 KiB pages and their 24-byte frame headers), the first commit after one cuts it back.
  // At the usual size, nothing is cut and grown again.
  db.pragma(`journal_size_limit = ${2 * WAL_FRAMES_MAX * (4096 + 24)}`);
  db.pragma("foreign_keys = ON");
  migrate(db, path);
}

// --- row shapes, named by the SQL aliases below -------------------------------------------------------------

interface OutgoingRow {
  msgId: MsgId;
  kind: MessageKind;
  text: string;
  sentAt: number;
}

interface RecipientRow {
  peer: PeerId;
  state: RecipientState;
  reason: string | null;
  updatedAt: number;
}

interface HistoryRow {
  direction: "out" | "in";
  msgId: MsgId;
  fromPeer: PeerId | null;
  kind: MessageKind;
  text: string;
  sentAt: number;
  receivedAt: number | null;
}

interface PeerRow {
  id: PeerId;
  address: string | null;
  lastSeen: number | null;
  rttMs: number | null;
}

/** The seq of the outgoing message @msgId: recipients are keyed by it (migrations.ts, version 2). */
const SEQ_OF_OUTGOING = "(SELECT seq FROM outgoing WHERE msg_id = @msgId)";

/** The next value of the counter shared by outgoing and received: each max() is one step down its seq index. */
const NEXT_SEQ = `(SELECT coalesce(max(m), 0) + 1 FROM (
  SELECT max(seq) AS m FROM outgoing UNION ALL SELECT max(seq) FROM received))`;

function sqliteStore(db: Database.Database, path: string, checkpointer?: Checkpointer): Store {
  // Prepared once: better-sqlite3 statements are reusable, and preparing is most of a small query's cost.
  const insertOutgoing = db.prepare<{ msgId: string; kind: string; text: string; sentAt: number }>(
    `INSERT INTO outgoing (msg_id, seq, kind, text, sent_at) VALUES (@msgId, ${NEXT_SEQ}, @kind, @text, @sentAt)
     ON CONFLICT (msg_id) DO NOTHING`,
  );
  const insertRecipient = db.prepare<{
    msgId: string;
    peer: string;
    state: string;
    reason: string | null;
    updatedAt: number;
  }>(
    `INSERT INTO outgoing_recipients (seq, peer, state, reason, updated_at)
     VALUES (${SEQ_OF_OUTGOING}, @peer, @state, @reason, @updatedAt)`,
  );
  // A delivered recipient stays delivered: a late failure report must not undo a delivery.
  const updateRecipient = db.prepare<{
    msgId: string;
    peer: string;
    state: string;
    reason: string | null;
    at: number;
  }>(
    `UPDATE outgoing_recipients SET state = @state, reason = @reason, updated_at = @at
     WHERE seq = ${SEQ_OF_OUTGOING} AND peer = @peer AND state <> 'delivered'`,
  );
  const selectOutgoing = db.prepare<[string], OutgoingRow>(
    "SELECT msg_id AS msgId, kind, text, sent_at AS sentAt FROM outgoing WHERE msg_id = ?",
  );
  const selectRecipients = db.prepare<{ msgId: string }, RecipientRow>(
    `SELECT peer, state, reason, updated_at AS updatedAt FROM outgoing_recipients
     WHERE seq = ${SEQ_OF_OUTGOING} ORDER BY rowid`,
  );
  // The subquery's WHERE matches the partial index's, so SQLite reads that small index only.
  const selectUnfinished = db.prepare<[], OutgoingRow>(
    `SELECT msg_id AS msgId, kind, text, sent_at AS sentAt FROM outgoing
     WHERE seq IN (SELECT seq FROM outgoing_recipients WHERE state <> 'delivered')
     ORDER BY seq`,
  );
  const insertReceived = db.prepare<{
    from: string;
    msgId: string;
    kind: string;
    text: string;
    sentAt: number;
    receivedAt: number;
  }>(
    `INSERT INTO received (from_peer, msg_id, seq, kind, text, sent_at, received_at)
     VALUES (@from, @msgId, ${NEXT_SEQ}, @kind, @text, @sentAt, @receivedAt)
     ON CONFLICT (from_peer, msg_id) DO NOTHING`,
  );
  const selectHasReceived = db.prepare<[string, string], 1>(
    "SELECT 1 FROM received WHERE from_peer = ? AND msg_id = ?",
  );
  selectHasReceived.pluck();
  const selectHasReceivedFrom = db.prepare<[string], 1>("SELECT 1 FROM received WHERE from_peer = ? LIMIT 1");
  selectHasReceivedFrom.pluck();
  // Written as one compound rather than a view: SQLite then merges the two seq indexes newest first and stops
  // after `limit` rows (a view over UNION ALL would be scanned whole and sorted).
  const selectHistory = db.prepare<[number], HistoryRow>(
    `SELECT seq, 'out' AS direction, msg_id AS msgId, NULL AS fromPeer, kind, text, sent_at AS sentAt,
       NULL AS receivedAt
     FROM outgoing
     UNION ALL
     SELECT seq, 'in', msg_id, from_peer, kind, text, sent_at, received_at
     FROM received
     ORDER BY seq DESC LIMIT ?`,
  );
  const upsertPeerState = db.prepare<[string, string]>(
    "INSERT INTO peer_state (peer, json) VALUES (?, ?) ON CONFLICT (peer) DO UPDATE SET json = excluded.json",
  );
  const selectPeerStates = db.prepare<[], { peer: PeerId; json: string }>(
    "SELECT peer, json FROM peer_state",
  );
  const upsertMeta = db.prepare<[string, string]>(
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  );
  const selectMeta = db.prepare<[string], string>("SELECT value FROM meta WHERE key = ?");
  selectMeta.pluck();
  // A field the caller left out keeps its stored value (coalesce), so partial observations merge.
  const upsertPeerRow = db.prepare<{
    id: string;
    address: string | null;
    lastSeen: number | null;
    rttMs: number | null;
  }>(
    `INSERT INTO peers (id, address, last_seen, rtt_ms) VALUES (@id, @address, @lastSeen, @rttMs)
     ON CONFLICT (id) DO UPDATE SET
       address = coalesce(excluded.address, address),
       last_seen = coalesce(excluded.last_seen, last_seen),
       rtt_ms = coalesce(excluded.rtt_ms, rtt_ms)`,
  );
  const selectPeers = db.prepare<[], PeerRow>(
    "SELECT id, address, last_seen AS lastSeen, rtt_ms AS rttMs FROM peers ORDER BY id",
  );
  // One wrapper for every transaction. IMMEDIATE takes the write lock at BEGIN: a deferred transaction that reads
  // and then writes can fail with SQLITE_BUSY_SNAPSHOT without waiting on busy_timeout. Nested calls become
  // savepoints (better-sqlite3 does that whenever a transaction is already open).
  const inTransaction = db.transaction((work: () => void): void => work());

  function guarded<T>(operation: () => T): T {
    try {
      return operation();
    } catch (error) {
      throw translate(error, path, db);
    }
  }

  /** A write: on its own it is a commit, which the checkpointer hears of; inside a transaction it waits for that. */
  function written<T>(operation: () => T): T {
    const result = guarded(operation);
    if (!db.inTransaction) checkpointer?.committed();
    return result;
  }

  function recipientsOf(msgId: MsgId): OutgoingRecipient[] {
    return selectRecipients.all({ msgId }).map(toRecipient);
  }

  function outgoingOf(row: OutgoingRow): OutgoingMessage {
    return { ...row, recipients: recipientsOf(row.msgId) };
  }

  function historyEntryOf(row: HistoryRow): HistoryEntry {
    const { msgId, kind, text, sentAt } = row;
    if (row.direction === "out") {
      return { direction: "out", msgId, kind, text, sentAt, recipients: recipientsOf(msgId) };
    }
    if (row.fromPeer === null || row.receivedAt === null) {
      throw damaged(path, "a received message lacks its sender");
    }
    return { direction: "in", msgId, from: row.fromPeer, kind, text, sentAt, receivedAt: row.receivedAt };
  }

  return {
    location: path,
    addOutgoing(message) {
      written(() =>
        inTransaction.immediate(() => {
          assertDistinctRecipients(message);
          const { msgId, kind, text, sentAt } = message;
          if (insertOutgoing.run({ msgId, kind, text, sentAt }).changes === 0) throw duplicateMsgId(msgId);
          for (const r of message.recipients) {
            const reason = r.state === "failed" ? (r.reason ?? null) : null;
            insertRecipient.run({ msgId, peer: r.peer, state: r.state, reason, updatedAt: r.updatedAt });
          }
        }),
      );
    },
    setRecipientState(msgId, peer, state, at, reason) {
      const kept = state === "failed" ? (reason ?? null) : null;
      written(() => updateRecipient.run({ msgId, peer, state, reason: kept, at }));
    },
    getOutgoing(msgId) {
      return guarded(() => {
        const row = selectOutgoing.get(msgId);
        return row === undefined ? undefined : outgoingOf(row);
      });
    },
    unfinishedOutgoing() {
      return guarded(() => selectUnfinished.all().map(outgoingOf));
    },
    addReceived(m) {
      const row = {
        from: m.from,
        msgId: m.msgId,
        kind: m.kind,
        text: m.text,
        sentAt: m.sentAt,
        receivedAt: m.receivedAt,
      };
      return written(() => insertReceived.run(row).changes === 1);
    },
    hasReceived(from, msgId) {
      return guarded(() => selectHasReceived.get(from, msgId) !== undefined);
    },
    hasReceivedFrom(from) {
      return guarded(() => selectHasReceivedFrom.get(from) !== undefined);
    },
    history(limit) {
      if (!db.open) throw closed(path);
      if (!(limit >= 1)) return [];
      // LIMIT -1 is SQLite for "no limit"; a fractional limit would be a datatype mismatch.
      const n = Number.isFinite(limit) ? Math.floor(limit) : -1;
      return guarded(() => selectHistory.all(n).reverse().map(historyEntryOf));
    },
    savePeerState(peer, json) {
      written(() => upsertPeerState.run(peer, json));
    },
    loadPeerStates() {
      return guarded(() => new Map(selectPeerStates.all().map((row) => [row.peer, row.json])));
    },
    setMeta(key, value) {
      written(() => upsertMeta.run(key, value));
    },
    getMeta(key) {
      return guarded(() => selectMeta.get(key));
    },
    upsertPeer(record) {
      const row = {
        id: record.id,
        address: record.address ?? null,
        lastSeen: record.lastSeen ?? null,
        rttMs: record.rttMs ?? null,
      };
      written(() => upsertPeerRow.run(row));
    },
    peers() {
      return guarded(() => selectPeers.all().map(toPeerRecord));
    },
    transaction<T>(work: () => T): T {
      let result: T | undefined;
      written(() =>
        inTransaction.immediate(() => {
          result = work();
          // better-sqlite3 refuses a promise too, but only after checking its own return value, which is void here.
          if (isThenable(result)) throw new TypeError("Transaction function cannot return a promise");
        }),
      );
      return result as T;
    },
    close() {
      // With a checkpoint worker's connection still open, this one is not the last, so its close would not copy the
      // WAL back: the worker's would, a moment later. Empty the WAL first, so that the file is whole once close
      // returns (to be copied, moved aside or deleted). If a reader elsewhere keeps that from finishing, the
      // worker's close or the next open copies the rest back.
      if (checkpointer?.close()) checkpointWal(db, "TRUNCATE", BUSY_TIMEOUT_MS);
      if (db.open) db.close();
    },
  };
}

function toRecipient(row: RecipientRow): OutgoingRecipient {
  const recipient: OutgoingRecipient = { peer: row.peer, state: row.state, updatedAt: row.updatedAt };
  if (row.reason !== null) recipient.reason = row.reason;
  return recipient;
}

function toPeerRecord(row: PeerRow): PeerRecord {
  const record: PeerRecord = { id: row.id };
  if (row.address !== null) record.address = row.address;
  if (row.lastSeen !== null) record.lastSeen = row.lastSeen;
  if (row.rttMs !== null) record.rttMs = row.rttMs;
  return record;
}

function assertDistinctRecipients(message: OutgoingMessage): void {
  const seen = new Set<PeerId>();
  for (const { peer } of message.recipients) {
    if (seen.has(peer)) {
      throw new StoreError("DUPLICATE_RECIPIENT", `message ${message.msgId} names recipient ${peer} twice`);
    }
    seen.add(peer);
  }
}

function duplicateMsgId(msgId: MsgId): StoreError {
  return new StoreError("DUPLICATE_MSG_ID", `an outgoing message with id ${msgId} is already stored`);
}

function isThenable(value: unknown): boolean {
  return typeof value === "object" && value !== null && "then" in value && typeof value.then === "function";
}

function closed(path: string, cause?: unknown): StoreError {
  return new StoreError("CLOSED", `${path} was used after close`, { cause });
}

function damaged(path: string, detail: string, cause?: unknown): StoreError {
  return new StoreError(
    "DB_DAMAGED",
    `${path} is damaged or not a ChatNode database (${oneLine(detail)}); move it aside or restore it from a backup`,
    { cause },
  );
}

/** Turns SQLite's errors into `StoreError`s a caller can act on; anything else (the caller's own errors) passes. */
function translate(error: unknown, path: string, db?: Database.Database): unknown {
  if (error instanceof StoreError) return error;
  // better-sqlite3 throws a plain TypeError when used after close.
  if (db !== undefined && !db.open) return closed(path, error);
  if (!(error instanceof sqlite().SqliteError)) return error;
  const code = error.code;
  if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) {
    return damaged(path, error.message, error);
  }
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new StoreError(
      "DB_LOCKED",
      `${path} is locked by another process (is another ChatNode using this data directory?)`,
      { cause: error },
    );
  }
  if (
    code.startsWith("SQLITE_CANTOPEN") ||
    code.startsWith("SQLITE_PERM") ||
    code.startsWith("SQLITE_READONLY")
  ) {
    return new StoreError("DB_UNAVAILABLE", `cannot open ${path}: ${oneLine(error.message)}`, {
      cause: error,
    });
  }
  return error;
}

function messageOf(error: unknown): string {
  return oneLine(error instanceof Error ? error.message : String(error));
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
