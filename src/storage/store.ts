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

export type HistoryEntry =
  | ({ direction: "out" } & OutgoingMessage)
  | ({ direction: "in" } & ReceivedMessage);

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
  /** Records a message before its first send, every recipient `pending`. Throws if the msgId exists. */
  addOutgoing(message: OutgoingMessage): void;
  /** Moves one recipient of an outgoing message to a new state; unknown msgId/peer pairs are ignored. */
  setRecipientState(msgId: MsgId, peer: PeerId, state: RecipientState, at: number, reason?: string): void;
  getOutgoing(msgId: MsgId): OutgoingMessage | undefined;
  /** Outgoing messages with at least one recipient not yet `delivered`, oldest first. */
  unfinishedOutgoing(): OutgoingMessage[];
  /** Stores a received message; false (and nothing changed) if the same (from, msgId) is already stored. */
  addReceived(message: ReceivedMessage): boolean;
  hasReceived(from: PeerId, msgId: MsgId): boolean;
  /** The newest `limit` messages sent or received, oldest first. */
  history(limit: number): HistoryEntry[];
  /** Opaque engine state, one JSON text per peer plus named values (the node's epoch, for one). */
  savePeerState(peer: PeerId, json: string): void;
  loadPeerStates(): Map<PeerId, string>;
  setMeta(key: string, value: string): void;
  getMeta(key: string): string | undefined;
  upsertPeer(record: PeerRecord): void;
  peers(): PeerRecord[];
  transaction<T>(work: () => T): T;
  close(): void;
}
