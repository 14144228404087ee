import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  decap,
  deriveKeyPair,
  encap,
  HPKE_ENC_BYTES,
  HPKE_OVERHEAD_BYTES,
  keySchedule,
  open,
  seal,
} from "../../src/crypto/hpke.ts";
import { X25519PrivateKey, X25519PublicKey } from "../../src/crypto/x25519.ts";
import { hex, toHexString, RFC9180_A21 as V } from "./vectors.ts";

describe("hpke: RFC 9180 appendix A.2.1 known answers (base mode, X25519 / HKDF-SHA256 / ChaCha20-Poly1305)", () => {
  it("DeriveKeyPair(ikmE) and DeriveKeyPair(ikmR) give the vector's key pairs", () => {
    const ephemeral = deriveKeyPair(hex(V.ikmE));
    assert.equal(toHexString(ephemeral.privateKey), V.skEm);
    assert.equal(toHexString(ephemeral.publicKey), V.pkEm);
    const recipient = deriveKeyPair(hex(V.ikmR));
    assert.equal(toHexString(recipient.privateKey), V.skRm);
    assert.equal(toHexString(recipient.publicKey), V.pkRm);
  });

  it("Encap gives enc and shared_secret; Decap recovers the same shared_secret", () => {
    const pkR = X25519PublicKey.fromRaw(hex(V.pkRm));
    assert.ok(pkR);
    const encapsulation = encap(pkR, hex(V.ikmE));
    assert.ok(encapsulation);
    assert.equal(toHexString(encapsulation.enc), V.enc);
    assert.equal(toHexString(encapsulation.sharedSecret), V.sharedSecret);
    const decapsulated = decap(hex(V.enc), X25519PrivateKey.fromRaw(hex(V.skRm)));
    assert.equal(toHexString(decapsulated ?? new Uint8Array()), V.sharedSecret);
  });

  it("the key schedule gives key, base_nonce and exporter_secret", () => {
    const schedule = keySchedule(hex(V.sharedSecret), hex(V.info));
    assert.equal(toHexString(schedule.key), V.key);
    assert.equal(toHexString(schedule.baseNonce), V.baseNonce);
    assert.equal(toHexString(schedule.exporterSecret), V.exporterSecret);
  });

  it("the key schedule still gives the vector's key after another info was used (its context is kept per info)", () => {
    const other = keySchedule(hex(V.sharedSecret), new TextEncoder().encode("another info"));
    assert.notEqual(toHexString(other.key), V.key);
    const info = hex(V.info);
    assert.equal(toHexString(keySchedule(hex(V.sharedSecret), info).key), V.key);
    info.fill(0); // the kept context must not alias the caller's bytes
    assert.notEqual(toHexString(keySchedule(hex(V.sharedSecret), info).key), V.key);
    assert.equal(toHexString(keySchedule(hex(V.sharedSecret), hex(V.info)).baseNonce), V.baseNonce);
  });

  it("seal of sequence number 0 gives enc || ct, and open returns the plaintext", () => {
    const sealed = seal(hex(V.pkRm), hex(V.info), hex(V.aad), hex(V.pt), hex(V.ikmE));
    assert.ok(sealed);
    assert.equal(toHexString(sealed), V.enc + V.ct);
    const opened = open(hex(V.skRm), hex(V.info), hex(V.aad), sealed);
    assert.equal(toHexString(opened ?? new Uint8Array()), V.pt);
  });
});

describe("hpke: rejections (undefined, never a throw)", () => {
  const recipient = deriveKeyPair(new Uint8Array(32).fill(1));
  const other = deriveKeyPair(new Uint8Array(32).fill(2));
  const info = new TextEncoder().encode("info");
  const aad = new TextEncoder().encode("aad");
  const pt = new TextEncoder().encode("a private message");
  const sealed = seal(recipient.publicKey, info, aad, pt);
  assert.ok(sealed);

  it("round-trips, and each seal uses a fresh ephemeral key", () => {
    assert.deepEqual(open(recipient.privateKey, info, aad, sealed), pt);
    const again = seal(recipient.publicKey, info, aad, pt);
    assert.notEqual(toHexString(again ?? new Uint8Array()), toHexString(sealed));
  });

  it("a ciphertext sealed to another key does not open", () => {
    assert.equal(open(other.privateKey, info, aad, sealed), undefined);
  });

  it("a truncated ciphertext does not open, at any length", () => {
    for (let length = 0; length < sealed.length; length++) {
      assert.equal(open(recipient.privateKey, info, aad, sealed.subarray(0, length)), undefined);
    }
  });

  it("a different aad or info does not open", () => {
    assert.equal(open(recipient.privateKey, info, new TextEncoder().encode("aae"), sealed), undefined);
    assert.equal(open(recipient.privateKey, new TextEncoder().encode("inf0"), aad, sealed), undefined);
  });

  it("a flipped bit anywhere in enc || ct does not open (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: sealed.length * 8 - 1 }), (bit) => {
        const altered = new Uint8Array(sealed);
        altered[bit >>> 3] = (altered[bit >>> 3] ?? 0) ^ (1 << (bit & 7));
        return open(recipient.privateKey, info, aad, altered) === undefined;
      }),
      { numRuns: 300 },
    );
  });

  it("random bytes never open and never throw (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        (junk) => open(recipient.privateKey, info, aad, junk) === undefined,
      ),
      { numRuns: 300 },
    );
  });

  it("sealing to an unusable public key gives undefined", () => {
    assert.equal(seal(new Uint8Array(32), info, aad, pt), undefined);
    assert.equal(seal(new Uint8Array(31), info, aad, pt), undefined);
    assert.equal(open(new Uint8Array(5), info, aad, sealed), undefined);
  });

  it("an enc that is a low-order point does not open", () => {
    const lowOrder = new Uint8Array(sealed);
    lowOrder.fill(0, 0, 32);
    assert.equal(open(recipient.privateKey, info, aad, lowOrder), undefined);
  });
});

describe("hpke: edge cases", () => {
  const recipient = deriveKeyPair(hex(V.ikmR));
  const info = hex(V.info);
  const aad = hex(V.aad);

  it("the exported sizes: enc is 32 bytes, and enc plus tag 48", () => {
    assert.equal(HPKE_ENC_BYTES, 32);
    assert.equal(HPKE_OVERHEAD_BYTES, 48);
  });

  it("seal adds exactly enc (32) and the tag (16) to any plaintext, the empty one included, and open returns it", () => {
    for (const length of [0, 1, 15, 16, 17, 100]) {
      const pt = new Uint8Array(length).fill(length);
      const sealed = seal(recipient.publicKey, info, aad, pt, hex(V.ikmE));
      assert.ok(sealed);
      assert.equal(sealed.length, length + 48);
      assert.equal(sealed.length, length + HPKE_OVERHEAD_BYTES);
      assert.deepEqual(open(recipient.privateKey, info, aad, sealed), pt, `plaintext of ${length} bytes`);
    }
  });

  it("an empty aad and an empty info are values of their own, not wildcards", () => {
    const empty = new Uint8Array(0);
    const pt = Uint8Array.of(1, 2, 3);
    const sealed = seal(recipient.publicKey, empty, empty, pt);
    assert.ok(sealed);
    assert.deepEqual(open(recipient.privateKey, empty, empty, sealed), pt);
    assert.equal(open(recipient.privateKey, empty, Uint8Array.of(0), sealed), undefined);
    assert.equal(open(recipient.privateKey, Uint8Array.of(0), empty, sealed), undefined);
  });

  it("seal and open take parsed keys as well as raw bytes, with the same result", () => {
    const pkR = X25519PublicKey.fromRaw(recipient.publicKey);
    assert.ok(pkR);
    const skR = X25519PrivateKey.fromRaw(recipient.privateKey);
    const sealed = seal(pkR, info, aad, hex(V.pt), hex(V.ikmE));
    assert.equal(toHexString(sealed ?? new Uint8Array()), V.enc + V.ct);
    assert.equal(toHexString(open(skR, info, aad, hex(V.enc + V.ct)) ?? new Uint8Array()), V.pt);
  });

  it("a private key of the wrong length does not open (undefined, not a RangeError)", () => {
    const sealed = hex(V.enc + V.ct);
    for (const length of [0, 31, 33]) {
      assert.equal(open(new Uint8Array(length).fill(7), info, aad, sealed), undefined, `${length} bytes`);
    }
  });

  it("sealed input shorter than enc plus tag does not open, whatever it holds", () => {
    const sealed = hex(V.enc + V.ct);
    assert.equal(open(recipient.privateKey, info, aad, sealed.subarray(0, 47)), undefined);
    assert.equal(open(recipient.privateKey, info, aad, sealed.subarray(0, 32)), undefined);
    assert.equal(open(recipient.privateKey, info, aad, new Uint8Array(0)), undefined);
  });

  it("decap refuses an enc of the wrong length or of low order; encap refuses a low-order recipient", () => {
    const skR = X25519PrivateKey.fromRaw(recipient.privateKey);
    assert.equal(decap(hex(V.enc).subarray(0, 31), skR), undefined);
    assert.equal(decap(new Uint8Array(32), skR), undefined);
    const lowOrder = X25519PublicKey.fromRaw(new Uint8Array(32));
    assert.ok(lowOrder);
    assert.equal(encap(lowOrder, hex(V.ikmE)), undefined);
  });
});
