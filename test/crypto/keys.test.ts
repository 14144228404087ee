import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ed25519PublicKey, keyId } from "../../src/crypto/ed25519.ts";
import { generateSecretKeys, peerIdOf, publicKeysOf } from "../../src/crypto/keys.ts";
import { X25519PrivateKey } from "../../src/crypto/x25519.ts";
import { hex, RFC7748_DH, RFC8032_ED25519, toHexString } from "./vectors.ts";

describe("keys: a user's two key pairs", () => {
  it("generateSecretKeys draws the Ed25519 seed, then the X25519 key, 32 bytes each, from the given source", () => {
    const requested: number[] = [];
    let next = 0;
    const secrets = generateSecretKeys((length) => {
      requested.push(length);
      return new Uint8Array(length).fill(++next);
    });
    assert.deepEqual(requested, [32, 32]);
    assert.deepEqual(secrets.ed25519Seed, new Uint8Array(32).fill(1));
    assert.deepEqual(secrets.x25519PrivateKey, new Uint8Array(32).fill(2));
    const random = generateSecretKeys();
    assert.equal(random.ed25519Seed.length, 32);
    assert.notDeepEqual(random.ed25519Seed, random.x25519PrivateKey);
  });

  it("publicKeysOf gives RFC 8032's and RFC 7748's public keys, and peerIdOf the key id of the Ed25519 one", () => {
    const vector = RFC8032_ED25519[0] as (typeof RFC8032_ED25519)[number];
    const secrets = { ed25519Seed: hex(vector.secretKey), x25519PrivateKey: hex(RFC7748_DH.alicePrivate) };
    const keys = publicKeysOf(secrets);
    assert.equal(toHexString(keys.ed25519), vector.publicKey);
    assert.equal(toHexString(keys.x25519), RFC7748_DH.alicePublic);
    assert.deepEqual(keys.ed25519, ed25519PublicKey(secrets.ed25519Seed));
    assert.deepEqual(keys.x25519, X25519PrivateKey.fromRaw(secrets.x25519PrivateKey).publicKey);
    assert.equal(peerIdOf(keys), keyId(hex(vector.publicKey)));
    assert.match(peerIdOf(keys), /^[0-9a-f]{16}$/);
  });
});
