import assert from "node:assert/strict";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as nodeSign,
  verify as nodeVerify,
  randomBytes,
} from "node:crypto";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  ed25519PublicKey,
  ed25519Signer,
  ed25519Verifier,
  generateEd25519Seed,
  keyId,
} from "../../src/crypto/ed25519.ts";
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

/** The raw Ed25519 keys as node:crypto (OpenSSL) KeyObjects: SPKI / PKCS#8 around them, OID 1.3.101.112. */
const spki = (publicKey: Uint8Array) =>
  createPublicKey({
    key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), publicKey]),
    format: "der",
    type: "spki",
  });
const pkcs8 = (seed: Uint8Array) =>
  createPrivateKey({
    key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]),
    format: "der",
    type: "pkcs8",
  });

describe("ed25519: agrees with OpenSSL (node:crypto), the other RFC 8032 implementation at hand", () => {
  it("same public key, same signature, and each verifies the other's (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 300 }),
        (seed, message) => {
          const signer = ed25519Signer(seed);
          const opensslPublic = createPublicKey(pkcs8(seed)).export({ format: "der", type: "spki" });
          assert.deepEqual(Buffer.from(signer.publicKey), opensslPublic.subarray(12));
          const signature = signer.sign(message);
          assert.deepEqual(Buffer.from(signature), nodeSign(null, message, pkcs8(seed)));
          assert.equal(nodeVerify(null, message, spki(signer.publicKey), signature), true);
          assert.equal(ed25519Verifier(signer.publicKey)?.verify(message, signature), true);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("ed25519: odd keys, and the records an OpenSSL-era build accepted", () => {
  const sodium = createRequire(import.meta.url)("sodium-native");
  const GROUP_ORDER = (1n << 252n) + 27742317777372353535851937790883648493n;
  const littleEndian = (bytes: Uint8Array) => BigInt(`0x${Buffer.from(bytes).reverse().toString("hex")}`);
  const scalarBytes = (n: bigint) => Buffer.from(n.toString(16).padStart(64, "0"), "hex").reverse();
  const randomScalar = () => {
    const out = Buffer.alloc(32);
    sodium.crypto_core_ed25519_scalar_reduce(out, randomBytes(64));
    return out;
  };
  const basePoint = (scalar: Uint8Array) => {
    const out = Buffer.alloc(32);
    sodium.crypto_scalarmult_ed25519_base_noclamp(out, scalar);
    return out;
  };
  const opensslVerify = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) =>
    nodeVerify(null, message, spki(publicKey), signature);
  const orderEight = hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a");

  // Under the identity key A, the verification equation sB = R + h·A reads sB = R for every message, so R = sB,
  // S = s "signs" anything. A verifier that does not refuse small-order keys accepts it (OpenSSL did before 3.5;
  // which OpenSSL a Node ships is not ChatNode's business); ChatNode's verifier must refuse it on every Node.
  it("under the identity key, the forgery R = sB, S = s (valid for any message) is refused", () => {
    const identity = hex("0100000000000000000000000000000000000000000000000000000000000000");
    const s = randomScalar();
    const forged = Buffer.concat([basePoint(s), s]);
    for (const text of ["anything at all", "", "another message"]) {
      const message = new TextEncoder().encode(text);
      assert.equal(ed25519Verifier(identity)?.verify(message, forged) ?? false, false);
    }
  });

  it("a small-order or non-canonical key verifies nothing", () => {
    // y = p + 1 encodes the identity point non-canonically.
    const nonCanonical = hex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    const s = randomScalar();
    const forged = Buffer.concat([basePoint(s), s]);
    for (const key of [orderEight, nonCanonical]) {
      const verifier = ed25519Verifier(key);
      assert.ok(verifier);
      assert.equal(verifier.verify(new Uint8Array(8), forged), false);
    }
  });

  it("a mixed-order key (a key plus a point of order 8) verifies what OpenSSL verified, as before", () => {
    // The signer knows a; the key is aB + T8. [S]B - [k](aB + T8) = R holds when k is a multiple of 8.
    const a = randomScalar();
    const key = Buffer.alloc(32);
    sodium.crypto_core_ed25519_add(key, basePoint(a), orderEight);
    for (let attempt = 0; attempt < 1000; attempt++) {
      const message = randomBytes(40);
      const r = randomScalar();
      const R = basePoint(r);
      const k = Buffer.alloc(32);
      sodium.crypto_core_ed25519_scalar_reduce(
        k,
        createHash("sha512").update(R).update(key).update(message).digest(),
      );
      if ((k[0] as number) % 8 !== 0) continue;
      const S = scalarBytes((littleEndian(r) + littleEndian(k) * littleEndian(a)) % GROUP_ORDER);
      const signature = Buffer.concat([R, S]);
      assert.equal(opensslVerify(key, message, signature), true);
      assert.equal(ed25519Verifier(key)?.verify(message, signature), true);
      return;
    }
    assert.fail("no challenge divisible by 8 in 1000 tries");
  });
});

describe("ed25519: inputs", () => {
  it("a seed of the wrong length is a RangeError; a public key of the wrong length gives no verifier", () => {
    for (const length of [0, 31, 33, 64]) {
      assert.throws(() => ed25519Signer(new Uint8Array(length)), {
        name: "RangeError",
        message: "an Ed25519 seed is 32 bytes",
      });
      assert.equal(ed25519Verifier(new Uint8Array(length)), undefined);
    }
  });

  it("generateEd25519Seed takes 32 bytes from the random source it is given, as a copy", () => {
    const requested: number[] = [];
    const source = new Uint8Array(32).fill(9);
    const seed = generateEd25519Seed((length) => {
      requested.push(length);
      return source;
    });
    assert.deepEqual(requested, [32]);
    assert.deepEqual(seed, source);
    assert.notEqual(seed, source);
    assert.equal(generateEd25519Seed().length, 32);
  });

  it("the verifier keeps its own copy of the key, and ed25519PublicKey is the signer's key", () => {
    const vector = RFC8032_ED25519[1] as (typeof RFC8032_ED25519)[number];
    const key = hex(vector.publicKey);
    const verifier = ed25519Verifier(key);
    assert.ok(verifier);
    key.fill(0);
    assert.equal(toHexString(verifier.publicKey), vector.publicKey);
    assert.equal(verifier.verify(hex(vector.message), hex(vector.signature)), true);
    assert.equal(toHexString(ed25519PublicKey(hex(vector.secretKey))), vector.publicKey);
  });
});
