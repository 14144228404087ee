// No node: imports and no better-sqlite3: the simulator, which runs the engine alone, uses this store.
import type { MsgId, PeerId } from "../engine/types.ts";
import { StoreError } from "./errors.ts";
import type {
  HistoryEntry,
  OutgoingMessage,
  OutgoingRecipient,
  PeerRecord,
  ReceivedMessage,
  Store,
} from "./store.ts";

/** Where a history entry's message lives: `key` indexes `outgoing` or `received`. */
type LogEntry = { direction: "out"; key: MsgId } | { direction: "in"; key: string };

/**
 * A `Store` in plain Maps, with the SQLite store's semantics (the same contract suite runs against both) and none of
 * its durability. Stored objects are never handed out: every read returns copies, every write copies its input.
 */
export function createMemoryStore(): Store {
  /** Outgoing messages in insertion order (a Map iterates in insertion order, and a rollback only removes the newest). */
  const outgoing = new Map<MsgId, OutgoingMessage>();
  const received = new Map<string, ReceivedMessage>();
  /** Both directions in insertion order: the history. */
  const log: LogEntry[] = [];
  const peerStates = new Map<PeerId, string>();
  const meta = new Map<string, string>();
  const peerRecords = new Map<PeerId, PeerRecord>();
  let closed = false;

  /**
   * While a transaction runs, every change pushes the step that reverts it. Rolling back runs them newest first,
   * back to where the (possibly nested) transaction began. An undo log costs O(changes), where a snapshot would
   * copy the whole store on every transaction.
   */
  let undo: (() => void)[] | undefined;

  function onRollback(step: () => void): void {
    undo?.push(step);
  }

  function assertOpen(): void {
    if (closed) throw new StoreError("CLOSED", "the in-memory store was used after close");
  }

  /** Sets a value that is never undefined (strings and records), so undefined means there was none. */
  function put<K, V extends NonNullable<unknown>>(map: Map<K, V>, key: K, value: V): void {
    const previous = map.get(key);
    map.set(key, value);
    onRollback(() => {
      if (previous === undefined) map.delete(key);
      else map.set(key, previous);
    });
  }

  function entryOf(entry: LogEntry): HistoryEntry {
    if (entry.direction === "out") return { direction: "out", ...copyOutgoing(stored(outgoing, entry.key)) };
    return { direction: "in", ...stored(received, entry.key) };
  }

  return {
    location: "memory",
    addOutgoing(message) {
      assertOpen();
      assertDistinctRecipients(message);
      const { msgId } = message;
      if (outgoing.has(msgId)) {
        throw new StoreError("DUPLICATE_MSG_ID", `an outgoing message with id ${msgId} is already stored`);
      }
      const { kind, text, sentAt } = message;
      outgoing.set(msgId, { msgId, kind, text, sentAt, recipients: message.recipients.map(normalRecipient) });
      log.push({ direction: "out", key: msgId });
      onRollback(() => {
        log.pop();
        outgoing.delete(msgId);
      });
    },
    setRecipientState(msgId, peer, state, at, reason) {
      assertOpen();
      const recipients = outgoing.get(msgId)?.recipients;
      const index = recipients?.findIndex((r) => r.peer === peer) ?? -1;
      const previous = recipients?.[index];
      // A delivered recipient stays delivered: a late failure report must not undo a delivery.
      if (recipients === undefined || previous === undefined || previous.state === "delivered") return;
      recipients[index] = normalRecipient({ peer, state, updatedAt: at, reason });
      onRollback(() => {
        recipients[index] = previous;
      });
    },
    getOutgoing(msgId) {
      assertOpen();
      const message = outgoing.get(msgId);
      return message === undefined ? undefined : copyOutgoing(message);
    },
    unfinishedOutgoing() {
      assertOpen();
      const unfinished: OutgoingMessage[] = [];
      for (const message of outgoing.values()) {
        if (message.recipients.some((r) => r.state !== "delivered")) unfinished.push(copyOutgoing(message));
      }
      return unfinished;
    },
    addReceived(message) {
      assertOpen();
      const key = receivedKey(message.from, message.msgId);
      if (received.has(key)) return false;
      const { msgId, from, kind, text, sentAt, receivedAt } = message;
      received.set(key, { msgId, from, kind, text, sentAt, receivedAt });
      log.push({ direction: "in", key });
      onRollback(() => {
        log.pop();
        received.delete(key);
      });
      return true;
    },
    hasReceived(from, msgId) {
      assertOpen();
      return received.has(receivedKey(from, msgId));
    },
    hasReceivedFrom(from) {
      assertOpen();
      for (const message of received.values()) if (message.from === from) return true;
      return false;
    },
    history(limit) {
      assertOpen();
      if (!(limit >= 1)) return [];
      const start = Number.isFinite(limit) ? Math.max(0, log.length - Math.floor(limit)) : 0;
      return log.slice(start).map(entryOf);
    },
    savePeerState(peer, json) {
      assertOpen();
      put(peerStates, peer, json);
    },
    loadPeerStates() {
      assertOpen();
      return new Map(peerStates);
    },
    setMeta(key, value) {
      assertOpen();
      put(meta, key, value);
    },
    getMeta(key) {
      assertOpen();
      return meta.get(key);
    },
    upsertPeer(record) {
      assertOpen();
      // A field the caller left out keeps its stored value, so partial observations merge.
      const merged: PeerRecord = { ...peerRecords.get(record.id), id: record.id };
      if (record.address !== undefined) merged.address = record.address;
      if (record.lastSeen !== undefined) merged.lastSeen = record.lastSeen;
      if (record.rttMs !== undefined) merged.rttMs = record.rttMs;
      put(peerRecords, record.id, merged);
    },
    peers() {
      assertOpen();
      return [...peerRecords.values()].sort((a, b) => compare(a.id, b.id)).map((record) => ({ ...record }));
    },
    transaction<T>(work: () => T): T {
      assertOpen();
      const outermost = undo === undefined;
      const steps = undo ?? [];
      undo = steps;
      const mark = steps.length;
      try {
        const result = work();
        if (isThenable(result)) throw new TypeError("Transaction function cannot return a promise");
        return result;
      } catch (error) {
        while (steps.length > mark) steps.pop()?.();
        throw error;
      } finally {
        // A committed nested transaction leaves its steps: the outer one may still roll them back.
        if (outermost) undo = undefined;
      }
    },
    close() {
      closed = true;
    },
  };
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

function assertDistinctRecipients(message: OutgoingMessage): void {
  const seen = new Set<PeerId>();
  for (const { peer } of message.recipients) {
    if (seen.has(peer)) {
      throw new StoreError("DUPLICATE_RECIPIENT", `message ${message.msgId} names recipient ${peer} twice`);
    }
    seen.add(peer);
  }
}

/** Orders like SQLite's default BINARY collation for the ASCII ids we store. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isThenable(value: unknown): boolean {
  return typeof value === "object" && value !== null && "then" in value && typeof value.then === "function";
}
