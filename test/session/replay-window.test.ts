import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ReplayWindow, WINDOW_SIZE } from "../../src/session/replay-window.ts";

/** The window as a definition: accept a counter once, unless it is WINDOW_SIZE or more below the highest seen. */
class ModelWindow {
  private highest = -1;
  private readonly seen = new Set<number>();
  mark(counter: number): boolean {
    if (counter <= this.highest - WINDOW_SIZE || this.seen.has(counter)) return false;
    this.seen.add(counter);
    this.highest = Math.max(this.highest, counter);
    return true;
  }
}

describe("the replay window", () => {
  test("accepts exactly what the definition accepts, for any order of counters", () => {
    const counters = fc.oneof(
      fc.integer({ min: 0, max: 3 * WINDOW_SIZE }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    );
    fc.assert(
      fc.property(fc.array(counters, { maxLength: 400 }), (list) => {
        const window = new ReplayWindow();
        const model = new ModelWindow();
        for (const c of list) {
          const would = window.wouldAccept(c);
          const marked = window.mark(c);
          assert.equal(marked, would);
          assert.equal(marked, model.mark(c), `counter ${c}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("a counter is accepted once; the oldest still in the window is accepted, one below it is not", () => {
    const window = new ReplayWindow();
    assert.ok(window.mark(5000));
    assert.equal(window.mark(5000), false);
    assert.equal(window.wouldAccept(5000 - WINDOW_SIZE), false);
    assert.ok(window.wouldAccept(5000 - WINDOW_SIZE + 1));
    assert.ok(window.mark(4999));
    assert.ok(window.mark(0 + 5001));
  });

  test("checking does not mark: a counter only checked (a datagram that failed to decrypt) stays acceptable", () => {
    const window = new ReplayWindow();
    assert.ok(window.wouldAccept(3));
    assert.ok(window.wouldAccept(3));
    assert.ok(window.mark(3));
    assert.equal(window.wouldAccept(3), false);
  });

  test("a jump of more than the window forgets every earlier counter", () => {
    const window = new ReplayWindow();
    for (let c = 0; c < 100; c++) window.mark(c);
    assert.ok(window.mark(100 + 3 * WINDOW_SIZE));
    for (let c = 2 * WINDOW_SIZE + 101; c < 100 + 3 * WINDOW_SIZE; c += 97)
      assert.ok(window.wouldAccept(c), `${c}`);
    assert.equal(window.wouldAccept(50), false);
  });

  test("refuses what is not a counter", () => {
    const window = new ReplayWindow();
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) assert.equal(window.mark(bad), false);
  });
});
