/** What the session layer reports and counts. */
import type { Address, PeerId } from "../engine/types.ts";
import type { HandshakeFailure } from "./handshake.ts";
import type { SessionDecodeError } from "./wire.ts";

/** Why a datagram was dropped by the session layer, counted in `stats().refused`. */
export type SessionRefusal =
  | SessionDecodeError
  | HandshakeFailure
  | "replayed-initiation"
  | "unknown-index"
  | "expired"
  | "replayed"
  | "bad-aead";

export type SessionEvent =
  | { type: "established"; peer: PeerId; initiator: boolean }
  | { type: "gave-up"; peer: PeerId; dropped: number }
  | { type: "roamed"; peer: PeerId; from: Address; to: Address }
  /** A datagram in an older format: the runtime says so ("peer speaks protocol v1"); other refusals are counted. */
  | { type: "old-protocol"; from: Address; version: 1 | 2 }
  /** A real handshake by a key this node has not pinned: a stranger, or a contact not imported yet. */
  | { type: "unknown-key"; from: Address };

export interface SessionStats {
  /** Every byte this layer put on the wire (handshakes, sealed datagrams, keepalives), UDP and IP headers apart. */
  wireBytesOut: number;
  sealed: number;
  opened: number;
  handshakesStarted: number;
  established: number;
  keysErased: number;
  queueDropped: number;
  /** Datagrams for a peer with no pinned key, dropped. */
  noSessionPeer: number;
  /** Initiations left unanswered because this side's own, crossing them, wins (the lower static key). */
  crossed: number;
  /** Session indices held now (keypairs and pending handshakes): bounded by peers, whatever arrives. */
  indices: number;
  refused: Partial<Record<SessionRefusal, number>>;
}

export function newSessionStats(): SessionStats {
  return {
    wireBytesOut: 0,
    sealed: 0,
    opened: 0,
    handshakesStarted: 0,
    established: 0,
    keysErased: 0,
    queueDropped: 0,
    noSessionPeer: 0,
    crossed: 0,
    indices: 0,
    refused: {},
  };
}
