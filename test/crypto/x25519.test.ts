import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, diffieHellman } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  generateX25519PrivateKey,
  X25519PrivateKey,
  X25519PublicKey,
  x25519,
} from "../../src/crypto/x25519.ts";
import { hex, RFC7748_DH, RFC7748_ITERATED, RFC7748_X25519, toHexString } from "./vectors.ts";

describe("x25519: RFC 7748 known answers", () => {
  RFC7748_X25519.forEach((vector, index) => {
    it(`section 5.2 scalar multiplication vector ${index + 1}`, () => {
      const out = x25519(hex(vector.scalar), hex(vector.u));
      assert.ok(out);
      assert.equal(toHexString(out), vector.output);
    });
  });

  it("section 5.2 iterated vector after 1 and 1000 iterations", () => {
    let k = new Uint8Array(32);
    k[0] = 9;
    let u = new Uint8Array(k);
    for (let i = 1; i <= 1000; i++) {
      const next = x25519(k, u);
      assert.ok(next);
      u = k;
      k = new Uint8Array(next);
      if (i === 1) assert.equal(toHexString(k), RFC7748_ITERATED.after1);
    }
    assert.equal(toHexString(k), RFC7748_ITERATED.after1000);
  });

  it("section 6.1 Diffie-Hellman: both public keys and the shared secret", () => {
    const alice = X25519PrivateKey.fromRaw(hex(RFC7748_DH.alicePrivate));
    const bob = X25519PrivateKey.fromRaw(hex(RFC7748_DH.bobPrivate));
    assert.equal(toHexString(alice.publicKey), RFC7748_DH.alicePublic);
    assert.equal(toHexString(bob.publicKey), RFC7748_DH.bobPublic);
    const bobPublic = X25519PublicKey.fromRaw(bob.publicKey);
    const alicePublic = X25519PublicKey.fromRaw(alice.publicKey);
    assert.ok(bobPublic && alicePublic);
    assert.equal(toHexString(alice.dh(bobPublic) ?? new Uint8Array()), RFC7748_DH.shared);
    assert.equal(toHexString(bob.dh(alicePublic) ?? new Uint8Array()), RFC7748_DH.shared);
  });
});

describe("x25519: rejections", () => {
  it("a low-order peer key (all-zero shared secret) gives undefined, not a known secret", () => {
    const self = X25519PrivateKey.fromRaw(hex(RFC7748_DH.alicePrivate));
    for (const lowOrder of [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))]) {
      const peer = X25519PublicKey.fromRaw(lowOrder);
      assert.equal(peer ? self.dh(peer) : undefined, undefined);
    }
  });

  it("wrong-length keys are refused without throwing", () => {
    assert.equal(X25519PublicKey.fromRaw(new Uint8Array(31)), undefined);
    assert.equal(x25519(new Uint8Array(31), new Uint8Array(32)), undefined);
  });
});

describe("x25519: agrees with OpenSSL (node:crypto), the other RFC 7748 implementation at hand", () => {
  // RFC 8410's DER wrappings of a raw X25519 key: every Node's OpenSSL takes these (Node 24 refuses a JWK
  // private key whose public half is left out).
  const pkcs8 = (raw: Uint8Array) =>
    Buffer.concat([Buffer.from("302e020100300506032b656e04220420", "hex"), raw]);
  const spki = (raw: Uint8Array) => Buffer.concat([Buffer.from("302a300506032b656e032100", "hex"), raw]);
  it("same public key and same shared secret for random scalars (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (a, b) => {
          const alice = X25519PrivateKey.fromRaw(a);
          const bob = X25519PrivateKey.fromRaw(b);
          const opensslAlice = createPrivateKey({ key: pkcs8(a), format: "der", type: "pkcs8" });
          const opensslAlicePublic = createPublicKey(opensslAlice).export({ format: "der", type: "spki" });
          assert.deepEqual(Buffer.from(opensslAlicePublic), spki(alice.publicKey));
          const opensslBob = createPublicKey({ key: spki(bob.publicKey), format: "der", type: "spki" });
          const bobPublic = X25519PublicKey.fromRaw(bob.publicKey);
          assert.ok(bobPublic);
          assert.deepEqual(
            Buffer.from(alice.dh(bobPublic) ?? []),
            diffieHellman({ privateKey: opensslAlice, publicKey: opensslBob }),
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("x25519: edges", () => {
  const self = X25519PrivateKey.fromRaw(hex(RFC7748_DH.alicePrivate));

  it("every small-order u-coordinate (libsodium's list, canonical and not) gives undefined", () => {
    const smallOrder = [
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    for (const u of smallOrder) {
      const peer = X25519PublicKey.fromRaw(hex(u));
      assert.ok(peer, "every 32-byte string parses as a public key");
      assert.equal(self.dh(peer), undefined, u);
      assert.equal(x25519(hex(RFC7748_DH.alicePrivate), hex(u)), undefined, u);
    }
  });

  it("a shared secret with zero bytes in it (but not all zero) is a secret like any other", () => {
    // Found by search: X25519(sha256("zero byte 4"), RFC 7748's Bob) has two zero bytes; OpenSSL agrees.
    const scalar = hex("8545d40bea799f5a5d0f4f9e76c81a38dca265eadf19c99d7b598a5c734b4f25");
    const shared = "8a00cc2918c8009e03b12ab8c8f887e551b1cf7cebfefe9c62a4778fe4a9cd1c";
    assert.equal(toHexString(x25519(scalar, hex(RFC7748_DH.bobPublic)) ?? new Uint8Array()), shared);
    const openssl = diffieHellman({
      privateKey: createPrivateKey({
        key: Buffer.concat([Buffer.from("302e020100300506032b656e04220420", "hex"), scalar]),
        format: "der",
        type: "pkcs8",
      }),
      publicKey: createPublicKey({
        key: Buffer.concat([Buffer.from("302a300506032b656e032100", "hex"), hex(RFC7748_DH.bobPublic)]),
        format: "der",
        type: "spki",
      }),
    });
    assert.equal(openssl.toString("hex"), shared);
  });

  it("a private key of the wrong length is a RangeError; a public key of the wrong length gives undefined", () => {
    for (const length of [0, 31, 33]) {
      assert.throws(() => X25519PrivateKey.fromRaw(new Uint8Array(length)), {
        name: "RangeError",
        message: "an X25519 private key is 32 bytes",
      });
      assert.equal(X25519PublicKey.fromRaw(new Uint8Array(length)), undefined);
      assert.equal(x25519(hex(RFC7748_DH.alicePrivate), new Uint8Array(length)), undefined);
      assert.equal(x25519(new Uint8Array(length), hex(RFC7748_DH.bobPublic)), undefined);
    }
  });

  it("keys are copied: later writes to the caller's bytes change nothing", () => {
    const raw = hex(RFC7748_DH.bobPublic);
    const peer = X25519PublicKey.fromRaw(raw);
    assert.ok(peer);
    raw.fill(0);
    assert.equal(toHexString(self.dh(peer) ?? new Uint8Array()), RFC7748_DH.shared);
    const scalar = hex(RFC7748_DH.alicePrivate);
    const key = X25519PrivateKey.fromRaw(scalar);
    scalar.fill(0);
    assert.equal(toHexString(key.publicKey), RFC7748_DH.alicePublic);
    assert.equal(toHexString(key.dh(peer) ?? new Uint8Array()), RFC7748_DH.shared);
  });

  it("generateX25519PrivateKey takes 32 bytes from the random source it is given, as a copy", () => {
    const requested: number[] = [];
    const source = new Uint8Array(32).fill(5);
    const key = generateX25519PrivateKey((length) => {
      requested.push(length);
      return source;
    });
    assert.deepEqual(requested, [32]);
    assert.deepEqual(key, source);
    assert.notEqual(key, source);
    assert.equal(generateX25519PrivateKey().length, 32);
  });
});
