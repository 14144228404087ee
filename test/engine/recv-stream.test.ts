import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { joinFragments } from "../../src/engine/fragments.ts";
import {
  type AcceptResult,
  type CompleteMessage,
  type HeldFrame,
  RECV_WINDOW,
  RecvStream,
} from "../../src/engine/recv-stream.ts";
import { seqAdd, seqDiff } from "../../src/engine/seq.ts";
import type { MsgId } from "../../src/engine/types.ts";
import { MAX_ACK_RANGES, MAX_ACK_REJECTS, RejectCode } from "../../src/engine/wire.ts";

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
/** Start points that include the neighbourhood of the wrap. */
const start = fc.oneof(u32, fc.integer({ min: 2 ** 32 - 300, max: 2 ** 32 - 1 }));

function msgId(n: number): MsgId {
  return n.toString(16).padStart(32, "0") as MsgId;
}

function frame(seq: number, id: number, fragIndex = 0, fragCount = 1): HeldFrame {
  return {
    seq,
    msgId: msgId(id),
    flags: 0,
    fragIndex,
    fragCount,
    sentAt: 1000 + id,
    payload: Uint8Array.of(id & 0xff, fragIndex),
  };
}

/** The frames of message `id` of `count` fragments starting at `head`. */
function message(head: number, id: number, count: number): HeldFrame[] {
  return Array.from({ length: count }, (_, i) => frame(seqAdd(head, i), id, i, count));
}

/** What the engine does with an authenticated frame: accept, complete the message if whole, deliver in order. */
function offer(s: RecvStream, f: HeldFrame): { result: AcceptResult; delivered: CompleteMessage[] } {
  const result = s.accept(f);
  if (result === "accepted") {
    const frames = s.gather(f.seq);
    if (frames === "inconsistent") s.tombstone(f.seq, RejectCode.Malformed);
    else if (frames?.[0]) {
      const first = frames[0];
      s.markComplete({
        head: first.seq,
        count: frames.length,
        msgId: first.msgId,
        flags: first.flags,
        sentAt: first.sentAt,
        body: joinFragments(frames.map((x) => x.payload)),
      });
    }
  }
  return { result, delivered: s.advance() };
}

function ids(messages: CompleteMessage[]): MsgId[] {
  return messages.map((m) => m.msgId);
}

describe("recv-stream: the dedup window", () => {
  it("a frame below next, or one already held, is a duplicate", () => {
    const s = new RecvStream(1, 10);
    assert.deepEqual(ids(offer(s, frame(10, 1)).delivered), [msgId(1)]);
    assert.equal(s.next, 11);
    assert.equal(s.accept(frame(10, 1)), "duplicate");
    assert.equal(s.accept(frame(3, 9)), "duplicate");
    assert.equal(offer(s, frame(12, 3, 0, 2)).result, "accepted");
    assert.equal(s.accept(frame(12, 3, 0, 2)), "duplicate");
    assert.equal(s.heldCount(), 1);
  });

  it("next + 255 is accepted, next + 256 and beyond are beyond-window", () => {
    const s = new RecvStream(1, 100);
    assert.equal(s.accept(frame(100 + RECV_WINDOW - 1, 1)), "accepted");
    assert.equal(s.accept(frame(100 + RECV_WINDOW, 2)), "beyond-window");
    assert.equal(s.accept(frame(100 + 2 ** 31 - 1, 3)), "beyond-window");
  });

  it("old frames, up to 2^31 behind next, are duplicates (across the wrap too)", () => {
    const s = new RecvStream(1, 5);
    assert.equal(s.accept(frame(4, 1)), "duplicate");
    assert.equal(s.accept(frame(2 ** 32 - 1, 1)), "duplicate");
    assert.equal(s.accept(frame(seqAdd(5, -(2 ** 31) + 1), 1)), "duplicate");
    assert.equal(s.accept(frame(seqAdd(5, 2 ** 31), 1)), "duplicate"); // halfway round reads as behind
  });

  it("whatever arrives, at most RECV_WINDOW frames are held, all within [next, next + 256) (property)", () => {
    fc.assert(
      fc.property(
        start,
        fc.array(fc.integer({ min: -300, max: 600 }), { maxLength: 400 }),
        (next, offsets) => {
          const s = new RecvStream(1, next);
          offsets.forEach((o, i) => {
            // Two-fragment heads that never complete stay held.
            s.accept(frame(seqAdd(next, o), i, 0, 2));
          });
          if (s.heldCount() > RECV_WINDOW) return false;
          return s.snapshot().held.every(([seq]) => {
            const d = seqDiff(seq, s.next);
            return d >= 0 && d < RECV_WINDOW;
          });
        },
      ),
    );
  });

  it("wraps around 2^32: starting at 2^32 − 5, ten messages are delivered in order", () => {
    const s = new RecvStream(1, 2 ** 32 - 5);
    const delivered: MsgId[] = [];
    for (let i = 0; i < 10; i++) delivered.push(...ids(offer(s, frame(seqAdd(2 ** 32 - 5, i), i)).delivered));
    assert.deepEqual(
      delivered,
      Array.from({ length: 10 }, (_, i) => msgId(i)),
    );
    assert.equal(s.next, 5);
    assert.equal(s.heldCount(), 0);
  });

  it("a message whose fragments straddle the wrap is reassembled, arriving backwards", () => {
    const s = new RecvStream(1, 2 ** 32 - 2);
    const frames = message(2 ** 32 - 2, 7, 4).reverse();
    const delivered = frames.flatMap((f) => offer(s, f).delivered);
    assert.equal(delivered.length, 1);
    assert.deepEqual(delivered[0]?.body, Uint8Array.of(7, 0, 7, 1, 7, 2, 7, 3));
    assert.equal(s.next, 2);
  });
});

describe("recv-stream: in-order delivery", () => {
  it("any permutation of arrival, with duplicates, delivers every message once, in order (property)", () => {
    fc.assert(
      fc.property(
        start,
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (head, sizes, keys, dupPicks) => {
          const s = new RecvStream(1, head);
          const frames: HeldFrame[] = [];
          let seq = head;
          sizes.forEach((count, id) => {
            frames.push(...message(seq, id, count));
            seq = seqAdd(seq, count);
          });
          for (const pick of dupPicks) {
            const dup = frames[pick % frames.length];
            if (dup) frames.push(dup);
          }
          const order = frames.map((f, i) => ({ f, k: keys[i] ?? i })).sort((a, b) => a.k - b.k);
          const delivered = order.flatMap(({ f }) => offer(s, f).delivered);
          assert.deepEqual(
            ids(delivered),
            sizes.map((_, id) => msgId(id)),
          );
          for (const m of delivered) {
            const id = Number.parseInt(m.msgId, 16);
            assert.equal(m.count, sizes[id]);
            assert.equal(m.body?.length, 2 * m.count);
          }
          assert.equal(s.next, seq);
          assert.equal(s.heldCount(), 0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("fragments that disagree (msgId, index, count or flags) are inconsistent and the message is tombstoned", () => {
    const s = new RecvStream(1, 0);
    offer(s, frame(0, 1, 0, 2));
    assert.equal(s.accept(frame(1, 2, 1, 2)), "accepted");
    assert.equal(s.gather(1), "inconsistent");
    s.tombstone(1, RejectCode.Malformed);
    assert.deepEqual(s.advance(), []);
    assert.equal(s.next, 2);
    assert.deepEqual(s.ackRejects(), [{ seq: 0, code: RejectCode.Malformed }]);
    assert.deepEqual(ids(offer(s, frame(2, 3)).delivered), [msgId(3)]);
  });

  it("a rejected (tombstoned) message is skipped in order and later ones are delivered", () => {
    const s = new RecvStream(1, 0);
    offer(s, frame(1, 2));
    s.accept(frame(0, 1));
    s.tombstone(0, RejectCode.DecryptFailed);
    assert.deepEqual(ids(s.advance()), [msgId(2)]);
    assert.equal(s.next, 2);
    assert.deepEqual(s.ackRejects(), [{ seq: 0, code: RejectCode.DecryptFailed }]);
  });

  it("keeps only the newest 16 rejections to report", () => {
    const s = new RecvStream(1, 0);
    for (let i = 0; i < 20; i++) s.reject(i, RejectCode.Malformed);
    const rejects = s.ackRejects();
    assert.equal(rejects.length, MAX_ACK_REJECTS);
    assert.equal(rejects[0]?.seq, 4);
    assert.equal(rejects[15]?.seq, 19);
  });
});

describe("recv-stream: the floor", () => {
  it("a given-up message does not block later ones once the floor passes it", () => {
    const s = new RecvStream(1, 0);
    assert.deepEqual(offer(s, frame(1, 2)).delivered, []); // seq 0 never arrives
    s.noteFloor(1);
    assert.deepEqual(ids(s.advance()), [msgId(2)]);
    assert.equal(s.next, 2);
  });

  it("the floor never moves back", () => {
    const s = new RecvStream(1, 0);
    s.noteFloor(10);
    s.noteFloor(4);
    assert.equal(s.floor, 10);
  });

  it("a partly received message below the floor is dropped, fragments and all", () => {
    const s = new RecvStream(1, 0);
    s.accept(frame(0, 1, 0, 3));
    s.accept(frame(2, 1, 2, 3)); // seq 1 lost, then the sender gave up the whole message
    offer(s, frame(3, 2));
    s.noteFloor(3);
    assert.deepEqual(ids(s.advance()), [msgId(2)]);
    assert.equal(s.next, 4);
    assert.equal(s.heldCount(), 0);
  });

  it("orphan fragments (their head was given up) are dropped, not delivered", () => {
    const s = new RecvStream(1, 0);
    s.accept(frame(1, 1, 1, 3));
    s.accept(frame(2, 1, 2, 3));
    offer(s, frame(3, 2));
    s.noteFloor(1); // seq 0, the head, was given up: 1 and 2 can never complete
    assert.deepEqual(ids(s.advance()), [msgId(2)]);
    assert.equal(s.heldCount(), 0);
    // Also when the head lies below where the stream started.
    const late = new RecvStream(1, 10);
    assert.equal(offer(late, frame(10, 5, 1, 2)).result, "accepted");
    assert.equal(late.next, 11);
    assert.equal(late.heldCount(), 0);
  });

  it("a message straddling the floor (its first fragments acknowledged) waits for the rest", () => {
    const s = new RecvStream(1, 0);
    offer(s, frame(0, 1, 0, 3));
    offer(s, frame(1, 1, 1, 3));
    s.noteFloor(2); // the sender has 0 and 1 acknowledged; 2 is still in flight
    assert.deepEqual(s.advance(), []);
    assert.equal(s.next, 0);
    assert.deepEqual(ids(offer(s, frame(2, 1, 2, 3)).delivered), [msgId(1)]);
  });

  it("below the floor, a complete message is still delivered (only its ACKs were lost), an incomplete one dropped", () => {
    const s = new RecvStream(1, 0);
    // Seq 0 never arrives; 1–2 is complete; 3–4 has only its head.
    offer(s, frame(1, 2, 0, 2));
    offer(s, frame(2, 2, 1, 2));
    offer(s, frame(3, 3, 0, 2));
    assert.equal(s.next, 0);
    s.noteFloor(5);
    assert.deepEqual(ids(s.advance()), [msgId(2)]);
    assert.equal(s.next, 5);
    assert.equal(s.heldCount(), 0);
  });

  it("a floor 2^30 ahead is reached in one step, not one loop per seq", () => {
    const s = new RecvStream(1, 2 ** 32 - 10);
    offer(s, frame(seqAdd(2 ** 32 - 10, 3), 1));
    const floor = seqAdd(2 ** 32 - 10, 2 ** 30);
    s.noteFloor(floor);
    const t0 = performance.now();
    assert.deepEqual(ids(s.advance()), [msgId(1)]);
    assert.ok(performance.now() - t0 < 50);
    assert.equal(s.next, floor);
  });
});

describe("recv-stream: ACK ranges", () => {
  /** The model: the runs of consecutive held seqs above next, lowest first, at most 32. */
  function modelRanges(next: number, offsets: number[]): { start: number; length: number }[] {
    const sorted = [...new Set(offsets)].sort((a, b) => a - b);
    const runs: { start: number; length: number }[] = [];
    let prev = -2;
    for (const o of sorted) {
      const last = runs[runs.length - 1];
      if (last && o === prev + 1) last.length++;
      else runs.push({ start: seqAdd(next, o), length: 1 });
      prev = o;
    }
    return runs.slice(0, MAX_ACK_RANGES);
  }

  it("are the runs of held seqs above next, lowest first, at most 32, across the wrap (property)", () => {
    fc.assert(
      fc.property(
        start,
        fc.array(fc.integer({ min: 1, max: RECV_WINDOW - 1 }), { maxLength: 200 }),
        (next, offsets) => {
          const s = new RecvStream(1, next);
          // Seq `next` itself is missing, so nothing is delivered and every accepted frame stays held.
          for (const o of offsets) offer(s, frame(seqAdd(next, o), o));
          assert.equal(s.next, next);
          assert.deepEqual(s.ackRanges(), modelRanges(next, offsets));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("every other seq held gives the maximum of 32 ranges, the lowest ones", () => {
    const s = new RecvStream(1, 0);
    for (let i = 1; i < 200; i += 2) offer(s, frame(i, i));
    const ranges = s.ackRanges();
    assert.equal(ranges.length, MAX_ACK_RANGES);
    assert.deepEqual(ranges[0], { start: 1, length: 1 });
    assert.deepEqual(ranges[31], { start: 63, length: 1 });
  });

  it("an empty stream has no ranges", () => {
    assert.deepEqual(new RecvStream(1, 0).ackRanges(), []);
  });
});

describe("recv-stream: snapshot and restore", () => {
  it("restore(snapshot()) has the same snapshot and behaves the same afterwards (property)", () => {
    fc.assert(
      fc.property(
        start,
        fc.array(
          fc.record({ offset: fc.integer({ min: 0, max: 40 }), count: fc.integer({ min: 1, max: 3 }) }),
        ),
        fc.integer({ min: 0, max: 40 }),
        fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 40 }),
        (next, arrivals, floor, later) => {
          const s = new RecvStream(3, next);
          arrivals.forEach(({ offset, count }, i) => {
            // A frame of a message of `count` fragments, possibly claimed by several messages (→ inconsistent).
            offer(s, frame(seqAdd(next, offset), i, offset % count, count));
          });
          s.reject(seqAdd(next, 1), RejectCode.DecryptFailed);
          s.noteFloor(seqAdd(next, floor));
          const snap = s.snapshot();
          const copy = RecvStream.restore(JSON.parse(JSON.stringify(snap)));
          assert.deepEqual(copy.snapshot(), snap);
          assert.deepEqual(copy.ackRanges(), s.ackRanges());
          for (const o of later) {
            const f = frame(seqAdd(next, o), 100 + o);
            const a = offer(s, f);
            const b = offer(copy, f);
            assert.equal(b.result, a.result);
            assert.deepEqual(b.delivered, a.delivered);
          }
          assert.deepEqual(copy.snapshot(), s.snapshot());
        },
      ),
      { numRuns: 200 },
    );
  });

  it("saves a waiting message's contents once: its frames are left out, and restore puts back their bookkeeping", () => {
    const s = new RecvStream(2, 0);
    for (const f of [...message(1, 1, 2), ...message(3, 2, 1)]) offer(s, f);
    offer(s, frame(5, 3, 0, 2)); // half of a message: its frame is all there is of it
    const snap = s.snapshot();
    assert.deepEqual(
      snap.held.map(([seq]) => seq),
      [5],
    );
    assert.deepEqual(
      snap.complete.map(([head]) => head),
      [1, 3],
    );
    const copy = RecvStream.restore(JSON.parse(JSON.stringify(snap)));
    assert.equal(copy.heldCount(), s.heldCount());
    const ranges = [
      { start: 1, length: 3 },
      { start: 5, length: 1 },
    ];
    assert.deepEqual(s.ackRanges(), ranges);
    assert.deepEqual(copy.ackRanges(), ranges);
    assert.equal(offer(copy, frame(2, 1, 1, 2)).result, "duplicate");
    assert.deepEqual(ids(offer(copy, frame(0, 0)).delivered), [msgId(0), msgId(1), msgId(2)]);
    // A snapshot saved before frames were left out holds both: restoring it gives the same stream.
    const legacy = { ...snap, held: [...snap.held, [1, msgId(1), 0, 0, 2, 1001, "0100"]] } as typeof snap;
    assert.deepEqual(RecvStream.restore(legacy).ackRanges(), ranges);
  });

  it("keeps held frames, completed-but-waiting messages and rejections", () => {
    const s = new RecvStream(9, 0);
    offer(s, frame(1, 2));
    offer(s, frame(2, 3, 0, 2));
    s.accept(frame(4, 4));
    s.tombstone(4, RejectCode.DecryptFailed);
    const copy = RecvStream.restore(s.snapshot());
    assert.equal(copy.epoch, 9);
    assert.equal(copy.heldCount(), 3);
    assert.deepEqual(copy.ackRejects(), [{ seq: 4, code: RejectCode.DecryptFailed }]);
    assert.deepEqual(ids(offer(copy, frame(0, 1)).delivered), [msgId(1), msgId(2)]);
    assert.deepEqual(ids(offer(copy, frame(3, 3, 1, 2)).delivered), [msgId(3)]);
    assert.equal(copy.next, 5);
  });
});
