import type { MsgId, PeerId } from "./types.ts";

/** Randomness, injected so that the simulator can replay a seed. */
export interface Rng {
  /** A uniformly random integer in [0, 2^32). */
  nextU32(): number;
  /** `length` random bytes. */
  bytes(length: number): Uint8Array;
}

/**
 * A message's share of its author's batch signature (docs/PROTOCOL.md §6.1): its place in the RFC 9162 Merkle tree
 * over the batch, the sibling hashes from it up to the root, and the Ed25519 signature over that root.
 */
export interface BatchProof {
  /** 0 … size − 1. */
  readonly index: number;
  /** How many messages the batch has: 1 … MAX_BATCH_LEAVES. */
  readonly size: number;
  /** 32 bytes each, from the message's leaf up; as many as the tree's shape gives this index. */
  readonly path: readonly Uint8Array[];
  readonly signature: Uint8Array;
}

/**
 * Everything cryptographic the engine needs, injected. The real implementation is src/crypto/port.ts
 * (Ed25519 batch signatures, HPKE); the simulator may use the same with keys made from seeds.
 * None of these may throw for bad input: they return false / undefined.
 */
export interface CryptoPort {
  /** This node's own key id. */
  readonly selfId: PeerId;
  /** Whether `peer` is in the directory (we hold its public keys). */
  knows(peer: PeerId): boolean;
  /** Signs 1 to MAX_BATCH_LEAVES messages with one Ed25519 signature by this node: one proof per message. */
  signBatch(messages: readonly Uint8Array[]): BatchProof[];
  /** Whether `proof` shows that `author` signed `message` (in a batch of its own or of many). */
  verify(author: PeerId, message: Uint8Array, proof: BatchProof): boolean;
  /** Whether `signature` is `author`'s over the batch of exactly `messages`, in order (a BATCH carries them all). */
  verifyBatch(author: PeerId, messages: readonly Uint8Array[], signature: Uint8Array): boolean;
  /** Seals `plaintext` so that only `recipient` can open it, binding `aad`. */
  seal(recipient: PeerId, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Opens a ciphertext sealed to this node; undefined if it was sealed to another key or tampered with. */
  open(ciphertext: Uint8Array, aad: Uint8Array): Uint8Array | undefined;
}

/**
 * The durable record of what this node has delivered, asked before delivering a message its sender marked as
 * re-sent (DataFlags.Resent: after a give-up or a restart, under a new sequence number), so that it is recognised as
 * a duplicate. A runtime should also refuse to store a message twice, which covers a sender that re-sends without
 * the mark.
 */
export interface DeliveryLog {
  has(from: PeerId, msgId: MsgId): boolean;
  /**
   * Whether anything from `from` was ever delivered here. Asked once when a receive stream starts without saved
   * state: if nothing was, no replayed datagram can bring back an old message, and a first sending needs no check.
   */
  hasAnyFrom(from: PeerId): boolean;
}
