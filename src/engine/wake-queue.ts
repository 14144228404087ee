/**
 * When each peer next needs the engine's attention (a frame's retransmission deadline, a heartbeat, the moment it
 * counts as offline), ordered by that time: a binary min-heap with lazy deletion. Rescheduling a peer pushes a new
 * entry and leaves the old one to be discarded when it reaches the top, so both cost O(log n) and the engine's timer
 * work per call grows with the peers that have something due, not with every peer it knows.
 */
import type { Millis } from "./types.ts";

interface Entry<P> {
  at: Millis;
  /** Ties go to the lower rank (the order peers were added), so that runs replay the same way. */
  rank: number;
  peer: P;
}

export class WakeQueue<P> {
  private readonly heap: Entry<P>[] = [];
  /** Each peer's live entry; an entry in the heap that is not one of these is stale. */
  private readonly live = new Map<P, Entry<P>>();

  /** Sets when `peer` next needs attention; undefined: never, until scheduled again. */
  schedule(peer: P, rank: number, at: Millis | undefined): void {
    if (at === undefined) {
      this.live.delete(peer);
      return;
    }
    if (this.live.get(peer)?.at === at) return;
    const entry = { at, rank, peer };
    this.live.set(peer, entry);
    this.push(entry);
    // Stale entries leave when they reach the top; when they are most of the heap, drop them all at once, so the
    // heap stays within a small multiple of the peers however often they are rescheduled.
    if (this.heap.length > 2 * this.live.size + 64) this.rebuild();
  }

  private rebuild(): void {
    this.heap.length = 0;
    for (const entry of this.live.values()) this.push(entry);
  }

  /** The earliest time any peer needs attention. */
  peek(): Millis | undefined {
    return this.top()?.at;
  }

  /** The peer that needs attention first, and when (the lowest rank of those due at that time). */
  first(): { at: Millis; peer: P } | undefined {
    const e = this.top();
    return e && { at: e.at, peer: e.peer };
  }

  /** Removes and returns every peer due at `now`, in rank order. */
  takeDue(now: Millis): P[] {
    const due: Array<{ rank: number; peer: P }> = [];
    for (let e = this.top(); e && e.at <= now; e = this.top()) {
      this.pop();
      this.live.delete(e.peer);
      due.push(e);
    }
    return due.sort((a, b) => a.rank - b.rank).map((e) => e.peer);
  }

  /** The live entry on top, after discarding stale ones. */
  private top(): Entry<P> | undefined {
    for (let e = this.heap[0]; e; e = this.heap[0]) {
      if (this.live.get(e.peer) === e) return e;
      this.pop();
    }
    return undefined;
  }

  private push(entry: Entry<P>): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent] as Entry<P>)) break;
      heap[i] = heap[parent] as Entry<P>;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && before(heap[right] as Entry<P>, heap[left] as Entry<P>) ? right : left;
      if (!before(heap[child] as Entry<P>, last)) break;
      heap[i] = heap[child] as Entry<P>;
      i = child;
    }
    heap[i] = last;
  }
}

function before<P>(a: Entry<P>, b: Entry<P>): boolean {
  return a.at < b.at || (a.at === b.at && a.rank < b.rank);
}
