import type { BatchProof } from "../engine/ports.ts";
import { MAX_BATCH_LEAVES } from "../engine/types.ts";
import { utf8 } from "./bytes.ts";
import { leafHash, MERKLE_HASH_BYTES, merkleTree, rootFromAuditPath } from "./merkle.ts";

/**
 * Batch signatures (docs/PROTOCOL.md §6.1): an author signs up to MAX_BATCH_LEAVES messages with one Ed25519
 * signature over the RFC 9162 Merkle root of the batch; each message travels with its audit path. A receiver
 * recomputes the root from the message and its path and checks the one signature, which it needs to do only once
 * for the whole batch (src/crypto/port.ts remembers it). It is the construction of Certificate Transparency's
 * signed tree heads (a signature over a Merkle root, inclusion proofs for the entries) and the idea of
 * draft-ietf-tls-batch-signing: a change to any message, or to its path, changes the root and fails the
 * signature, and the 0x00 / 0x01 prefixes keep an interior node from passing for a message.
 */

/** What the author's Ed25519 key signs: this context, the batch size (u8), then the 32-byte root. */
const STATEMENT_CONTEXT = utf8("chatnode batch v3\0");

export function batchStatement(size: number, root: Uint8Array): Uint8Array {
  const out = new Uint8Array(STATEMENT_CONTEXT.length + 1 + MERKLE_HASH_BYTES);
  out.set(STATEMENT_CONTEXT);
  out[STATEMENT_CONTEXT.length] = size;
  out.set(root, STATEMENT_CONTEXT.length + 1);
  return out;
}

/** One proof per message, in order; `sign` is the author's Ed25519 signature over a statement. */
export function signBatch(
  messages: readonly Uint8Array[],
  sign: (statement: Uint8Array) => Uint8Array,
): BatchProof[] {
  if (messages.length === 0 || messages.length > MAX_BATCH_LEAVES)
    throw new RangeError(`a batch signs 1 to ${MAX_BATCH_LEAVES} messages, not ${messages.length}`);
  const { root, paths } = merkleTree(messages.map(leafHash));
  const signature = sign(batchStatement(messages.length, root));
  return paths.map((path, index) => ({ index, size: messages.length, path, signature }));
}

/** The statement over a whole batch of `messages`, in order; undefined for a count no batch has. */
export function wholeBatchStatement(messages: readonly Uint8Array[]): Uint8Array | undefined {
  if (messages.length === 0 || messages.length > MAX_BATCH_LEAVES) return undefined;
  return batchStatement(messages.length, merkleTree(messages.map(leafHash)).root);
}

/**
 * The statement `proof` claims its author signed over `message`, to be checked against the signature; undefined
 * if the proof cannot hold for any root (a size out of range, a path of the wrong length).
 */
export function statementOf(message: Uint8Array, proof: BatchProof): Uint8Array | undefined {
  if (proof.size < 1 || proof.size > MAX_BATCH_LEAVES) return undefined;
  const root = rootFromAuditPath(proof.index, proof.size, leafHash(message), proof.path);
  return root && batchStatement(proof.size, root);
}
