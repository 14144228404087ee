import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { keyId } from "../../src/crypto/ed25519.ts";
import { generateSecretKeys, type PublicKeys, publicKeysOf } from "../../src/crypto/keys.ts";
import { createCryptoPort, type PeerKeyDirectory, staticKeyDirectory } from "../../src/crypto/port.ts";
import { type PeerId, SIGNATURE_BYTES } from "../../src/engine/types.ts";
import { signedAlone, unsignedProof } from "../helpers/batch.ts";

/** A deterministic byte source, as the simulator would inject. */
function seededBytes(seed: number): (length: number) => Uint8Array {
  let state = seed >>> 0;
  return (length) => {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      out[i] = state >>> 24;
    }
    return out;
  };
}

const aliceSecrets = generateSecretKeys();
const bobSecrets = generateSecretKeys();
const carolSecrets = generateSecretKeys();
const everyone = staticKeyDirectory([aliceSecrets, bobSecrets, carolSecrets].map(publicKeysOf));
const alice = createCryptoPort({ identity: aliceSecrets, directory: everyone });
const bob = createCryptoPort({ identity: bobSecrets, directory: everyone });
const carol = createCryptoPort({ identity: carolSecrets, directory: everyone });
const strangerId = keyId(publicKeysOf(generateSecretKeys()).ed25519);
const bytes = new TextEncoder().encode("a packet");
const aad = new TextEncoder().encode("header");

describe("port: CryptoPort over Ed25519 batch signatures and HPKE", () => {
  it("selfId is the key id of the identity's Ed25519 key; knows() follows the directory", () => {
    assert.equal(alice.selfId, keyId(publicKeysOf(aliceSecrets).ed25519));
    assert.equal(alice.knows(bob.selfId), true);
    assert.equal(alice.knows(alice.selfId), true);
    assert.equal(alice.knows(strangerId), false);
  });

  it("signBatch / verify over exact bytes; another author's signature fails", () => {
    const proof = signedAlone(alice, bytes);
    assert.equal(proof.signature.length, SIGNATURE_BYTES);
    assert.deepEqual([proof.index, proof.size, proof.path], [0, 1, []]);
    assert.equal(bob.verify(alice.selfId, bytes, proof), true);
    assert.equal(bob.verify(alice.selfId, bytes.subarray(1), proof), false);
    assert.equal(bob.verify(carol.selfId, bytes, proof), false);
    assert.equal(bob.verify(strangerId, bytes, proof), false);
  });

  it("a batch: one Ed25519 signature, every message verifies with its own proof and no other's", () => {
    const messages = Array.from({ length: 11 }, (_, i) => new Uint8Array([i, i, i]));
    const proofs = alice.signBatch(messages);
    assert.equal(new Set(proofs.map((p) => Buffer.from(p.signature).toString("hex"))).size, 1);
    messages.forEach((m, i) => {
      const own = proofs[i] as (typeof proofs)[number];
      assert.equal(bob.verify(alice.selfId, m, own), true, `message ${i}`);
      const other = proofs[(i + 1) % messages.length] as (typeof proofs)[number];
      assert.equal(bob.verify(alice.selfId, m, other), false, `message ${i} with the next one's proof`);
      assert.equal(bob.verify(alice.selfId, m, { ...own, size: own.size + 1 }), false);
    });
    assert.throws(() => alice.signBatch([]), RangeError);
    assert.throws(() => alice.signBatch(Array.from({ length: 17 }, () => bytes)), RangeError);
  });

  it("seal / open: only the recipient opens, and only with the same aad", () => {
    const sealed = alice.seal(bob.selfId, bytes, aad);
    assert.deepEqual(bob.open(sealed, aad), bytes);
    assert.equal(carol.open(sealed, aad), undefined, "sealed to another key");
    assert.equal(alice.open(sealed, aad), undefined);
    assert.equal(bob.open(sealed, new TextEncoder().encode("other")), undefined);
    assert.equal(bob.open(sealed.subarray(0, sealed.length - 1), aad), undefined, "truncated");
  });

  it("sealing to an unknown peer gives an empty ciphertext that opens nowhere", () => {
    const sealed = alice.seal(strangerId, bytes, aad);
    assert.equal(sealed.length, 0);
    assert.equal(bob.open(sealed, aad), undefined);
  });

  it("is deterministic with an injected random source", () => {
    const a1 = createCryptoPort({ identity: aliceSecrets, directory: everyone, randomBytes: seededBytes(7) });
    const a2 = createCryptoPort({ identity: aliceSecrets, directory: everyone, randomBytes: seededBytes(7) });
    assert.deepEqual(a1.seal(bob.selfId, bytes, aad), a2.seal(bob.selfId, bytes, aad));
    assert.deepEqual(bob.open(a1.seal(bob.selfId, bytes, aad), aad), bytes);
  });

  it("follows a directory whose keys for a peer change, and refuses an entry whose key does not hash to its id", () => {
    let current: PublicKeys = publicKeysOf(bobSecrets);
    const changing: PeerKeyDirectory = {
      publicKeysOf: (peer: PeerId) => (peer === keyId(current.ed25519) ? current : undefined),
    };
    const port = createCryptoPort({ identity: aliceSecrets, directory: changing });
    const id = bob.selfId;
    assert.equal(port.verify(id, bytes, signedAlone(bob, bytes)), true);
    const lying: PeerKeyDirectory = { publicKeysOf: () => publicKeysOf(carolSecrets) };
    const fooled = createCryptoPort({ identity: aliceSecrets, directory: lying });
    assert.equal(fooled.knows(id), false);
    assert.equal(fooled.verify(id, bytes, signedAlone(carol, bytes)), false);
    assert.deepEqual(bob.open(port.seal(id, bytes, aad), aad), bytes);
    current = { ...current, x25519: publicKeysOf(carolSecrets).x25519 };
    // Same Ed25519 identity, new X25519 key: the cached key must not be reused, so only the new key's holder opens.
    const resealed = port.seal(id, bytes, aad);
    assert.equal(bob.open(resealed, aad), undefined);
    assert.deepEqual(carol.open(resealed, aad), bytes);
    assert.equal(port.verify(id, bytes, signedAlone(bob, bytes)), true, "the Ed25519 key is still bob's");
  });

  it("never throws for arbitrary input (property)", () => {
    const ids = [alice.selfId, bob.selfId, strangerId, "not-a-peer-id" as PeerId];
    fc.assert(
      fc.property(
        fc.constantFrom(...ids),
        fc.uint8Array({ maxLength: 120 }),
        fc.uint8Array({ maxLength: 120 }),
        (peer, junk, other) => {
          alice.verify(peer, junk, unsignedProof(other));
          alice.verify(peer, junk, {
            index: junk[0] ?? 0,
            size: other[0] ?? 0,
            path: [other],
            signature: junk,
          });
          alice.seal(peer, junk, other);
          return alice.open(junk, other) === undefined;
        },
      ),
      { numRuns: 300 },
    );
  });
});
