/**
 * The simulator's virtual network. Datagrams wait in a priority queue ordered by delivery time; every fault
 * (loss, duplication, delay and jitter, bit flips, partitions, blackhole) is decided per link, at the moment a
 * datagram is handed over, from one seeded generator with integer per-million probabilities, so that a seed
 * replays exactly. Nodes are indices 0..size-1; the cluster maps addresses to indices.
 */
import { delayOf, flipBits, type LinkFaults } from "../src/faults/plan.ts";
import type { SeededRng } from "../src/faults/seeded-rng.ts";

/** The faults of one directed link: the shared fault model's, with a corrupted datagram getting 1 to 3 bits. */
export type LinkProfile = LinkFaults;
const CORRUPT_BITS_MAX = 3;

export const FAULT_KINDS = [
  "loss",
  "partition",
  "blackhole",
  "duplicate",
  "corrupt",
  "reorder",
  /** In flight to a node when it crashed. */
  "crash-drop",
  /** Arrived while the node was down. */
  "down-drop",
  /** Addressed to an address no node has. */
  "no-route",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type FaultCounts = Record<FaultKind, number>;

export function zeroFaults(): FaultCounts {
  const out = {} as FaultCounts;
  for (const k of FAULT_KINDS) out[k] = 0;
  return out;
}

export interface Datagram {
  at: number;
  /** Tie-break for equal delivery times: the order datagrams were scheduled in, so the heap is deterministic. */
  order: number;
  from: number;
  to: number;
  bytes: Uint8Array;
  /** Position among the datagrams handed to this link: a delivery below the link's highest so far is reordered. */
  linkSeq: number;
}

export class VirtualNetwork {
  private readonly heap: Datagram[] = [];
  private order = 0;
  /** How many active partitions cut each directed link (from * size + to); they may overlap. */
  private readonly cuts: Uint16Array;
  private blackholes = 0;
  /** After heal(): no loss, no corruption, no partitions; delay, jitter and duplication stay (they are harmless). */
  private healed = false;
  private readonly linkSent: Uint32Array;
  private readonly linkHighest: Int32Array;
  readonly faults: FaultCounts = zeroFaults();
  datagramsSent = 0;
  datagramsDelivered = 0;

  constructor(
    private readonly rng: SeededRng,
    readonly size: number,
    private readonly links: readonly LinkProfile[],
  ) {
    if (links.length !== size * size) throw new RangeError(`need ${size * size} link profiles`);
    this.cuts = new Uint16Array(size * size);
    this.linkSent = new Uint32Array(size * size);
    this.linkHighest = new Int32Array(size * size).fill(-1);
  }

  link(from: number, to: number): LinkProfile {
    const profile = this.links[from * this.size + to];
    if (!profile) throw new RangeError(`no link ${from}->${to}`);
    return profile;
  }

  /** Hands a datagram to the network at `now`; it may be dropped, corrupted, delayed or duplicated. */
  send(now: number, from: number, to: number, bytes: Uint8Array): void {
    this.datagramsSent++;
    const link = from * this.size + to;
    const linkSeq = this.linkSent[link] ?? 0;
    this.linkSent[link] = linkSeq + 1;
    if (this.blackholes > 0) {
      this.faults.blackhole++;
      return;
    }
    if ((this.cuts[link] ?? 0) > 0) {
      this.faults.partition++;
      return;
    }
    const profile = this.link(from, to);
    if (!this.healed && this.rng.chance(profile.lossPpm)) {
      this.faults.loss++;
      return;
    }
    this.schedule(now, from, to, bytes, linkSeq, profile);
    if (this.rng.chance(profile.duplicatePpm)) {
      this.faults.duplicate++;
      this.schedule(now, from, to, bytes, linkSeq, profile);
    }
  }

  private schedule(
    now: number,
    from: number,
    to: number,
    bytes: Uint8Array,
    linkSeq: number,
    profile: LinkProfile,
  ): void {
    const corrupt = !this.healed && bytes.length > 0 && this.rng.chance(profile.corruptPpm);
    if (corrupt) this.faults.corrupt++;
    // A copy either way, as a real network makes: the engine keeps and re-sends the same buffer.
    const copy = corrupt ? flipBits(this.rng, bytes, CORRUPT_BITS_MAX) : bytes.slice();
    const delay = delayOf(this.rng, profile);
    this.push({ at: now + delay, order: this.order++, from, to, bytes: copy, linkSeq });
  }

  /** When the next datagram arrives, if any is in flight. */
  nextAt(): number | undefined {
    return this.heap[0]?.at;
  }

  /** Takes the next datagram off the queue (the caller delivers it, or counts it dropped if its node is down). */
  pop(): Datagram | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    const last = this.heap.pop() as Datagram;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    const link = top.from * this.size + top.to;
    const highest = this.linkHighest[link] ?? -1;
    if (top.linkSeq < highest) this.faults.reorder++;
    else this.linkHighest[link] = top.linkSeq;
    return top;
  }

  noteDropped(kind: FaultKind): void {
    this.faults[kind]++;
  }

  /** A crash: every datagram in flight to `node` is gone with it. */
  dropInFlightTo(node: number): void {
    const kept = this.heap.filter((d) => d.to !== node);
    this.faults["crash-drop"] += this.heap.length - kept.length;
    this.heap.length = 0;
    for (const d of kept) this.push(d);
  }

  /** Cuts the links from every node in `a` to every node in `b` (and back unless `oneWay`). Undo with `join`. */
  split(a: readonly number[], b: readonly number[], oneWay: boolean): void {
    this.adjustCuts(a, b, oneWay, 1);
  }

  join(a: readonly number[], b: readonly number[], oneWay: boolean): void {
    this.adjustCuts(a, b, oneWay, -1);
  }

  private adjustCuts(a: readonly number[], b: readonly number[], oneWay: boolean, by: 1 | -1): void {
    for (const x of a) {
      for (const y of b) {
        this.cuts[x * this.size + y] = Math.max(0, (this.cuts[x * this.size + y] ?? 0) + by);
        if (!oneWay) this.cuts[y * this.size + x] = Math.max(0, (this.cuts[y * this.size + x] ?? 0) + by);
      }
    }
  }

  startBlackhole(): void {
    this.blackholes++;
  }

  endBlackhole(): void {
    this.blackholes = Math.max(0, this.blackholes - 1);
  }

  /** The liveness phase: every partition and blackhole ends, and nothing more is lost or corrupted. */
  heal(): void {
    this.cuts.fill(0);
    this.blackholes = 0;
    this.healed = true;
  }

  inFlight(): number {
    return this.heap.length;
  }

  private push(d: Datagram): void {
    this.heap.push(d);
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      if (!before(d, this.heap[parent] as Datagram)) break;
      this.heap[i] = this.heap[parent] as Datagram;
      i = parent;
    }
    this.heap[i] = d;
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    const d = heap[start] as Datagram;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && before(heap[right] as Datagram, heap[left] as Datagram) ? right : left;
      if (!before(heap[child] as Datagram, d)) break;
      heap[i] = heap[child] as Datagram;
      i = child;
    }
    heap[i] = d;
  }
}

function before(a: Datagram, b: Datagram): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}
