import type Database from "better-sqlite3";
import type { MsgId, PeerId } from "../engine/types.ts";
import type { Checkpointer } from "./checkpointer.ts";
import { assertDistinctRecipients, assertNotThenable, duplicateMsgId } from "./checks.ts";
import { BUSY_TIMEOUT_MS } from "./sqlite-driver.ts";
import { closed, damaged, translate } from "./sqlite-errors.ts";
import {
  type HistoryRow,
  type OutgoingRow,
  type OutgoingStatements,
  outgoingStatements,
  type PeerRow,
  type ReceivedStatements,
  type RecipientRow,
  receivedStatements,
  type StateStatements,
  stateStatements,
} from "./sqlite-statements.ts";
import type {
  HistoryEntry,
  OutgoingMessage,
  OutgoingRecipient,
  PeerRecord,
  ReceivedMessage,
  RecipientState,
  Store,
} from "./store.ts";

/** The `Store` on an open, migrated SQLite connection (sqlite.ts opens it). */
export class SqliteStore implements Store {
  private readonly outgoing: OutgoingStatements;
  private readonly received: ReceivedStatements;
  private readonly state: StateStatements;
  /**
   * One wrapper for every transaction. IMMEDIATE takes the write lock at BEGIN: a deferred transaction that reads
   * and then writes can fail with SQLITE_BUSY_SNAPSHOT without waiting on busy_timeout. Nested calls become
   * savepoints (better-sqlite3 does that whenever a transaction is already open).
   */
  private readonly inTransaction: Database.Transaction<(work: () => void) => void>;

  constructor(
    private readonly db: Database.Database,
    readonly location: string,
    private readonly checkpointer?: Checkpointer,
  ) {
    this.outgoing = outgoingStatements(db);
    this.received = receivedStatements(db);
    this.state = stateStatements(db);
    this.inTransaction = db.transaction((work: () => void): void => work());
  }

  addOutgoing(message: OutgoingMessage): void {
    this.written(() =>
      this.inTransaction.immediate(() => {
        assertDistinctRecipients(message);
        const { msgId, kind, text, sentAt } = message;
        if (this.outgoing.insert.run({ msgId, kind, text, sentAt }).changes === 0)
          throw duplicateMsgId(msgId);
        for (const r of message.recipients) {
          const reason = r.state === "failed" ? (r.reason ?? null) : null;
          this.outgoing.insertRecipient.run({
            msgId,
            peer: r.peer,
            state: r.state,
            reason,
            updatedAt: r.updatedAt,
          });
        }
      }),
    );
  }

  setRecipientState(msgId: MsgId, peer: PeerId, state: RecipientState, at: number, reason?: string): void {
    const kept = state === "failed" ? (reason ?? null) : null;
    this.written(() => this.outgoing.updateRecipient.run({ msgId, peer, state, reason: kept, at }));
  }

  getOutgoing(msgId: MsgId): OutgoingMessage | undefined {
    return this.guarded(() => {
      const row = this.outgoing.select.get(msgId);
      return row === undefined ? undefined : this.outgoingOf(row);
    });
  }

  unfinishedOutgoing(): OutgoingMessage[] {
    return this.guarded(() => this.outgoing.selectUnfinished.all().map((row) => this.outgoingOf(row)));
  }

  addReceived(m: ReceivedMessage): boolean {
    const row = {
      from: m.from,
      msgId: m.msgId,
      kind: m.kind,
      text: m.text,
      sentAt: m.sentAt,
      receivedAt: m.receivedAt,
    };
    return this.written(() => this.received.insert.run(row).changes === 1);
  }

  hasReceived(from: PeerId, msgId: MsgId): boolean {
    return this.guarded(() => this.received.selectHas.get(from, msgId) !== undefined);
  }

  hasReceivedFrom(from: PeerId): boolean {
    return this.guarded(() => this.received.selectHasFrom.get(from) !== undefined);
  }

  history(limit: number): HistoryEntry[] {
    if (!this.db.open) throw closed(this.location);
    if (!(limit >= 1)) return [];
    // LIMIT -1 is SQLite for "no limit"; a fractional limit would be a datatype mismatch.
    const n = Number.isFinite(limit) ? Math.floor(limit) : -1;
    return this.guarded(() =>
      this.received.selectHistory
        .all(n)
        .reverse()
        .map((row) => this.historyEntryOf(row)),
    );
  }

  savePeerState(peer: PeerId, json: string): void {
    this.written(() => this.state.upsertPeerState.run(peer, json));
  }

  loadPeerStates(): Map<PeerId, string> {
    return this.guarded(() => new Map(this.state.selectPeerStates.all().map((row) => [row.peer, row.json])));
  }

  setMeta(key: string, value: string): void {
    this.written(() => this.state.upsertMeta.run(key, value));
  }

  getMeta(key: string): string | undefined {
    return this.guarded(() => this.state.selectMeta.get(key));
  }

  upsertPeer(record: PeerRecord): void {
    const row = {
      id: record.id,
      address: record.address ?? null,
      lastSeen: record.lastSeen ?? null,
      rttMs: record.rttMs ?? null,
    };
    this.written(() => this.state.upsertPeer.run(row));
  }

  peers(): PeerRecord[] {
    return this.guarded(() => this.state.selectPeers.all().map(toPeerRecord));
  }

  transaction<T>(work: () => T): T {
    let result: T | undefined;
    this.written(() =>
      this.inTransaction.immediate(() => {
        result = work();
        // better-sqlite3 refuses a promise too, but only after checking its own return value, which is void here.
        assertNotThenable(result);
      }),
    );
    return result as T;
  }

  close(): void {
    // With a checkpoint worker's connection still open, this one is not the last, so its close would not copy the
    // WAL back: the worker's would, a moment later. Empty the WAL first, so that the file is whole once close
    // returns (to be copied, moved aside or deleted). If a reader elsewhere keeps that from finishing, the
    // worker's close or the next open copies the rest back.
    if (this.checkpointer?.close()) emptyWal(this.db);
    if (this.db.open) this.db.close();
  }

  private guarded<T>(operation: () => T): T {
    try {
      return operation();
    } catch (error) {
      throw translate(error, this.location, this.db);
    }
  }

  /** A write: on its own it is a commit, which the checkpointer hears of; inside a transaction it waits for that. */
  private written<T>(operation: () => T): T {
    const result = this.guarded(operation);
    if (!this.db.inTransaction) this.checkpointer?.committed();
    return result;
  }

  private recipientsOf(msgId: MsgId): OutgoingRecipient[] {
    return this.outgoing.selectRecipients.all({ msgId }).map(toRecipient);
  }

  private outgoingOf(row: OutgoingRow): OutgoingMessage {
    return { ...row, recipients: this.recipientsOf(row.msgId) };
  }

  private historyEntryOf(row: HistoryRow): HistoryEntry {
    const { msgId, kind, text, sentAt } = row;
    if (row.direction === "out") {
      return { direction: "out", msgId, kind, text, sentAt, recipients: this.recipientsOf(msgId) };
    }
    if (row.fromPeer === null || row.receivedAt === null) {
      throw damaged(this.location, "a received message lacks its sender");
    }
    return { direction: "in", msgId, from: row.fromPeer, kind, text, sentAt, receivedAt: row.receivedAt };
  }
}

/**
 * Copies the whole WAL back into the database, then has the next commit write it from its beginning (RESTART) or
 * empties the file (TRUNCATE); false if a reader (or a checkpoint) of another connection kept it from finishing
 * within `busyTimeoutMs`. Never throws: what is left stays in the WAL, safely.
 */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * A TRUNCATE checkpoint, tried again until it completes or BUSY_TIMEOUT_MS passes: while the worker is in the middle
 * of its own checkpoint, SQLite answers ours busy at once, without waiting (the busy timeout covers readers and
 * writers, not another checkpointer). On a loaded machine that moment is long enough to be hit.
 */
function emptyWal(db: Database.Database): void {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  while (!checkpointWal(db, "TRUNCATE", BUSY_TIMEOUT_MS) && Date.now() < deadline)
    Atomics.wait(PAUSE, 0, 0, 2);
}

export function checkpointWal(
  db: Database.Database,
  mode: "RESTART" | "TRUNCATE",
  busyTimeoutMs: number,
): boolean {
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
