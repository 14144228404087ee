import type { MessageKind, MsgId, PeerId } from "../engine/types.ts";

/** Where one recipient of an outgoing message stands. `failed` may still turn into `delivered` (offline delivery). */
export type RecipientState = "pending" | "delivered" | "failed";

export interface OutgoingRecipient {
  peer: PeerId;
  state: RecipientState;
  /** Why it failed, in words a user can read; absent unless `state` is `failed`. */
  reason?: string;
  updatedAt: number;
}

export interface OutgoingMessage {
  msgId: MsgId;
  kind: MessageKind;
  text: string;
  /** Wall-clock ms when the user sent it. */
  sentAt: number;
  recipients: OutgoingRecipient[];
}

export interface ReceivedMessage {
  msgId: MsgId;
  from: PeerId;
  kind: MessageKind;
  text: string;
  sentAt: number;
  receivedAt: number;
}

export type HistoryEntry = ({ direction: "out" } & OutgoingMessage) | ({ direction: "in" } & ReceivedMessage);

export interface PeerRecord {
  id: PeerId;
  address?: string;
  lastSeen?: number;
  rttMs?: number;
}

/**
 * The node's durable state. Every method is synchronous and atomic on its own; `transaction` groups several so
 * that a crash leaves all or none of them (a received message and the engine state that ACKs it, for example).
 * Implementations: sqlite.ts (durable, WAL) and memory.ts (for --ephemeral, the simulator and tests); both pass
 * the one contract suite in test/storage/store-contract.ts.
 */
export interface Store {
  /** Where the data lives, for error messages: a file path, or "memory". */
  readonly location: string;
  /**
   * Records a message before its first send, every recipient `pending`. Recipients are stored as given, though, so
   * one may start `failed` (a peer not in the directory, say). Throws `StoreError` `DUPLICATE_MSG_ID` if the msgId
   * exists, `DUPLICATE_RECIPIENT` if a peer is named twice, storing nothing.
   */
  addOutgoing(message: OutgoingMessage): void;
  /**
   * Moves one recipient of an outgoing message to a new state; unknown msgId/peer pairs are ignored. `delivered` is
   * final: a later change is ignored, so a late give-up cannot undo a delivery. `reason` is kept only for `failed`.
   */
  setRecipientState(msgId: MsgId, peer: PeerId, state: RecipientState, at: number, reason?: string): void;
  getOutgoing(msgId: MsgId): OutgoingMessage | undefined;
  /** Outgoing messages with at least one recipient not yet `delivered`, oldest (first stored) first. */
  unfinishedOutgoing(): OutgoingMessage[];
  /** Stores a received message; false (and nothing changed) if the same (from, msgId) is already stored. */
  addReceived(message: ReceivedMessage): boolean;
  hasReceived(from: PeerId, msgId: MsgId): boolean;
  /** Whether any message from `from` is stored. */
  hasReceivedFrom(from: PeerId): boolean;
  /**
   * The newest `limit` messages sent or received, oldest first, in the order they were stored (not by their
   * timestamps, which come from different clocks). Outgoing entries carry their recipients' current state.
   */
  history(limit: number): HistoryEntry[];
  /** Opaque engine state, one JSON text per peer plus named values (the node's epoch, for one). */
  savePeerState(peer: PeerId, json: string): void;
  loadPeerStates(): Map<PeerId, string>;
  setMeta(key: string, value: string): void;
  getMeta(key: string): string | undefined;
  /** Creates or updates a peer; a field the record leaves undefined keeps its stored value. */
  upsertPeer(record: PeerRecord): void;
  /** Every peer, ordered by id. */
  peers(): PeerRecord[];
  /**
   * Runs `work` so that all its store calls commit together. If it throws, every change it made is rolled back and
   * the error rethrown. Nested calls roll back alone (savepoints). `work` must be synchronous: a promise is refused.
   */
  transaction<T>(work: () => T): T;
  /** Idempotent; any other call after it throws `StoreError` `CLOSED`. */
  close(): void;
}
