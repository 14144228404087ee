// No node: imports and no better-sqlite3: the simulator, which runs the engine alone, uses this store.
import type { MsgId, PeerId } from "../engine/types.ts";
import { assertDistinctRecipients, assertNotThenable, duplicateMsgId } from "./checks.ts";
import { StoreError } from "./errors.ts";
import type {
  HistoryEntry,
  OutgoingMessage,
  OutgoingRecipient,
  PeerRecord,
  ReceivedMessage,
  RecipientState,
  Store,
} from "./store.ts";
import { UndoLog } from "./undo-log.ts";

/** Where a history entry's message lives: `key` indexes `outgoing` or `received`. */
type LogEntry = { direction: "out"; key: MsgId } | { direction: "in"; key: string };

/**
 * A `Store` in plain Maps, with the SQLite store's semantics (the same contract suite runs against both) and none of
 * its durability. Stored objects are never handed out: every read returns copies, every write copies its input.
 */
export function createMemoryStore(): Store {
  return new MemoryStore();
}

class MemoryStore implements Store {
  readonly location = "memory";
  /** Outgoing messages in insertion order (a Map iterates in insertion order, and a rollback only removes the newest). */
  private readonly outgoing = new Map<MsgId, OutgoingMessage>();
  private readonly received = new Map<string, ReceivedMessage>();
  /** Both directions in insertion order: the history. */
  private readonly log: LogEntry[] = [];
  private readonly peerStates = new Map<PeerId, string>();
  private readonly meta = new Map<string, string>();
  private readonly peerRecords = new Map<PeerId, PeerRecord>();
  private readonly undo = new UndoLog();
  private closed = false;

  addOutgoing(message: OutgoingMessage): void {
    this.assertOpen();
    assertDistinctRecipients(message);
    const { msgId } = message;
    if (this.outgoing.has(msgId)) throw duplicateMsgId(msgId);
    const { kind, text, sentAt } = message;
    this.outgoing.set(msgId, {
      msgId,
      kind,
      text,
      sentAt,
      recipients: message.recipients.map(normalRecipient),
    });
    this.log.push({ direction: "out", key: msgId });
    this.undo.record(() => {
      this.log.pop();
      this.outgoing.delete(msgId);
    });
  }

  setRecipientState(msgId: MsgId, peer: PeerId, state: RecipientState, at: number, reason?: string): void {
    this.assertOpen();
    const recipients = this.outgoing.get(msgId)?.recipients;
    const index = recipients?.findIndex((r) => r.peer === peer) ?? -1;
    const previous = recipients?.[index];
    // A delivered recipient stays delivered: a late failure report must not undo a delivery.
    if (recipients === undefined || previous === undefined || previous.state === "delivered") return;
    recipients[index] = normalRecipient({ peer, state, updatedAt: at, reason });
    this.undo.record(() => {
      recipients[index] = previous;
    });
  }

  getOutgoing(msgId: MsgId): OutgoingMessage | undefined {
    this.assertOpen();
    const message = this.outgoing.get(msgId);
    return message === undefined ? undefined : copyOutgoing(message);
  }

  unfinishedOutgoing(): OutgoingMessage[] {
    this.assertOpen();
    const unfinished: OutgoingMessage[] = [];
    for (const message of this.outgoing.values()) {
      if (message.recipients.some((r) => r.state !== "delivered")) unfinished.push(copyOutgoing(message));
    }
    return unfinished;
  }

  addReceived(message: ReceivedMessage): boolean {
    this.assertOpen();
    const key = receivedKey(message.from, message.msgId);
    if (this.received.has(key)) return false;
    const { msgId, from, kind, text, sentAt, receivedAt } = message;
    this.received.set(key, { msgId, from, kind, text, sentAt, receivedAt });
    this.log.push({ direction: "in", key });
    this.undo.record(() => {
      this.log.pop();
      this.received.delete(key);
    });
    return true;
  }

  hasReceived(from: PeerId, msgId: MsgId): boolean {
    this.assertOpen();
    return this.received.has(receivedKey(from, msgId));
  }

  hasReceivedFrom(from: PeerId): boolean {
    this.assertOpen();
    for (const message of this.received.values()) if (message.from === from) return true;
    return false;
  }

  history(limit: number): HistoryEntry[] {
    this.assertOpen();
    if (!(limit >= 1)) return [];
    const start = Number.isFinite(limit) ? Math.max(0, this.log.length - Math.floor(limit)) : 0;
    return this.log.slice(start).map((entry) => this.entryOf(entry));
  }

  savePeerState(peer: PeerId, json: string): void {
    this.assertOpen();
    this.undo.put(this.peerStates, peer, json);
  }

  loadPeerStates(): Map<PeerId, string> {
    this.assertOpen();
    return new Map(this.peerStates);
  }

  setMeta(key: string, value: string): void {
    this.assertOpen();
    this.undo.put(this.meta, key, value);
  }

  getMeta(key: string): string | undefined {
    this.assertOpen();
    return this.meta.get(key);
  }

  upsertPeer(record: PeerRecord): void {
    this.assertOpen();
    // A field the caller left out keeps its stored value, so partial observations merge.
    const merged: PeerRecord = { ...this.peerRecords.get(record.id), id: record.id };
    if (record.address !== undefined) merged.address = record.address;
    if (record.lastSeen !== undefined) merged.lastSeen = record.lastSeen;
    if (record.rttMs !== undefined) merged.rttMs = record.rttMs;
    this.undo.put(this.peerRecords, record.id, merged);
  }

  peers(): PeerRecord[] {
    this.assertOpen();
    return [...this.peerRecords.values()]
      .sort((a, b) => compare(a.id, b.id))
      .map((record) => ({ ...record }));
  }

  transaction<T>(work: () => T): T {
    this.assertOpen();
    return this.undo.run(() => {
      const result = work();
      assertNotThenable(result);
      return result;
    });
  }

  close(): void {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError("CLOSED", "the in-memory store was used after close");
  }

  private entryOf(entry: LogEntry): HistoryEntry {
    if (entry.direction === "out")
      return { direction: "out", ...copyOutgoing(stored(this.outgoing, entry.key)) };
    return { direction: "in", ...stored(this.received, entry.key) };
  }
}

function receivedKey(from: PeerId, msgId: MsgId): string {
  return `${from}/${msgId}`;
}

function stored<K, V>(map: Map<K, V>, key: K): V {
  const value = map.get(key);
  if (value === undefined) throw new Error(`memory store: history names a missing message ${String(key)}`);
  return value;
}

/** The stored form of a recipient: a fresh object, with a reason only when it failed. */
function normalRecipient(r: OutgoingRecipient): OutgoingRecipient {
  const recipient: OutgoingRecipient = { peer: r.peer, state: r.state, updatedAt: r.updatedAt };
  if (r.state === "failed" && r.reason !== undefined) recipient.reason = r.reason;
  return recipient;
}

function copyOutgoing(message: OutgoingMessage): OutgoingMessage {
  return { ...message, recipients: message.recipients.map((r) => ({ ...r })) };
}

/** Orders like SQLite's default BINARY collation for the ASCII ids we store. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
