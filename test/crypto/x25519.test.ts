import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, diffieHellman } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { X25519PrivateKey, X25519PublicKey, x25519 } from "../../src/crypto/x25519.ts";
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
