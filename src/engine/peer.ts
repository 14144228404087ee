import type { EngineConfig } from "./config.ts";
import { type RecvSnapshot, RecvStream } from "./recv-stream.ts";
import { RttEstimator } from "./rto.ts";
import { SendStream } from "./send-stream.ts";
import type { Address, MessageKind, Millis, MsgId, PeerId } from "./types.ts";

/** A message given up for lack of an answer, kept to be sent again when its recipient is heard from. */
export interface ParkedMessage {
  msgId: MsgId;
  kind: MessageKind;
  text: Uint8Array;
  sentAt: number;
  /** Position in the order messages were written (engine-wide). */
  order: number;
  /**
   * Queued to its recipients before (it failed and was parked, or the runtime re-sends it after a restart): a
   * recipient may hold it already, so its DATA says so (DataFlags.Resent) and the recipient checks its durable
   * delivery log, which a first sending never needs.
   */
  resent: boolean;
}

/** What survives a restart of one peer's state (the outbox, kept by the runtime, holds the rest). */
export interface PeerSnapshot {
  nextSeq: number;
  recv: RecvSnapshot | null;
  helloEpoch: number;
  helloTs: number;
  address: Address;
  srttMs: number | null;
  rttvarMs: number;
}

/** How many delivered msgIds each peer remembers in memory; older ones are checked in the DeliveryLog. */
const RECENT_DELIVERED_MAX = 1024;

export class PeerState {
  online = false;
  lastHeard: Millis | undefined;
  /** When an ACK last acknowledged a frame of ours: the proof that our direction of the link works. */
  lastAckedAt: Millis | undefined;
  /** When we sent the newest DATA the peer acknowledged on its first transmission: it heard from us then. */
  heardUsAt: Millis | undefined;
  readonly send: SendStream;
  recv: RecvStream | undefined;
  readonly rtt: RttEstimator;
  nextHelloAt: Millis;
  helloEpoch = 0;
  helloTs = 0;
  /** Messages waiting for the peer to be heard from (or, on probation, for its first ACK), in the order written. */
  parked: ParkedMessage[] = [];
  /** Probes sent since the peer was last heard from: each waits twice as long as the one before. */
  probes = 0;
  /**
   * Set when a frame to the peer was given up, cleared by its next ACK. While set, hearing the peer proves only
   * its direction of the link: one parked message goes first, the rest follow once it is acknowledged, so a
   * one-way link costs one message's tries per give-up, not the whole backlog's.
   */
  onProbation = false;
  private readonly recentDelivered = new Set<MsgId>();

  constructor(
    readonly id: PeerId,
    /** The order the peer was added in (0, 1, …): it breaks ties between peers due at the same time. */
    readonly rank: number,
    public address: Address,
    config: EngineConfig,
    now: Millis,
    snapshot?: PeerSnapshot,
  ) {
    this.rtt = new RttEstimator(config);
    this.send = new SendStream(snapshot?.nextSeq ?? 0);
    this.nextHelloAt = now;
    if (snapshot) {
      this.recv = snapshot.recv ? RecvStream.restore(snapshot.recv) : undefined;
      this.helloEpoch = snapshot.helloEpoch;
      this.helloTs = snapshot.helloTs;
      this.address = snapshot.address || address;
      this.rtt.srttMs = snapshot.srttMs ?? undefined;
      this.rtt.rttvarMs = snapshot.rttvarMs;
    }
  }

  snapshot(): PeerSnapshot {
    return {
      nextSeq: this.send.nextSeq,
      recv: this.recv ? this.recv.snapshot() : null,
      helloEpoch: this.helloEpoch,
      helloTs: this.helloTs,
      address: this.address,
      srttMs: this.rtt.srttMs ?? null,
      rttvarMs: this.rtt.rttvarMs,
    };
  }

  wasDelivered(msgId: MsgId): boolean {
    return this.recentDelivered.has(msgId);
  }

  rememberDelivered(msgId: MsgId): void {
    this.recentDelivered.add(msgId);
    if (this.recentDelivered.size > RECENT_DELIVERED_MAX) {
      const oldest = this.recentDelivered.values().next().value;
      if (oldest !== undefined) this.recentDelivered.delete(oldest);
    }
  }
}

/** Parses a saved PeerSnapshot, checking its shape; throws a TypeError for anything damaged. */
export function parsePeerSnapshot(json: string): PeerSnapshot {
  const value: unknown = JSON.parse(json);
  const fail = (what: string): never => {
    throw new TypeError(`peer state: ${what}`);
  };
  if (typeof value !== "object" || value === null) return fail("not an object");
  const s = value as Record<string, unknown>;
  const u32 = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 32;
  const count = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;
  if (!u32(s.nextSeq)) fail("nextSeq");
  if (!u32(s.helloEpoch) || !count(s.helloTs) || !count(s.rttvarMs)) fail("hello or rtt fields");
  if (typeof s.address !== "string") fail("address");
  if (s.srttMs !== null && !count(s.srttMs)) fail("srttMs");
  if (s.recv !== null) {
    const r = s.recv as Record<string, unknown> | undefined;
    if (typeof r !== "object" || !u32(r.epoch) || !u32(r.next) || !u32(r.floor)) fail("recv");
    if (!Array.isArray(r?.held) || !Array.isArray(r?.complete) || !Array.isArray(r?.rejects))
      fail("recv lists");
    if (r?.checksLog !== undefined && typeof r.checksLog !== "boolean") fail("recv checksLog");
  }
  return value as PeerSnapshot;
}
