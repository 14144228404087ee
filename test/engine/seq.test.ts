import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { SEQ_MOD, seqAdd, seqDiff, seqLess } from "../../src/engine/seq.ts";

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
/**
 * Distances that serial arithmetic can represent. seqDiff returns them in [-2^31, 2^31): the point exactly halfway
 * round the circle reads as -2^31 from both sides (seq.ts's comment says (-2^31, 2^31]; the code is what is tested).
 */
const distance = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });

describe("seq: serial-number arithmetic (RFC 1982) on u32", () => {
  it("wraps from 2^32 - 1 to 0 and back", () => {
    assert.equal(seqAdd(2 ** 32 - 1, 1), 0);
    assert.equal(seqAdd(0, -1), 2 ** 32 - 1);
    assert.equal(seqAdd(2 ** 32 - 5, 10), 5);
    assert.equal(seqDiff(0, 2 ** 32 - 1), 1);
    assert.equal(seqDiff(2 ** 32 - 1, 0), -1);
    assert.equal(seqDiff(5, 2 ** 32 - 5), 10);
    assert.equal(seqLess(2 ** 32 - 1, 0), true);
    assert.equal(seqLess(0, 2 ** 32 - 1), false);
  });

  it("the distance halfway round the circle is -2^31 both ways (RFC 1982 leaves it undefined)", () => {
    assert.equal(seqDiff(2 ** 31, 0), -(2 ** 31));
    assert.equal(seqDiff(0, 2 ** 31), -(2 ** 31));
    // Both read as "less": a frame exactly 2^31 away from the receiver's next counts as old, never as new.
    assert.equal(seqLess(0, 2 ** 31), true);
    assert.equal(seqLess(2 ** 31, 0), true);
  });

  it("seqAdd stays in [0, 2^32) for any step (property)", () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), (a, n) => {
        const s = seqAdd(a, n);
        return Number.isInteger(s) && s >= 0 && s < SEQ_MOD;
      }),
    );
  });

  it("seqDiff(a + n, a) = n for every representable distance, across the wrap (property)", () => {
    fc.assert(fc.property(u32, distance, (a, n) => seqDiff(seqAdd(a, n), a) === n));
  });

  it("seqDiff is in [-2^31, 2^31) and antisymmetric except at -2^31 (property)", () => {
    fc.assert(
      fc.property(u32, u32, (a, b) => {
        const d = seqDiff(a, b);
        if (!(Number.isInteger(d) && d >= -(2 ** 31) && d < 2 ** 31)) return false;
        return d === -(2 ** 31) ? seqDiff(b, a) === -(2 ** 31) : seqDiff(b, a) === -d || d === 0;
      }),
    );
  });

  it("seqLess is a strict order within half the circle: irreflexive, asymmetric, transitive (property)", () => {
    fc.assert(
      fc.property(
        u32,
        fc.integer({ min: 1, max: 2 ** 30 }),
        fc.integer({ min: 1, max: 2 ** 30 }),
        (a, x, y) => {
          const b = seqAdd(a, x);
          const c = seqAdd(b, y);
          return (
            !seqLess(a, a) &&
            seqLess(a, b) &&
            !seqLess(b, a) &&
            seqLess(b, c) &&
            seqLess(a, c) &&
            !seqLess(c, a)
          );
        },
      ),
    );
  });

  it("adding n then -n returns to the start (property)", () => {
    fc.assert(fc.property(u32, fc.integer(), (a, n) => seqAdd(seqAdd(a, n), -n) === a));
  });
});
