import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ed25519Signer, ed25519Verifier, generateEd25519Seed, keyId } from "../../src/crypto/ed25519.ts";
import { isPeerId } from "../../src/engine/types.ts";
import { hex, RFC8032_ED25519, toHexString } from "./vectors.ts";

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[bit >>> 3] = (out[bit >>> 3] ?? 0) ^ (1 << (bit & 7));
  return out;
}

describe("ed25519: RFC 8032 section 7.1 known answers", () => {
  for (const vector of RFC8032_ED25519) {
    it(`${vector.name}: public key, signature and verification match`, () => {
      const signer = ed25519Signer(hex(vector.secretKey));
      assert.equal(toHexString(signer.publicKey), vector.publicKey);
      const signature = signer.sign(hex(vector.message));
      assert.equal(toHexString(signature), vector.signature);
      const verifier = ed25519Verifier(hex(vector.publicKey));
      assert.ok(verifier);
      assert.equal(verifier.verify(hex(vector.message), hex(vector.signature)), true);
    });
  }
});

describe("ed25519: keyId", () => {
  it("is the first 8 bytes of SHA-256 over the raw public key, as 16 hex digits", () => {
    const publicKey = hex(RFC8032_ED25519[0]?.publicKey ?? "");
    const expected = createHash("sha256").update(publicKey).digest("hex").slice(0, 16);
    assert.equal(keyId(publicKey), expected);
    assert.ok(isPeerId(keyId(publicKey)));
  });
});

describe("ed25519: rejections", () => {
  const signer = ed25519Signer(generateEd25519Seed());
  const verifier = ed25519Verifier(signer.publicKey);
  assert.ok(verifier);

  it("a flipped bit anywhere in the signed bytes fails (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), (message, seed) => {
        const signature = signer.sign(message);
        const altered = flipBit(message, seed % (message.length * 8));
        return verifier.verify(message, signature) && !verifier.verify(altered, signature);
      }),
      { numRuns: 200 },
    );
  });

  it("a flipped bit anywhere in the signature fails (property)", () => {
    const message = new TextEncoder().encode("the exact bytes");
    const signature = signer.sign(message);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 64 * 8 - 1 }),
        (bit) => !verifier.verify(message, flipBit(signature, bit)),
      ),
      { numRuns: 200 },
    );
  });

  it("a signature by another user does not verify under this user's key", () => {
    const other = ed25519Signer(generateEd25519Seed());
    const message = new TextEncoder().encode("hello");
    assert.equal(verifier.verify(message, other.sign(message)), false);
  });

  it("wrong-length signatures and keys are refused without throwing", () => {
    const message = new Uint8Array(3);
    const signature = signer.sign(message);
    assert.equal(verifier.verify(message, signature.subarray(0, 63)), false);
    assert.equal(verifier.verify(message, new Uint8Array(65)), false);
    assert.equal(verifier.verify(message, new Uint8Array(0)), false);
    assert.equal(ed25519Verifier(new Uint8Array(31)), undefined);
    const garbageKey = ed25519Verifier(new Uint8Array(32).fill(0xff));
    assert.equal(garbageKey?.verify(message, signature) ?? false, false);
  });

  it("refuses a seed that is not 32 bytes (programming error)", () => {
    assert.throws(() => ed25519Signer(new Uint8Array(31)), RangeError);
  });
});
