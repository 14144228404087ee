/**
 * The simulator's adversary, for the seeds that have one (about one in four with three nodes or more). It is two
 * attackers at once:
 *
 *  - a network attacker who sees every (sealed) datagram and replays any of them later, to its recipient, from its
 *    sender's address: below the receiver's floor, after crashes and restarts, in any order;
 *  - mallory, a registered peer (the highest node index; its engine runs honestly but it writes no message) who
 *    holds its own valid keys and lies with them through its own sessions: fragments with an index beyond their
 *    count, fragments that disagree on their message, ACKs for another epoch; and who also holds one victim link's
 *    session keys (a→b, two honest nodes) but not a's signing key, so it sends b a's DATA with altered text
 *    under that link's session.
 *
 * (An engine datagram names no sender: its session does. So mallory cannot even write an ACK "in another node's
 * name" through its own session; earlier protocol versions needed an attack for that.)
 *
 * Nothing here must ever be accepted: the checker's invariants (I1 integrity, I2 once, I3 authentic, I6 acked)
 * flag a delivery or an acknowledgement any of it caused. Lies that a key holder may legitimately tell (a new
 * message of its own, an ACK of its own current stream) are not sent: they are not attacks on the protocol.
 */
import type { BatchProof, CryptoPort } from "../src/engine/ports.ts";
import type { MsgId, PeerId } from "../src/engine/types.ts";
import {
  type BatchPacket,
  type DataPacket,
  dataSignedBytes,
  decode,
  encodeAck,
  encodeBatch,
  encodeData,
  PacketType,
  packetTypeOf,
} from "../src/engine/wire.ts";
import type { SeededRng } from "../src/faults/seeded-rng.ts";

export const ATTACKS = [
  "replay",
  "fragment-beyond-count",
  "inconsistent-fragments",
  "stale-epoch-ack",
  "altered-in-victim-session",
] as const;
export type Attack = (typeof ATTACKS)[number];

/** What the adversary needs from the cluster: sending, the nodes' keys and state. */
export interface AdversaryWorld {
  size: number;
  /** A datagram onto the network as it is (a replay of sealed bytes). */
  send(from: number, to: number, bytes: Uint8Array): void;
  /** An engine datagram sealed under `from`'s session with `to`. */
  sendInner(from: number, to: number, bytes: Uint8Array): void;
  idOf(index: number): PeerId;
  epochOf(index: number): number;
  /** The next seq `sender` will use toward `receiver`, as its persisted state says (an observer can infer it). */
  nextSeqOf(sender: number, receiver: number): number;
  /** A crypto port with `index`'s keys. */
  cryptoOf(index: number): CryptoPort;
}

/** Datagrams kept for replay: enough to reach back across crashes, small enough to stay cheap. */
const SEEN_MAX = 4096;
const VICTIM_DATA_MAX = 256;

export class Adversary {
  readonly counts: Record<Attack, number> = Object.fromEntries(ATTACKS.map((a) => [a, 0])) as Record<
    Attack,
    number
  >;
  private readonly seen: { from: number; to: number; bytes: Uint8Array }[] = [];
  private seenNext = 0;
  private readonly mallory: number;
  private readonly malloryCrypto: CryptoPort;
  /** The victim link a→b whose session keys mallory holds (not a's signing key). */
  private readonly victim: { a: number; b: number };
  /** mallory's own seqs for its lies, toward each node: its engine sends no DATA, so they collide with nothing. */
  private readonly lieSeq = new Map<number, number>();
  private lies = 0;
  /** The victim link's DATA and BATCH datagrams, decoded, newest last. */
  private readonly victimData: DataPacket[] = [];
  private readonly victimBatches: BatchPacket[] = [];

  constructor(
    private readonly world: AdversaryWorld,
    private readonly rng: SeededRng,
  ) {
    this.mallory = world.size - 1;
    this.malloryCrypto = world.cryptoOf(this.mallory);
    const a = rng.below(world.size - 1);
    const b = (a + 1 + rng.below(world.size - 2)) % (world.size - 1);
    this.victim = { a, b };
  }

  /** The node that writes no message of its own. */
  get malloryIndex(): number {
    return this.mallory;
  }

  /** Every engine datagram passes here before its session seals it; mallory reads the victim link's. */
  observeInner(from: number, to: number, bytes: Uint8Array): void {
    if (from !== this.victim.a || to !== this.victim.b || !isData(bytes)) return;
    const decoded = decode(bytes);
    if (!decoded.ok) return;
    const kept = decoded.packet.type === PacketType.Data ? this.victimData : this.victimBatches;
    if (decoded.packet.type === PacketType.Data) this.victimData.push(decoded.packet);
    else if (decoded.packet.type === PacketType.Batch) this.victimBatches.push(decoded.packet);
    if (kept.length > VICTIM_DATA_MAX) kept.shift();
  }

  /** Every datagram handed to the network passes here first, for replays. */
  observe(from: number, to: number, bytes: Uint8Array): void {
    const entry = { from, to, bytes };
    if (this.seen.length < SEEN_MAX) this.seen.push(entry);
    else this.seen[this.seenNext] = entry;
    this.seenNext = (this.seenNext + 1) % SEEN_MAX;
  }

  /** One attack, chosen at random. */
  attack(): void {
    const kind = ATTACKS[this.rng.below(ATTACKS.length)] as Attack;
    if (this.run(kind)) this.counts[kind]++;
  }

  private run(kind: Attack): boolean {
    switch (kind) {
      case "replay": {
        const old = this.seen[this.rng.below(Math.max(1, this.seen.length))];
        if (!old) return false;
        this.world.send(old.from, old.to, old.bytes);
        return true;
      }
      case "fragment-beyond-count":
        return this.lie((seq) => [{ seq, fragIndex: 1, fragCount: 1 }]);
      case "inconsistent-fragments":
        return this.lie((seq) => [
          { seq, fragIndex: 0, fragCount: 2 },
          { seq: seq + 1, fragIndex: 1, fragCount: 2, otherMessage: true },
        ]);
      case "stale-epoch-ack": {
        const x = this.rng.below(this.world.size - 1);
        const epoch = this.world.epochOf(x);
        if (epoch <= 1) return false;
        // Everything x ever sent mallory, acknowledged under x's previous epoch: x must not believe a word.
        const next = this.world.nextSeqOf(x, this.mallory);
        const ack = encodeAck({ epoch: epoch - 1, next, ranges: [], rejects: [] });
        this.world.sendInner(this.mallory, x, ack);
        return true;
      }
      case "altered-in-victim-session": {
        const { a } = this.victim;
        if (this.victimBatches.length > 0 && this.rng.chance(300_000)) return this.alterBatch(a);
        const data = this.victimData;
        // A later fragment when there is one: each fragment's proof must be checked, not only the first's.
        const later = data.filter((p) => p.fragIndex > 0);
        const pool = later.length > 0 && this.rng.chance(500_000) ? later : data;
        const p = pool[this.rng.below(Math.max(1, pool.length))];
        if (!p) return false;
        if (p.payload.length === 0) return false;
        const payload = Uint8Array.from(p.payload);
        const at = this.rng.below(payload.length);
        payload[at] = (payload[at] as number) ^ (1 + this.rng.below(255));
        const bytes = encodeData({ ...p, payload }, p.proof);
        this.world.sendInner(a, this.victim.b, bytes);
        return true;
      }
    }
  }

  /** One of a's BATCH datagrams to b with a frame's text altered, sealed under that link's session. */
  private alterBatch(a: number): boolean {
    const p = this.victimBatches[this.rng.below(this.victimBatches.length)] as BatchPacket;
    const at = this.rng.below(p.frames.length);
    const frames = p.frames.map((f, i) => {
      if (i !== at || f.payload.length === 0) return f;
      const payload = Uint8Array.from(f.payload);
      const byte = this.rng.below(payload.length);
      payload[byte] = (payload[byte] as number) ^ (1 + this.rng.below(255));
      return { ...f, payload };
    });
    this.world.sendInner(a, this.victim.b, encodeBatch(p, frames, p.signature));
    return true;
  }

  /** DATA from mallory, validly sealed and signed, whose fragments are malformed in the way `frames` says. */
  private lie(
    frames: (seq: number) => { seq: number; fragIndex: number; fragCount: number; otherMessage?: boolean }[],
  ): boolean {
    const to = this.rng.below(this.world.size - 1);
    const start = this.lieSeq.get(to) ?? 0;
    const plan = frames(start);
    this.lieSeq.set(to, start + plan.length);
    const msgId = (n: number) => `ad${String(++this.lies + n).padStart(30, "0")}` as MsgId;
    const first = msgId(0);
    for (const f of plan) {
      const fields = {
        epoch: this.world.epochOf(this.mallory),
        seq: f.seq,
        floor: 0,
        flags: 0,
        fragIndex: f.fragIndex,
        fragCount: f.fragCount,
        msgId: f.otherMessage ? msgId(1) : first,
        payload: new TextEncoder().encode("a lie"),
      };
      const author = this.world.idOf(this.mallory);
      const [proof] = this.malloryCrypto.signBatch([dataSignedBytes(author, fields)]) as [BatchProof];
      const bytes = encodeData(fields, proof);
      this.world.sendInner(this.mallory, to, bytes);
    }
    return true;
  }
}

function isData(bytes: Uint8Array): boolean {
  const type = packetTypeOf(bytes);
  return type === PacketType.Data || type === PacketType.Batch;
}
