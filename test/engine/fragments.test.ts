import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { joinFragments, splitIntoFragments } from "../../src/engine/fragments.ts";
import { MAX_DATAGRAM_BYTES, MAX_TEXT_BYTES, SIGNATURE_BYTES } from "../../src/engine/types.ts";
import {
  DATA_FIXED_BYTES,
  DATA_PROOF_MAX_BYTES,
  MAX_FRAGMENT_PAYLOAD,
  MAX_FRAGMENTS,
} from "../../src/engine/wire.ts";
import { TRANSPORT_OVERHEAD } from "../../src/session/wire.ts";

/** HPKE adds a 32-byte encapsulated key and a 16-byte tag to a private message. */
const PRIVATE_OVERHEAD = 48;

function body(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

describe("fragments: split and join", () => {
  it("a fragment payload fills a DATA datagram, sealed in its session, to exactly MAX_DATAGRAM_BYTES", () => {
    // The batch signature of a full batch: index, size, 4 path hashes, the Ed25519 signature.
    assert.equal(DATA_PROOF_MAX_BYTES, 1 + 1 + 4 * 32 + SIGNATURE_BYTES);
    assert.equal(MAX_FRAGMENT_PAYLOAD, 947);
    assert.equal(
      DATA_FIXED_BYTES + MAX_FRAGMENT_PAYLOAD + DATA_PROOF_MAX_BYTES + TRANSPORT_OVERHEAD,
      MAX_DATAGRAM_BYTES,
    );
  });

  it("joins back to the same bytes for every size from 0 to 64 KiB + HPKE overhead (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_TEXT_BYTES + PRIVATE_OVERHEAD }), fc.nat(255), (n, seed) => {
        const b = body(n, seed);
        const parts = splitIntoFragments(b);
        assert.equal(parts.length, Math.max(1, Math.ceil(n / MAX_FRAGMENT_PAYLOAD)));
        for (const [i, p] of parts.entries()) {
          assert.ok(p.length <= MAX_FRAGMENT_PAYLOAD);
          // Every fragment but the last is full, so the count is the least possible.
          if (i < parts.length - 1) assert.equal(p.length, MAX_FRAGMENT_PAYLOAD);
        }
        assert.deepEqual(joinFragments(parts), b);
      }),
      { numRuns: 150 },
    );
  });

  it("the edges: 0 bytes is one empty fragment; 947 is one; 948 is two", () => {
    assert.deepEqual(
      splitIntoFragments(new Uint8Array(0)).map((p) => p.length),
      [0],
    );
    assert.deepEqual(
      splitIntoFragments(body(947, 1)).map((p) => p.length),
      [947],
    );
    assert.deepEqual(
      splitIntoFragments(body(948, 1)).map((p) => p.length),
      [947, 1],
    );
  });

  it("the largest private message (64 KiB sealed) takes 70 fragments, well under 255", () => {
    assert.equal(splitIntoFragments(body(MAX_TEXT_BYTES + PRIVATE_OVERHEAD, 0)).length, 70);
    assert.equal(splitIntoFragments(body(MAX_TEXT_BYTES, 0)).length, 70);
  });

  it("255 full fragments are allowed; one byte more throws RangeError", () => {
    assert.equal(splitIntoFragments(body(MAX_FRAGMENTS * MAX_FRAGMENT_PAYLOAD, 0)).length, 255);
    assert.throws(() => splitIntoFragments(body(MAX_FRAGMENTS * MAX_FRAGMENT_PAYLOAD + 1, 0)), RangeError);
  });

  it("honours a smaller chunk size and its 255-fragment limit (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 20_000 }), (chunk, n) => {
        const b = body(n, chunk);
        const count = Math.max(1, Math.ceil(n / chunk));
        if (count > MAX_FRAGMENTS) {
          assert.throws(() => splitIntoFragments(b, chunk), RangeError);
          return;
        }
        const parts = splitIntoFragments(b, chunk);
        assert.equal(parts.length, count);
        assert.ok(parts.every((p) => p.length <= chunk));
        assert.deepEqual(joinFragments(parts), b);
      }),
    );
  });

  it("joinFragments of nothing is empty", () => {
    assert.equal(joinFragments([]).length, 0);
  });
});
