/**
 * The fault model: what may happen to a datagram, with every probability an integer per million (ppm.ts), decided
 * from an injected Rng so that a seeded run replays exactly. The simulator's links (sim/network.ts), the chaos proxy
 * (src/chaos) and the node's fault flags (src/node/faulty-socket.ts, faulty-crypto.ts) all use these types and
 * decisions.
 */
import type { Rng } from "../engine/ports.ts";
import { below } from "./ppm.ts";

/** The faults of one direction of a link, as a network could make them. */
export interface LinkFaults {
  /** Datagrams dropped. */
  lossPpm: number;
  /** Datagrams sent twice, each copy with its own delay (so copies may also be reordered). */
  duplicatePpm: number;
  /** Datagrams with a few distinct bits flipped. */
  corruptPpm: number;
  /** Every datagram is held this long... */
  delayMs: number;
  /** ...plus a uniform random extra in [0, jitterMs): wider than the gap between datagrams, they reorder. */
  jitterMs: number;
}

export const NO_LINK_FAULTS: LinkFaults = {
  lossPpm: 0,
  duplicatePpm: 0,
  corruptPpm: 0,
  delayMs: 0,
  jitterMs: 0,
};

/** How long to hold one copy. Draws once even without jitter, so that adding jitter shifts no other decision. */
export function delayOf(rng: Rng, faults: Pick<LinkFaults, "delayMs" | "jitterMs">): number {
  return faults.delayMs + below(rng, faults.jitterMs);
}

/**
 * A copy of `bytes` with 1..bitsMax bits flipped, at distinct positions so that two flips never cancel out and
 * every corrupted copy really differs. The input is untouched: a sender keeps and re-sends the same buffer.
 */
export function flipBits(rng: Rng, bytes: Uint8Array, bitsMax: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  if (out.length === 0) return out;
  const flips = Math.min(1 + below(rng, Math.max(1, bitsMax)), out.length * 8);
  const bits = new Set<number>();
  while (bits.size < flips) bits.add(below(rng, out.length * 8));
  for (const bit of bits) out[bit >>> 3] = (out[bit >>> 3] as number) ^ (1 << (bit & 7));
  return out;
}

/** `bytes` cut to a random length in [0, length). */
export function truncate(rng: Rng, bytes: Uint8Array): Uint8Array {
  if (bytes.length === 0) return bytes;
  return bytes.slice(0, below(rng, bytes.length));
}

/** The faults a running node injects on its own socket and crypto (the --loss … flags, the /fault command). */
export interface FaultConfig extends Pick<LinkFaults, "duplicatePpm" | "delayMs" | "jitterMs"> {
  /** Outgoing datagrams dropped. */
  lossOutPpm: number;
  /** Incoming datagrams dropped. */
  lossInPpm: number;
  /** DATA and BATCH datagrams only are duplicated (the same msgIds and seqs: the receiver must ignore the copies). */
  duplicatePpm: number;
  /** Outgoing DATA and BATCH datagrams whose signature gets one bit flipped. */
  badSignaturePpm: number;
  /** Private messages sealed to a key that is not the recipient's. */
  wrongKeyPpm: number;
  /** Drop everything, both ways. */
  blackhole: boolean;
}

export const NO_FAULTS: FaultConfig = {
  lossOutPpm: 0,
  lossInPpm: 0,
  duplicatePpm: 0,
  badSignaturePpm: 0,
  wrongKeyPpm: 0,
  delayMs: 0,
  jitterMs: 0,
  blackhole: false,
};

export interface FaultCounters {
  droppedOut: number;
  droppedIn: number;
  /** Frames duplicated (a BATCH's count for a BATCH): what the receiver counts as copies ignored. */
  duplicated: number;
  badSignatures: number;
  wrongKeys: number;
  delayed: number;
  blackholed: number;
}

export function newFaultCounters(): FaultCounters {
  return {
    droppedOut: 0,
    droppedIn: 0,
    duplicated: 0,
    badSignatures: 0,
    wrongKeys: 0,
    delayed: 0,
    blackholed: 0,
  };
}
