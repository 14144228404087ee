import type Database from "better-sqlite3";
import { StoreError } from "./errors.ts";

/**
 * One step of the schema, numbered from 1. A released step is never edited: a change is a new step at the end, so
 * every database, however old, walks the same path to the current schema. `PRAGMA user_version` records the last
 * step applied (0 for a new, empty file).
 */
interface Migration {
  readonly version: number;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      -- seq orders outgoing and received messages together, by insertion whatever the clocks said: both tables draw
      -- it from one counter (the larger of the two maxima, plus one), and history() merges the two seq indexes.
      CREATE TABLE outgoing (
        msg_id  TEXT PRIMARY KEY NOT NULL,
        seq     INTEGER NOT NULL UNIQUE,
        kind    TEXT NOT NULL,
        text    TEXT NOT NULL,
        sent_at INTEGER NOT NULL
      );
      -- The rowid keeps each message's recipients in the order they were given.
      CREATE TABLE outgoing_recipients (
        msg_id     TEXT NOT NULL REFERENCES outgoing (msg_id),
        peer       TEXT NOT NULL,
        state      TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        reason     TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (msg_id, peer)
      );
      -- Holds only recipients still owed a delivery, so unfinishedOutgoing() stays cheap however long the history.
      CREATE INDEX outgoing_recipients_unfinished ON outgoing_recipients (msg_id) WHERE state <> 'delivered';
      CREATE TABLE received (
        from_peer   TEXT NOT NULL,
        msg_id      TEXT NOT NULL,
        seq         INTEGER NOT NULL UNIQUE,
        kind        TEXT NOT NULL,
        text        TEXT NOT NULL,
        sent_at     INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (from_peer, msg_id)
      );
      CREATE TABLE peer_state (
        peer TEXT PRIMARY KEY NOT NULL,
        json TEXT NOT NULL
      );
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
      );
      CREATE TABLE peers (
        id        TEXT PRIMARY KEY NOT NULL,
        address   TEXT,
        last_seen INTEGER,
        rtt_ms    REAL
      );
    `,
  },
  {
    version: 2,
    sql: `
      -- Recipients keyed by their message's seq, not its random msg_id: a message's rows, and its entry in the
      -- unfinished index, then land at the growing end of their B-trees, beside the previous message's, instead of
      -- on a random page each (bench/README.md: the WAL pages a message cost with msg_id keys).
      CREATE TABLE outgoing_recipients_by_seq (
        seq        INTEGER NOT NULL REFERENCES outgoing (seq),
        peer       TEXT NOT NULL,
        state      TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        reason     TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (seq, peer)
      );
      INSERT INTO outgoing_recipients_by_seq (seq, peer, state, reason, updated_at)
        SELECT o.seq, r.peer, r.state, r.reason, r.updated_at
        FROM outgoing_recipients AS r JOIN outgoing AS o ON o.msg_id = r.msg_id
        ORDER BY r.rowid;
      DROP INDEX outgoing_recipients_unfinished;
      DROP TABLE outgoing_recipients;
      ALTER TABLE outgoing_recipients_by_seq RENAME TO outgoing_recipients;
      CREATE INDEX outgoing_recipients_unfinished ON outgoing_recipients (seq) WHERE state <> 'delivered';
    `,
  },
  {
    version: 3,
    sql: `
      -- No table changes: peer_state.json now leaves out the frames of a complete message waiting for its turn (the
      -- message holds their contents; src/engine/recv-stream.ts). A build that knows only version 2 would restore
      -- such a stream without them and could skip the message; at version 3 it refuses the file (DB_TOO_NEW).
      SELECT 1;
    `,
  },
];

/** The schema version this code writes: the last migration's number. */
export const SCHEMA_VERSION: number = MIGRATIONS.at(-1)?.version ?? 0;

export function schemaVersion(db: Database.Database): number {
  const version = db.pragma("user_version", { simple: true });
  if (typeof version !== "number") throw new TypeError(`PRAGMA user_version returned ${String(version)}`);
  return version;
}

/** Throws `DB_TOO_NEW` rather than let this code read, or worse write, a schema it does not know. */
export function assertKnownVersion(version: number, file: string): void {
  if (version > SCHEMA_VERSION) {
    throw new StoreError(
      "DB_TOO_NEW",
      `${file} was written by a newer ChatNode (schema version ${version}, this one knows up to ${SCHEMA_VERSION}); upgrade ChatNode to open it`,
    );
  }
}

/**
 * Brings the schema up to `SCHEMA_VERSION`. All pending steps and the new user_version commit together or not at
 * all, and the version is read inside the same (immediate, so write-locked) transaction: two processes opening one
 * new file cannot both migrate it.
 */
export function migrate(db: Database.Database, file: string): void {
  db.transaction(() => {
    const current = schemaVersion(db);
    assertKnownVersion(current, file);
    if (current === SCHEMA_VERSION) return;
    for (const migration of MIGRATIONS) {
      if (migration.version > current) db.exec(migration.sql);
    }
    // A pragma takes no bound parameters; SCHEMA_VERSION is a number from this file, not input.
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
