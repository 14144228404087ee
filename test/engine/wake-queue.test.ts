import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { WakeQueue } from "../../src/engine/wake-queue.ts";

/** Ten peers, each known by its rank. */
const PEERS = 10;
const peer = fc.integer({ min: 0, max: PEERS - 1 });
const time = fc.integer({ min: 0, max: 50 });
const operation = fc.oneof(
  fc.record({ op: fc.constant("schedule" as const), peer, at: fc.option(time, { nil: undefined }) }),
  fc.record({ op: fc.constant("take" as const), now: time }),
  fc.record({ op: fc.constant("peek" as const) }),
);

describe("WakeQueue: peers by the time they next need attention", () => {
  it("agrees with a plain map scanned in full, whatever the order of reschedules and takes", () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 300 }), (ops) => {
        const queue = new WakeQueue<number>();
        const model = new Map<number, number>();
        for (const o of ops) {
          if (o.op === "schedule") {
            queue.schedule(o.peer, o.peer, o.at);
            if (o.at === undefined) model.delete(o.peer);
            else model.set(o.peer, o.at);
          } else if (o.op === "take") {
            const due = [...model].filter(([, at]) => at <= o.now).map(([p]) => p);
            due.sort((a, b) => a - b);
            for (const p of due) model.delete(p);
            assert.deepEqual(queue.takeDue(o.now), due);
          } else {
            const all = [...model].sort(([pa, a], [pb, b]) => a - b || pa - pb);
            assert.equal(queue.peek(), all[0]?.[1]);
            assert.deepEqual(queue.first(), all[0] && { at: all[0][1], peer: all[0][0] });
          }
        }
      }),
      { seed: 20261124, numRuns: 300 },
    );
  });

  it("stays within a small multiple of its peers however often one is rescheduled", () => {
    const queue = new WakeQueue<string>();
    queue.schedule("idle", 0, 1_000_000);
    for (let i = 0; i < 100_000; i++) queue.schedule("busy", 1, 500_000 - (i % 1000));
    // Rescheduled entries are stale; the heap is rebuilt when they outnumber the live ones.
    assert.ok((queue as unknown as { heap: unknown[] }).heap.length <= 2 * 2 + 64);
    assert.deepEqual(queue.takeDue(1_000_000), ["idle", "busy"]);
    assert.equal(queue.peek(), undefined);
  });
});
