import { createHash } from "node:crypto";
import { merkleSplit } from "../engine/wire.ts";
import { sodium } from "./sodium.ts";

/**
 * The Merkle Tree Hash of RFC 9162 §2.1 (Certificate Transparency v2, same as RFC 6962): SHA-256, a 0x00 prefix on
 * leaves and 0x01 on interior nodes (so that no interior node can pass for a leaf), the left subtree the largest
 * power of two below the tree's size. Inclusion proofs are §2.1.3's audit paths, checked with §2.1.3.2's algorithm.
 * Batch signatures (src/crypto/batch-signature.ts) sign such a root once for many messages.
 */

export const MERKLE_HASH_BYTES = 32;

const LEAF_PREFIX = Buffer.of(0x00);
/** 0x01 ‖ left ‖ right, rewritten for every interior node (JavaScript runs one hash at a time). */
const nodeInput = new Uint8Array(1 + 2 * MERKLE_HASH_BYTES);
nodeInput[0] = 0x01;

export function leafHash(data: Uint8Array): Uint8Array {
  return createHash("sha256").update(LEAF_PREFIX).update(data).digest();
}

/**
 * Every message's audit path costs a receiver up to four of these: libsodium's SHA-256 over one reused buffer takes
 * a third of node:crypto's createHash (0.6 against 1.9 µs here, bench/README.md), which allocates a hash object
 * per call. Leaves are longer, and there the two are even.
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== MERKLE_HASH_BYTES || right.length !== MERKLE_HASH_BYTES)
    throw new RangeError("a Merkle interior node joins two 32-byte hashes");
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + MERKLE_HASH_BYTES);
  const out = new Uint8Array(MERKLE_HASH_BYTES);
  sodium().crypto_hash_sha256(out, nodeInput);
  return out;
}

/**
 * The root over `leaves` (already leaf-hashed, at least one), and for each leaf its audit path: the sibling
 * hashes from the leaf up to the root, in the order §2.1.3.1's PATH(m, D[n]) lists them.
 */
export function merkleTree(leaves: readonly Uint8Array[]): { root: Uint8Array; paths: Uint8Array[][] } {
  if (leaves.length === 0) throw new RangeError("a Merkle tree needs at least one leaf");
  const paths: Uint8Array[][] = leaves.map(() => []);
  const build = (from: number, to: number): Uint8Array => {
    if (to - from === 1) return leaves[from] as Uint8Array;
    const middle = from + merkleSplit(to - from);
    const left = build(from, middle);
    const right = build(middle, to);
    // The subtrees' own paths were filled first: this level's sibling comes after them, nearer the root.
    for (let i = from; i < middle; i++) paths[i]?.push(right);
    for (let i = middle; i < to; i++) paths[i]?.push(left);
    return nodeHash(left, right);
  };
  return { root: build(0, leaves.length), paths };
}

/**
 * The root that `path` proves leaf `index` of a `size`-leaf tree belongs to (RFC 9162 §2.1.3.2), or undefined
 * when the path cannot be one for that position: wrong length, index out of range.
 */
export function rootFromAuditPath(
  index: number,
  size: number,
  leaf: Uint8Array,
  path: readonly Uint8Array[],
): Uint8Array | undefined {
  if (index < 0 || index >= size) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0 || p.length !== MERKLE_HASH_BYTES) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}
