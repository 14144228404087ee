/**
 * The SQLite store's statements, prepared once per connection (better-sqlite3 statements are reusable, and
 * preparing is most of a small query's cost), grouped by the tables they touch. Each row shape is named by the
 * SQL aliases of its SELECT.
 */
import type Database from "better-sqlite3";
import type { MessageKind, MsgId, PeerId } from "../engine/types.ts";
import type { RecipientState } from "./store.ts";

export interface OutgoingRow {
  msgId: MsgId;
  kind: MessageKind;
  text: string;
  sentAt: number;
}

export interface RecipientRow {
  peer: PeerId;
  state: RecipientState;
  reason: string | null;
  updatedAt: number;
}

export interface HistoryRow {
  direction: "out" | "in";
  msgId: MsgId;
  fromPeer: PeerId | null;
  kind: MessageKind;
  text: string;
  sentAt: number;
  receivedAt: number | null;
}

export interface PeerRow {
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

export type OutgoingStatements = ReturnType<typeof outgoingStatements>;
export type ReceivedStatements = ReturnType<typeof receivedStatements>;
export type StateStatements = ReturnType<typeof stateStatements>;

/** Our own messages and their recipients: the outgoing and outgoing_recipients tables. */
export function outgoingStatements(db: Database.Database) {
  return {
    insert: db.prepare<{ msgId: string; kind: string; text: string; sentAt: number }>(
      `INSERT INTO outgoing (msg_id, seq, kind, text, sent_at) VALUES (@msgId, ${NEXT_SEQ}, @kind, @text, @sentAt)
       ON CONFLICT (msg_id) DO NOTHING`,
    ),
    insertRecipient: db.prepare<{
      msgId: string;
      peer: string;
      state: string;
      reason: string | null;
      updatedAt: number;
    }>(
      `INSERT INTO outgoing_recipients (seq, peer, state, reason, updated_at)
       VALUES (${SEQ_OF_OUTGOING}, @peer, @state, @reason, @updatedAt)`,
    ),
    // A delivered recipient stays delivered: a late failure report must not undo a delivery.
    updateRecipient: db.prepare<{
      msgId: string;
      peer: string;
      state: string;
      reason: string | null;
      at: number;
    }>(
      `UPDATE outgoing_recipients SET state = @state, reason = @reason, updated_at = @at
       WHERE seq = ${SEQ_OF_OUTGOING} AND peer = @peer AND state <> 'delivered'`,
    ),
    select: db.prepare<[string], OutgoingRow>(
      "SELECT msg_id AS msgId, kind, text, sent_at AS sentAt FROM outgoing WHERE msg_id = ?",
    ),
    selectRecipients: db.prepare<{ msgId: string }, RecipientRow>(
      `SELECT peer, state, reason, updated_at AS updatedAt FROM outgoing_recipients
       WHERE seq = ${SEQ_OF_OUTGOING} ORDER BY rowid`,
    ),
    // The subquery's WHERE matches the partial index's, so SQLite reads that small index only.
    selectUnfinished: db.prepare<[], OutgoingRow>(
      `SELECT msg_id AS msgId, kind, text, sent_at AS sentAt FROM outgoing
       WHERE seq IN (SELECT seq FROM outgoing_recipients WHERE state <> 'delivered')
       ORDER BY seq`,
    ),
  };
}

/** Messages from others (the received table), and the history that merges both directions. */
export function receivedStatements(db: Database.Database) {
  return {
    insert: db.prepare<{
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
    ),
    selectHas: db
      .prepare<[string, string], 1>("SELECT 1 FROM received WHERE from_peer = ? AND msg_id = ?")
      .pluck(),
    selectHasFrom: db.prepare<[string], 1>("SELECT 1 FROM received WHERE from_peer = ? LIMIT 1").pluck(),
    // Written as one compound rather than a view: SQLite then merges the two seq indexes newest first and stops
    // after `limit` rows (a view over UNION ALL would be scanned whole and sorted).
    selectHistory: db.prepare<[number], HistoryRow>(
      `SELECT seq, 'out' AS direction, msg_id AS msgId, NULL AS fromPeer, kind, text, sent_at AS sentAt,
         NULL AS receivedAt
       FROM outgoing
       UNION ALL
       SELECT seq, 'in', msg_id, from_peer, kind, text, sent_at, received_at
       FROM received
       ORDER BY seq DESC LIMIT ?`,
    ),
  };
}

/** The engine's per-peer state, named values and what we know of each peer: peer_state, meta and peers. */
export function stateStatements(db: Database.Database) {
  return {
    upsertPeerState: db.prepare<[string, string]>(
      "INSERT INTO peer_state (peer, json) VALUES (?, ?) ON CONFLICT (peer) DO UPDATE SET json = excluded.json",
    ),
    selectPeerStates: db.prepare<[], { peer: PeerId; json: string }>("SELECT peer, json FROM peer_state"),
    upsertMeta: db.prepare<[string, string]>(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
    selectMeta: db.prepare<[string], string>("SELECT value FROM meta WHERE key = ?").pluck(),
    // A field the caller left out keeps its stored value (coalesce), so partial observations merge.
    upsertPeer: db.prepare<{
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
    ),
    selectPeers: db.prepare<[], PeerRow>(
      "SELECT id, address, last_seen AS lastSeen, rtt_ms AS rttMs FROM peers ORDER BY id",
    ),
  };
}
