import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { afterEach, beforeEach, describe, it } from "node:test";
import { utf8 } from "../../src/crypto/bytes.ts";
import { ed25519Signer, keyId } from "../../src/crypto/ed25519.ts";
import { open as hpkeOpen, seal as hpkeSeal } from "../../src/crypto/hpke.ts";
import { type PublicKeys, publicKeysOf, type SecretKeys } from "../../src/crypto/keys.ts";
import {
  createCryptoPort,
  type PeerKeyDirectory,
  PRIVATE_MESSAGE_INFO,
  staticKeyDirectory,
} from "../../src/crypto/port.ts";
import type { PeerId } from "../../src/engine/types.ts";
import { signedAlone } from "../helpers/batch.ts";

/**
 * The port's caches, watched through libsodium itself: the sodium-native module that src/crypto/sodium.ts loads is
 * the one `require` gives here, so counting its calls shows when a signature is checked.
 */

const libsodium = createRequire(import.meta.url)("sodium-native") as Record<
  string,
  (...args: unknown[]) => unknown
>;
const calls = { verify: 0 };
const originals = {
  verify: libsodium.crypto_sign_verify_detached as (...args: unknown[]) => unknown,
};
beforeEach(() => {
  calls.verify = 0;
  libsodium.crypto_sign_verify_detached = (...args) => {
    calls.verify++;
    return originals.verify(...args);
  };
});
afterEach(() => {
  libsodium.crypto_sign_verify_detached = originals.verify;
});

const secretsOf = (fill: number): SecretKeys => ({
  ed25519Seed: new Uint8Array(32).fill(fill),
  x25519PrivateKey: new Uint8Array(32).fill(fill + 0x40),
});
const aliceSecrets = secretsOf(1);
const bobSecrets = secretsOf(2);
const carolSecrets = secretsOf(3);
const everyone = staticKeyDirectory([aliceSecrets, bobSecrets, carolSecrets].map(publicKeysOf));
const bytes = new TextEncoder().encode("a packet");
const aad = new TextEncoder().encode("header");

/** A directory whose entries the test changes as it goes. */
function mutableDirectory(initial: PublicKeys[]): PeerKeyDirectory & { entries: Map<PeerId, PublicKeys> } {
  const entries = new Map(initial.map((keys) => [keyId(keys.ed25519), keys] as const));
  return { entries, publicKeysOf: (peer) => entries.get(peer) };
}

describe("port caches: verified signatures", () => {
  it("a statement checked once is not checked again: a whole batch costs one Ed25519 verification", () => {
    const alice = createCryptoPort({ identity: aliceSecrets, directory: everyone });
    const bob = createCryptoPort({ identity: bobSecrets, directory: everyone });
    const messages = Array.from({ length: 5 }, (_, i) => Uint8Array.of(i, i));
    const proofs = alice.signBatch(messages);
    for (const [i, m] of messages.entries()) {
      assert.equal(bob.verify(alice.selfId, m, proofs[i] as (typeof proofs)[number]), true);
    }
    assert.equal(
      bob.verify(alice.selfId, messages[0] as Uint8Array, proofs[0] as (typeof proofs)[number]),
      true,
    );
    assert.equal(calls.verify, 1);
  });

  it("a remembered signature over another statement is checked afresh, and fails", () => {
    const alice = createCryptoPort({ identity: aliceSecrets, directory: everyone });
    const bob = createCryptoPort({ identity: bobSecrets, directory: everyone });
    const proof = signedAlone(alice, bytes);
    assert.equal(bob.verify(alice.selfId, bytes, proof), true);
    assert.equal(bob.verify(alice.selfId, Uint8Array.of(...bytes, 0), proof), false);
    assert.equal(calls.verify, 2);
    // The same signature presented for another author is that author's statement, not the remembered one.
    assert.equal(bob.verify(carolId(), bytes, proof), false);
  });

  it("a failed check is not remembered as a success", () => {
    const alice = createCryptoPort({ identity: aliceSecrets, directory: everyone });
    const bob = createCryptoPort({ identity: bobSecrets, directory: everyone });
    const proof = signedAlone(alice, bytes);
    const forged = { ...proof, signature: Uint8Array.from(proof.signature, (b, i) => (i === 0 ? b ^ 1 : b)) };
    assert.equal(bob.verify(alice.selfId, bytes, forged), false);
    assert.equal(bob.verify(alice.selfId, bytes, forged), false);
    assert.equal(calls.verify, 2);
  });

  it("remembers 1024 signatures: past that the oldest is forgotten (checked again), and only the oldest", () => {
    const alice = createCryptoPort({ identity: aliceSecrets, directory: everyone });
    const bob = createCryptoPort({ identity: bobSecrets, directory: everyone });
    const signed = Array.from({ length: 1025 }, (_, i) => {
      const message = Uint8Array.of(i >> 8, i & 0xff);
      return { message, proof: signedAlone(alice, message) };
    });
    const check = (i: number) => {
      const entry = signed[i] as (typeof signed)[number];
      return bob.verify(alice.selfId, entry.message, entry.proof);
    };
    for (let i = 0; i < 1024; i++) assert.equal(check(i), true);
    assert.equal(calls.verify, 1024);
    assert.equal(check(0), true, "the first of 1024 is still remembered");
    assert.equal(calls.verify, 1024);
    assert.equal(check(1024), true, "the 1025th is checked and pushes the first out");
    assert.equal(calls.verify, 1025);
    assert.equal(check(1), true, "the second is still remembered");
    assert.equal(check(1024), true);
    assert.equal(calls.verify, 1025);
    assert.equal(check(0), true, "the first was forgotten: checked again");
    assert.equal(calls.verify, 1026);
    assert.equal(check(1), true, "re-adding the first pushed out the then oldest, the second");
    assert.equal(calls.verify, 1027);
  });

  it("after the directory replaces a peer's keys, a remembered signature is checked afresh", () => {
    const directory = mutableDirectory([aliceSecrets, bobSecrets].map(publicKeysOf));
    const alice = createCryptoPort({ identity: aliceSecrets, directory: everyone });
    const bob = createCryptoPort({ identity: bobSecrets, directory });
    const proof = signedAlone(alice, bytes);
    assert.equal(bob.verify(alice.selfId, bytes, proof), true);
    assert.equal(bob.verify(alice.selfId, bytes, proof), true);
    assert.equal(calls.verify, 1);
    directory.entries.set(alice.selfId, {
      ...publicKeysOf(aliceSecrets),
      x25519: publicKeysOf(carolSecrets).x25519,
    });
    assert.equal(bob.verify(alice.selfId, bytes, proof), true);
    assert.equal(calls.verify, 2);
  });
});

function carolId(): PeerId {
  return keyId(publicKeysOf(carolSecrets).ed25519);
}

describe("port caches: peers' keys", () => {
  it("a peer with a low-order X25519 key: known, its signatures verify, nothing is sealed to it", () => {
    const bad = { ...publicKeysOf(carolSecrets), x25519: new Uint8Array(32) };
    const alice = createCryptoPort({ identity: aliceSecrets, directory: staticKeyDirectory([bad]) });
    const carol = createCryptoPort({ identity: carolSecrets, directory: everyone });
    const badId = keyId(bad.ed25519);
    assert.equal(alice.knows(badId), true);
    assert.equal(alice.verify(badId, bytes, signedAlone(carol, bytes)), true);
    assert.deepEqual(alice.seal(badId, bytes, aad), new Uint8Array(0));
    assert.deepEqual(alice.seal(badId, Uint8Array.of(2), aad), new Uint8Array(0));
  });

  it("new X25519 keys in the directory: seals follow the new key at once, after the old one was cached", () => {
    const directory = mutableDirectory([aliceSecrets, bobSecrets].map(publicKeysOf));
    const alice = createCryptoPort({ identity: aliceSecrets, directory });
    const bob = createCryptoPort({ identity: bobSecrets, directory: everyone });
    assert.deepEqual(bob.open(alice.seal(bob.selfId, bytes, aad), aad), bytes);
    const newBob: SecretKeys = { ...bobSecrets, x25519PrivateKey: new Uint8Array(32).fill(0x77) };
    directory.entries.set(bob.selfId, publicKeysOf(newBob));
    const bob2 = createCryptoPort({ identity: newBob, directory: everyone });
    const sealed = alice.seal(bob.selfId, bytes, aad);
    assert.deepEqual(bob2.open(sealed, aad), bytes);
    assert.equal(bob.open(sealed, aad), undefined);
    assert.equal(
      alice.verify(bob.selfId, bytes, signedAlone(bob, bytes)),
      true,
      "the Ed25519 key did not change",
    );
  });

  it("a peer that leaves the directory is unknown at once, and known again (with fresh keys) when it returns", () => {
    const directory = mutableDirectory([bobSecrets].map(publicKeysOf));
    const alice = createCryptoPort({ identity: aliceSecrets, directory });
    const bob = createCryptoPort({ identity: bobSecrets, directory: everyone });
    const proof = signedAlone(bob, bytes);
    assert.equal(alice.knows(bob.selfId), true);
    assert.equal(alice.verify(bob.selfId, bytes, proof), true);
    directory.entries.delete(bob.selfId);
    assert.equal(alice.knows(bob.selfId), false);
    assert.equal(alice.verify(bob.selfId, bytes, proof), false);
    assert.equal(alice.seal(bob.selfId, bytes, aad).length, 0);
    directory.entries.set(bob.selfId, publicKeysOf(bobSecrets));
    assert.equal(alice.knows(bob.selfId), true);
    assert.equal(alice.verify(bob.selfId, bytes, proof), true);
    assert.deepEqual(bob.open(alice.seal(bob.selfId, bytes, aad), aad), bytes);
  });

  it("another Ed25519 key filed under a known peer's id is refused, even once that id is cached", () => {
    const directory = mutableDirectory([bobSecrets].map(publicKeysOf));
    const alice = createCryptoPort({ identity: aliceSecrets, directory });
    const bob = createCryptoPort({ identity: bobSecrets, directory: everyone });
    assert.equal(alice.knows(bob.selfId), true);
    directory.entries.set(bob.selfId, {
      ...publicKeysOf(bobSecrets),
      ed25519: publicKeysOf(carolSecrets).ed25519,
    });
    assert.equal(alice.knows(bob.selfId), false);
    assert.equal(alice.verify(bob.selfId, bytes, signedAlone(bob, bytes)), false);
  });

  it("an entry with a key of the wrong length is refused, whichever key it is", () => {
    const shortEd = new Uint8Array(31).fill(5);
    const shortEdKeys = { ed25519: shortEd, x25519: publicKeysOf(bobSecrets).x25519 };
    const shortX = { ...publicKeysOf(carolSecrets), x25519: new Uint8Array(31).fill(6) };
    const directory: PeerKeyDirectory = {
      publicKeysOf: (peer) =>
        peer === keyId(shortEd) ? shortEdKeys : peer === keyId(shortX.ed25519) ? shortX : undefined,
    };
    const alice = createCryptoPort({ identity: aliceSecrets, directory });
    assert.equal(alice.knows(keyId(shortEd)), false);
    assert.equal(alice.knows(keyId(shortX.ed25519)), false);
    assert.equal(alice.seal(keyId(shortX.ed25519), bytes, aad).length, 0);
  });

  it("a node knows itself even when the directory does not list it: signs and seals to itself", () => {
    const alone = createCryptoPort({ identity: aliceSecrets, directory: staticKeyDirectory([]) });
    assert.equal(alone.selfId, keyId(ed25519Signer(aliceSecrets.ed25519Seed).publicKey));
    assert.equal(alone.knows(alone.selfId), true);
    assert.equal(alone.verify(alone.selfId, bytes, signedAlone(alone, bytes)), true);
    assert.deepEqual(alone.open(alone.seal(alone.selfId, bytes, aad), aad), bytes);
    // A directory that lists someone else's keys under our id does not override what we know of ourselves.
    const lying = createCryptoPort({
      identity: aliceSecrets,
      directory: { publicKeysOf: () => publicKeysOf(bobSecrets) },
    });
    assert.equal(lying.knows(lying.selfId), true);
    assert.equal(lying.verify(lying.selfId, bytes, signedAlone(lying, bytes)), true);
  });

  it("uses the injected random source for HPKE: 32 bytes per seal", () => {
    const requested: number[] = [];
    const alice = createCryptoPort({
      identity: aliceSecrets,
      directory: everyone,
      randomBytes: (length) => {
        requested.push(length);
        return new Uint8Array(length).fill(3);
      },
    });
    const bob = createCryptoPort({ identity: bobSecrets, directory: everyone });
    const first = alice.seal(bob.selfId, bytes, aad);
    assert.deepEqual(alice.seal(bob.selfId, bytes, aad), first);
    assert.deepEqual(requested, [32, 32]);
    assert.deepEqual(bob.open(first, aad), bytes);
  });

  it("seals with HPKE under the info 'chatnode v1 private': the same bytes as hpke.seal given the same ephemeral key", () => {
    assert.equal(new TextDecoder().decode(PRIVATE_MESSAGE_INFO), "chatnode v1 private");
    const ikm = new Uint8Array(32).fill(3);
    const alice = createCryptoPort({ identity: aliceSecrets, directory: everyone, randomBytes: () => ikm });
    const sealed = alice.seal(keyId(publicKeysOf(bobSecrets).ed25519), bytes, aad);
    const direct = hpkeSeal(publicKeysOf(bobSecrets).x25519, utf8("chatnode v1 private"), aad, bytes, ikm);
    assert.deepEqual(sealed, direct);
    assert.deepEqual(hpkeOpen(bobSecrets.x25519PrivateKey, utf8("chatnode v1 private"), aad, sealed), bytes);
  });
});
