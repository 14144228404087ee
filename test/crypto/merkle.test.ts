import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { batchStatement, signBatch, statementOf } from "../../src/crypto/batch-signature.ts";
import { leafHash, merkleTree, nodeHash, rootFromAuditPath } from "../../src/crypto/merkle.ts";
import { auditPathLength } from "../../src/engine/wire.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

/**
 * The Certificate Transparency reference vectors (RFC 6962's tree, as published with the CT and transparency-dev
 * Merkle libraries): eight leaf inputs, the root of each tree of the first n of them, and audit paths.
 */
const LEAF_INPUTS = [
  "",
  "00",
  "10",
  "2021",
  "3031",
  "40414243",
  "5051525354555657",
  "606162636465666768696a6b6c6d6e6f",
].map(unhex);
const ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
/** (0-based leaf index, tree size, audit path). */
const INCLUSION: Array<[number, number, string[]]> = [
  [0, 1, []],
  [
    0,
    8,
    [
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
  ],
  [
    5,
    8,
    [
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
  ],
  [2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]],
  [
    1,
    5,
    [
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
  ],
];
const LEAVES = LEAF_INPUTS.map(leafHash);

describe("merkle: RFC 9162 §2.1 against the Certificate Transparency vectors", () => {
  it("the root of every tree of the first n reference leaves", () => {
    for (let n = 1; n <= LEAVES.length; n++)
      assert.equal(hex(merkleTree(LEAVES.slice(0, n)).root), ROOTS[n - 1]);
  });

  it("the reference audit paths: built, and checked back to the reference root", () => {
    for (const [index, size, path] of INCLUSION) {
      const { paths } = merkleTree(LEAVES.slice(0, size));
      assert.deepEqual(paths[index]?.map(hex), path, `leaf ${index} of ${size}`);
      assert.equal(auditPathLength(index, size), path.length);
      const root = rootFromAuditPath(index, size, LEAVES[index] as Uint8Array, path.map(unhex));
      assert.equal(root && hex(root), ROOTS[size - 1]);
    }
  });

  it("a leaf cannot pass for an interior node: the prefixes differ", () => {
    const [a, b] = LEAVES as [Uint8Array, Uint8Array];
    assert.notEqual(hex(leafHash(new Uint8Array([...a, ...b]))), hex(nodeHash(a, b)));
    assert.equal(hex(nodeHash(a, b)), ROOTS[1]);
  });
});

describe("merkle: every proof of every tree up to 40 leaves (property)", () => {
  const many = Array.from({ length: 40 }, (_, i) => leafHash(new Uint8Array([i, i * 7, 3])));

  it("verifies its own leaf at its own position, and fails altered in any way", () => {
    for (let size = 1; size <= many.length; size++) {
      const tree = many.slice(0, size);
      const { root, paths } = merkleTree(tree);
      for (let index = 0; index < size; index++) {
        const path = paths[index] as Uint8Array[];
        const leaf = tree[index] as Uint8Array;
        if (size <= 16) assert.equal(path.length, auditPathLength(index, size), "the decoder's path length");
        assert.equal(hex(rootFromAuditPath(index, size, leaf, path) ?? new Uint8Array()), hex(root));
        const differs = (r: Uint8Array | undefined) => r === undefined || hex(r) !== hex(root);
        if (size > 1) {
          assert.ok(differs(rootFromAuditPath((index + 1) % size, size, leaf, path)), "another index");
          assert.ok(differs(rootFromAuditPath(index, size, tree[(index + 1) % size] as Uint8Array, path)));
          assert.ok(differs(rootFromAuditPath(index, size, leaf, path.slice(1))), "a hash short");
        }
        assert.ok(differs(rootFromAuditPath(index, size, leaf, [...path, root])), "a hash more");
        assert.equal(rootFromAuditPath(index, index, leaf, path), undefined, "index ≥ size");
      }
    }
  });

  it("batch signatures: a statement binds the size and root; any altered part of a proof changes it", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 16 }),
        fc.nat(),
        fc.nat(),
        (messages, pick, bit) => {
          const signed: Uint8Array[] = [];
          const proofs = signBatch(messages, (statement) => {
            signed.push(statement);
            return new Uint8Array(64);
          });
          assert.equal(signed.length, 1);
          const i = pick % messages.length;
          const message = messages[i] as Uint8Array;
          const proof = proofs[i];
          assert.ok(proof);
          assert.deepEqual(statementOf(message, proof), signed[0]);
          const statement = hex(signed[0] as Uint8Array);
          const hashes = proof.path.length;
          if (hashes > 0) {
            const path = proof.path.map((h) => Uint8Array.from(h));
            const which = path[bit % hashes] as Uint8Array;
            which[(bit >> 3) % 32] = (which[(bit >> 3) % 32] as number) ^ (1 << (bit & 7));
            const altered = statementOf(message, { ...proof, path });
            assert.ok(altered === undefined || hex(altered) !== statement);
          }
          const other = statementOf(new Uint8Array([...message, 0]), proof);
          assert.ok(other === undefined || hex(other) !== statement);
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });

  it("the statement: a context string, the size, the root", () => {
    const root = new Uint8Array(32).fill(0xab);
    const statement = batchStatement(7, root);
    assert.equal(Buffer.from(statement.subarray(0, 18)).toString("latin1"), "chatnode batch v3\0");
    assert.equal(statement[18], 7);
    assert.deepEqual(statement.subarray(19), root);
    assert.equal(
      statementOf(new Uint8Array(1), { index: 0, size: 17, path: [], signature: root }),
      undefined,
    );
  });
});

describe("merkle: odd sizes, every index, and refused paths", () => {
  const leaves = Array.from({ length: 17 }, (_, i) => leafHash(new Uint8Array([0xa0, i])));
  /** RFC 9162 §2.1.1's MTH, written out recursively as the RFC states it. */
  const mth = (d: Uint8Array[]): Uint8Array => {
    if (d.length === 1) return d[0] as Uint8Array;
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return nodeHash(mth(d.slice(0, k)), mth(d.slice(k)));
  };

  it("a tree of no leaves is a RangeError", () => {
    assert.throws(() => merkleTree([]), {
      name: "RangeError",
      message: "a Merkle tree needs at least one leaf",
    });
  });

  it("sizes 1 to 9: the root is RFC 9162's MTH and every index's path leads back to it, and only it", () => {
    for (let size = 1; size <= 9; size++) {
      const tree = leaves.slice(0, size);
      const { root, paths } = merkleTree(tree);
      assert.equal(hex(root), hex(mth(tree)), `root of ${size}`);
      assert.equal(paths.length, size);
      for (let index = 0; index < size; index++) {
        const path = paths[index] as Uint8Array[];
        const leaf = tree[index] as Uint8Array;
        assert.equal(path.length, auditPathLength(index, size), `path length of ${index}/${size}`);
        assert.equal(hex(rootFromAuditPath(index, size, leaf, path) ?? new Uint8Array()), hex(root));
        // A path one hash short or one hash long cannot fit the shape of the tree at all.
        if (path.length > 0) assert.equal(rootFromAuditPath(index, size, leaf, path.slice(0, -1)), undefined);
        assert.equal(
          rootFromAuditPath(index, size, leaf, [...path, root]),
          undefined,
          `${index}/${size} + 1`,
        );
        for (let which = 0; which < path.length; which++) {
          const tampered = path.map((h) => Uint8Array.from(h));
          const hash = tampered[which] as Uint8Array;
          hash[0] = (hash[0] as number) ^ 1;
          const r = rootFromAuditPath(index, size, leaf, tampered);
          assert.ok(r && hex(r) !== hex(root), `tampered hash ${which} of ${index}/${size}`);
          const short = path.map((h, i) => (i === which ? h.subarray(0, 31) : h));
          assert.equal(rootFromAuditPath(index, size, leaf, short), undefined, "a 31-byte hash");
          const long = path.map((h, i) => (i === which ? Uint8Array.of(...h, 0) : h));
          assert.equal(rootFromAuditPath(index, size, leaf, long), undefined, "a 33-byte hash");
        }
      }
    }
  });

  it("an index outside 0 … size − 1 proves nothing, even with a path that fits", () => {
    const [a, b] = leaves as [Uint8Array, Uint8Array];
    assert.equal(rootFromAuditPath(-1, 1, a, []), undefined);
    assert.equal(rootFromAuditPath(1, 1, a, []), undefined);
    assert.equal(rootFromAuditPath(-1, 2, a, [b]), undefined);
    assert.equal(rootFromAuditPath(2, 2, a, [b]), undefined);
    assert.equal(rootFromAuditPath(0, 0, a, []), undefined);
  });
});

describe("batch signatures: bounds", () => {
  const sign = () => new Uint8Array(64);

  it("signs 1 to 16 messages; 0 or 17 is a RangeError naming the count", () => {
    for (const count of [1, 16]) {
      const messages = Array.from({ length: count }, (_, i) => Uint8Array.of(i));
      const proofs = signBatch(messages, sign);
      assert.equal(proofs.length, count);
      proofs.forEach((proof, i) => {
        assert.deepEqual([proof.index, proof.size], [i, count]);
        const statement = statementOf(messages[i] as Uint8Array, proof);
        assert.ok(statement, `message ${i} of ${count}`);
        assert.equal(statement[18], count);
      });
    }
    for (const count of [0, 17]) {
      assert.throws(
        () =>
          signBatch(
            Array.from({ length: count }, () => Uint8Array.of(1)),
            sign,
          ),
        {
          name: "RangeError",
          message: `a batch signs 1 to 16 messages, not ${count}`,
        },
      );
    }
  });

  it("statementOf refuses a proof of a batch larger than 16 even when its path fits that tree", () => {
    const messages = Array.from({ length: 17 }, (_, i) => Uint8Array.of(i));
    const { paths } = merkleTree(messages.map(leafHash));
    for (const index of [0, 16]) {
      const proof = { index, size: 17, path: paths[index] as Uint8Array[], signature: new Uint8Array(64) };
      assert.ok(rootFromAuditPath(index, 17, leafHash(messages[index] as Uint8Array), proof.path));
      assert.equal(statementOf(messages[index] as Uint8Array, proof), undefined);
    }
  });

  it("statementOf is exactly the statement signBatch signed: context, size, root", () => {
    const messages = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)];
    const signed: Uint8Array[] = [];
    const proofs = signBatch(messages, (statement) => {
      signed.push(statement);
      return new Uint8Array(64);
    });
    const root = merkleTree(messages.map(leafHash)).root;
    assert.deepEqual(signed, [batchStatement(3, root)]);
    assert.equal(signed[0]?.length, 18 + 1 + 32);
    for (const [i, proof] of proofs.entries())
      assert.deepEqual(statementOf(messages[i] as Uint8Array, proof), signed[0]);
  });
});
