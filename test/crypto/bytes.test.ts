import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  bytesEqual,
  concatBytes,
  constantTimeEqual,
  fromBase64,
  i2osp,
  toBase64,
  toBytes,
  utf8,
} from "../../src/crypto/bytes.ts";

describe("bytes: utf8 and concatBytes", () => {
  it("utf8 encodes text as UTF-8 bytes", () => {
    assert.deepEqual(utf8("aé€"), Uint8Array.of(0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac));
    assert.deepEqual(utf8(""), new Uint8Array(0));
  });

  it("concatBytes joins the parts in order, empty parts included", () => {
    assert.deepEqual(
      concatBytes(Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3), Uint8Array.of(4, 5, 6)),
      Uint8Array.of(1, 2, 3, 4, 5, 6),
    );
    assert.deepEqual(concatBytes(), new Uint8Array(0));
    assert.deepEqual(concatBytes(Uint8Array.of(7)), Uint8Array.of(7));
  });

  it("concatBytes equals Buffer.concat for any parts (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 6 }), (parts) => {
        assert.deepEqual(Buffer.from(concatBytes(...parts)), Buffer.concat(parts));
      }),
      { numRuns: 100 },
    );
  });
});

describe("bytes: i2osp (RFC 9180 / RFC 8017 I2OSP)", () => {
  it("writes the value big-endian in exactly `length` bytes", () => {
    assert.deepEqual(i2osp(0x0020, 2), Uint8Array.of(0x00, 0x20));
    assert.deepEqual(i2osp(0x0102, 2), Uint8Array.of(0x01, 0x02));
    assert.deepEqual(i2osp(0x010203, 4), Uint8Array.of(0x00, 0x01, 0x02, 0x03));
    assert.deepEqual(i2osp(0xff, 1), Uint8Array.of(0xff));
    assert.deepEqual(i2osp(0, 3), Uint8Array.of(0, 0, 0));
    assert.deepEqual(i2osp(5, 0), new Uint8Array(0));
  });

  it("keeps only the low `length` bytes of a larger value", () => {
    assert.deepEqual(i2osp(0x1234, 1), Uint8Array.of(0x34));
    assert.deepEqual(i2osp(256, 1), Uint8Array.of(0));
  });

  it("agrees with Buffer.writeUIntBE for every 6-byte value (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 48 - 1 }),
        fc.integer({ min: 1, max: 6 }),
        (value, length) => {
          const expected = Buffer.alloc(6);
          expected.writeUIntBE(value, 0, 6);
          assert.deepEqual(Buffer.from(i2osp(value, length)), expected.subarray(6 - length));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("bytes: equality", () => {
  it("constantTimeEqual is true for equal bytes, false for any difference, and false (not a throw) across lengths", () => {
    assert.equal(constantTimeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3)), true);
    assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
    assert.equal(constantTimeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4)), false);
    assert.equal(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3)), false);
    assert.equal(constantTimeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2)), false);
  });

  it("bytesEqual is true for equal bytes, false for a difference at any position or a different length", () => {
    assert.equal(bytesEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3)), true);
    assert.equal(bytesEqual(new Uint8Array(0), new Uint8Array(0)), true);
    assert.equal(bytesEqual(Uint8Array.of(9, 2, 3), Uint8Array.of(1, 2, 3)), false);
    assert.equal(bytesEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 9)), false);
    assert.equal(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3)), false, "a prefix is not equal");
    assert.equal(bytesEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2)), false);
  });

  it("both equalities agree with Buffer.equals (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (a, b) => {
        const expected = Buffer.from(a).equals(Buffer.from(b));
        assert.equal(bytesEqual(a, b), expected);
        assert.equal(constantTimeEqual(a, b), expected);
        assert.equal(bytesEqual(a, a), true);
      }),
      { numRuns: 200 },
    );
  });
});

describe("bytes: toBytes and toBase64", () => {
  it("toBytes copies: the result is a plain Uint8Array that later writes to the source do not reach", () => {
    const source = Buffer.from([1, 2, 3]);
    const copy = toBytes(source);
    assert.equal(Object.getPrototypeOf(copy), Uint8Array.prototype);
    source[0] = 9;
    assert.deepEqual(copy, Uint8Array.of(1, 2, 3));
  });

  it("toBase64 encodes only the view's own bytes, not the rest of its buffer", () => {
    const whole = Uint8Array.of(0xff, 0, 1, 2, 0xff);
    assert.equal(toBase64(whole.subarray(1, 4)), "AAEC");
    assert.equal(toBase64(new Uint8Array(0)), "");
    assert.equal(toBase64(Uint8Array.of(0xfb, 0xff)), "+/8=");
  });
});

describe("bytes: fromBase64 (strict)", () => {
  it("decodes canonical base64 of every padding shape", () => {
    assert.deepEqual(fromBase64(""), new Uint8Array(0));
    assert.deepEqual(fromBase64("AA=="), Uint8Array.of(0));
    assert.deepEqual(fromBase64("AAE="), Uint8Array.of(0, 1));
    assert.deepEqual(fromBase64("AAEC"), Uint8Array.of(0, 1, 2));
    assert.deepEqual(fromBase64("+/8="), Uint8Array.of(0xfb, 0xff));
  });

  it("round-trips any bytes, with and without the expected length (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const text = toBase64(bytes);
        assert.deepEqual(fromBase64(text), bytes);
        assert.deepEqual(fromBase64(text, bytes.length), bytes);
        assert.equal(fromBase64(text, bytes.length + 1), undefined);
      }),
      { numRuns: 200 },
    );
  });

  it("refuses a decoded length other than the one asked for", () => {
    assert.equal(fromBase64("AAEC", 2), undefined);
    assert.equal(fromBase64("AAEC", 4), undefined);
    assert.deepEqual(fromBase64("AAEC", 3), Uint8Array.of(0, 1, 2));
  });

  it("refuses text that does not re-encode to itself (non-zero padding bits)", () => {
    // "AB==" and "AAF=" match the alphabet and padding, but their unused low bits are set: Buffer decodes them to
    // the same bytes as "AA==" and "AAE=", so accepting them would let two texts stand for one value.
    assert.equal(fromBase64("AB=="), undefined);
    assert.equal(fromBase64("AAF="), undefined);
    assert.equal(fromBase64("AB==", 1), undefined);
  });

  it("refuses junk that Buffer.from would skip silently", () => {
    for (const text of ["AA AA", "AA\nAA", "AAEC!", "AAE", "A===", "AA=A", "-_8=", "AAEC===="]) {
      assert.equal(fromBase64(text), undefined, JSON.stringify(text));
    }
  });

  it("refuses a value that is not a string, even one whose String() looks like base64, without throwing", () => {
    for (const value of [1234, null, undefined, ["AAEC"], { length: 3 }, true]) {
      assert.equal(fromBase64(value), undefined, String(value));
    }
  });

  it("returns a fresh copy each time, so a caller may wipe it", () => {
    const first = fromBase64("AAEC");
    assert.ok(first);
    first.fill(0xee);
    assert.deepEqual(fromBase64("AAEC"), Uint8Array.of(0, 1, 2));
  });
});
