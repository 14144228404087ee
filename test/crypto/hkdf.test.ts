import assert from "node:assert/strict";
import { hkdfSync } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { hkdf, hkdfExpand, hkdfExtract } from "../../src/crypto/hkdf.ts";
import { hex, RFC5869_CASE1, toHexString } from "./vectors.ts";

describe("hkdf: HKDF-SHA256", () => {
  it("RFC 5869 test case 1: PRK and OKM", () => {
    const prk = hkdfExtract(hex(RFC5869_CASE1.salt), hex(RFC5869_CASE1.ikm));
    assert.equal(toHexString(prk), RFC5869_CASE1.prk);
    assert.equal(
      toHexString(hkdfExpand(prk, hex(RFC5869_CASE1.info), RFC5869_CASE1.length)),
      RFC5869_CASE1.okm,
    );
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
      assert.throws(() => hkdfExpand(prk, new Uint8Array(0), length), RangeError, `length ${length}`);
    }
  });
});
