/**
 * What the engine's parts share: its configuration and injected ports, its counters, the queues of events and
 * datagrams it hands to the runtime, and the sets that say which peers changed. The sender (sender.ts), the
 * receiver (receiver.ts) and presence (presence.ts) each hold this one object; engine.ts creates it and routes
 * calls to them, so no part reaches into another's state except through these.
 */
import type { EngineConfig } from "./config.ts";
import type { EngineEvent, RejectReason } from "./events.ts";
import type { PeerState } from "./peer.ts";
import type { CryptoPort, DeliveryLog, Rng } from "./ports.ts";
import type { OutFrame } from "./send-stream.ts";
import type { EngineStats } from "./stats.ts";
import { type Address, fromHex, type MsgId, type PeerId } from "./types.ts";

/** A datagram waiting for pollTransmit(): its bytes, or the frame whose bytes its batch signature will make. */
export type QueuedTransmit =
  | { to: Address; peer: PeerId; bytes: Uint8Array; frame?: undefined }
  | {
      to: Address;
      peer: PeerId;
      frame: OutFrame;
      /** Which try of the frame this is (1: its first transmission). */
      tries: number;
      /** Already sent, inside the BATCH of an earlier frame of its batch (engine.ts, takeBatch). */
      carried?: boolean;
    };

export class EngineContext {
  /** Every peer in the directory, in the order they were added. */
  readonly peers = new Map<PeerId, PeerState>();
  readonly transmits: QueuedTransmit[] = [];
  readonly events: EngineEvent[] = [];
  readonly dirty = new Set<PeerId>();
  /**
   * Peers whose timers may have moved since the wake queue last heard of them: every call that changes a peer's
   * state lists it here, and the queue is brought up to date before it is read. So no call walks every peer.
   */
  readonly touched = new Set<PeerState>();
  /** Peers with an ACK to send at the next flush. */
  readonly acksOwed = new Set<PeerState>();

  constructor(
    readonly config: EngineConfig,
    readonly selfId: PeerId,
    readonly epoch: number,
    readonly crypto: CryptoPort,
    readonly rng: Rng,
    readonly deliveryLog: DeliveryLog,
    readonly counters: EngineStats,
  ) {}

  emitDatagram(peer: { id: PeerId; address: Address }, bytes: Uint8Array): void {
    this.counters.datagramsOut++;
    this.transmits.push({ to: peer.address, peer: peer.id, bytes });
  }

  unitRandom(): number {
    return this.rng.nextU32() / 2 ** 32;
  }

  reject(reason: RejectReason, address: Address, from?: PeerId): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1;
    this.events.push(
      from ? { type: "rejected", reason, from, address } : { type: "rejected", reason, address },
    );
  }
}

/** The additional data a private message's seal binds: author, recipient and msgId, so it cannot be moved. */
export function privateAad(sender: PeerId, recipient: PeerId, msgId: MsgId): Uint8Array {
  return fromHex(sender + recipient + msgId);
}
