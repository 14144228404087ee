/**
 * The shape of a batch signature's Merkle tree (RFC 9162 §2.1): where it splits and how long an audit path is.
 * The decoder needs it to check a DATA's proof is well formed; src/crypto/merkle.ts builds and checks the hashes.
 */
import { MAX_BATCH_LEAVES } from "./types.ts";

/**
 * How many hashes the audit path of leaf `index` in a batch of `size` has (RFC 9162 §2.1.3.1: one per level of
 * the tree above the leaf, whose left subtrees are the largest power of two below their size); undefined for a
 * position no batch has.
 */
export function auditPathLength(index: number, size: number): number | undefined {
  if (size < 1 || size > MAX_BATCH_LEAVES || index >= size) return undefined;
  let length = 0;
  for (let from = 0, to = size; to - from > 1; length++) {
    const middle = from + merkleSplit(to - from);
    if (index < middle) to = middle;
    else from = middle;
  }
  return length;
}

/** Where RFC 9162 splits a tree of n ≥ 2 leaves: its left subtree holds the largest power of two below n. */
export function merkleSplit(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
