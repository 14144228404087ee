import assert from "node:assert/strict";
import { hkdfSync } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { hkdf, hkdfExpand, hkdfExtract, hmacSha256, SHA256_BYTES } from "../../src/crypto/hkdf.ts";
import { hex, RFC5869_CASE1, RFC5869_CASE2, RFC5869_CASE3, toHexString } from "./vectors.ts";

describe("hkdf: HKDF-SHA256", () => {
  it("RFC 5869 test case 1: PRK and OKM", () => {
    const prk = hkdfExtract(hex(RFC5869_CASE1.salt), hex(RFC5869_CASE1.ikm));
    assert.equal(toHexString(prk), RFC5869_CASE1.prk);
    assert.equal(
      toHexString(hkdfExpand(prk, hex(RFC5869_CASE1.info), RFC5869_CASE1.length)),
      RFC5869_CASE1.okm,
    );
  });

  for (const [name, vector] of [
    ["2 (80-byte inputs, three blocks of output)", RFC5869_CASE2],
    ["3 (empty salt and info)", RFC5869_CASE3],
  ] as const) {
    it(`RFC 5869 test case ${name}: PRK, OKM, and the one-call hkdf`, () => {
      const prk = hkdfExtract(hex(vector.salt), hex(vector.ikm));
      assert.equal(toHexString(prk), vector.prk);
      assert.equal(toHexString(hkdfExpand(prk, hex(vector.info), vector.length)), vector.okm);
      assert.equal(
        toHexString(hkdf(hex(vector.ikm), hex(vector.salt), hex(vector.info), vector.length)),
        vector.okm,
      );
      // Every shorter output is a prefix of the longer one.
      assert.equal(toHexString(hkdfExpand(prk, hex(vector.info), 33)), vector.okm.slice(0, 66));
    });
  }

  it("hmacSha256 over several parts is the HMAC of their concatenation", () => {
    const key = Uint8Array.of(1, 2, 3);
    const whole = hmacSha256(key, Uint8Array.of(4, 5, 6, 7));
    assert.deepEqual(hmacSha256(key, Uint8Array.of(4), new Uint8Array(0), Uint8Array.of(5, 6, 7)), whole);
    assert.equal(SHA256_BYTES, 32);
    assert.equal(whole.length, 32);
  });

  it("agrees with node:crypto's hkdfSync for any input (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.integer({ min: 1, max: 200 }),
        (ikm, salt, info, length) => {
          const ours = hkdf(ikm, salt, info, length);
          const theirs = new Uint8Array(hkdfSync("sha256", ikm, salt, info, length));
          return toHexString(ours) === toHexString(theirs);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("takes 0 to 255 × 32 bytes, as node:crypto does, and refuses anything else with a RangeError", () => {
    const prk = hkdfExtract(new Uint8Array(0), Uint8Array.of(1, 2, 3));
    assert.equal(hkdfExpand(prk, new Uint8Array(0), 0).length, 0);
    const longest = hkdfExpand(prk, Uint8Array.of(9), 8160);
    assert.equal(
      toHexString(longest),
      toHexString(
        new Uint8Array(hkdfSync("sha256", Uint8Array.of(1, 2, 3), new Uint8Array(0), Uint8Array.of(9), 8160)),
      ),
    );
    for (const length of [-1, 8161, 1.5, Number.NaN]) {
      assert.throws(
        () => hkdfExpand(prk, new Uint8Array(0), length),
        { name: "RangeError", message: "HKDF-SHA256 output is 0..8160 bytes" },
        `length ${length}`,
      );
    }
  });
});
