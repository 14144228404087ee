/**
 * The node's UDP socket with fault injection on the way out and in. Decisions come from the injected Rng; every
 * injected fault is counted. Without faults configured it is a plain pass-through: a rate of 0 draws nothing, as
 * the node's Rng is the crypto one and its draws need not line up for a replay.
 */
import type { Socket } from "node:dgram";
import type { Rng } from "../engine/ports.ts";
import { SIGNATURE_BYTES } from "../engine/types.ts";
import { BATCH_COUNT_AT, PacketType, packetTypeOf } from "../engine/wire.ts";
import { delayOf, type FaultConfig, type FaultCounters } from "../faults/plan.ts";
import { below, chance } from "../faults/ppm.ts";
import { parseAddress } from "./address.ts";

export class FaultySocket {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly faults: () => FaultConfig,
    private readonly rng: Rng,
    readonly counters: FaultCounters,
  ) {}

  /** Whether an incoming datagram survives the incoming faults. */
  admit(): boolean {
    const f = this.faults();
    if (f.blackhole) {
      this.counters.blackholed++;
      return false;
    }
    if (f.lossInPpm > 0 && chance(this.rng, f.lossInPpm)) {
      this.counters.droppedIn++;
      return false;
    }
    return true;
  }

  /**
   * The engine-level faults, on an engine datagram before its session seals it: a DATA (or BATCH) copy with a bit
   * of its signature flipped, or one sent twice. Returns the datagrams to seal (the engine keeps the good bytes for its
   * retransmits). Below the session they could not be made: the session would refuse them before the engine.
   */
  tamper(bytes: Uint8Array): Uint8Array[] {
    const f = this.faults();
    const type = packetTypeOf(bytes);
    // DATA and BATCH both end with their author's signature.
    if (type !== PacketType.Data && type !== PacketType.Batch) return [bytes];
    let out = bytes;
    if (f.badSignaturePpm > 0 && chance(this.rng, f.badSignaturePpm)) {
      out = Uint8Array.from(bytes);
      const bit = below(this.rng, SIGNATURE_BYTES * 8);
      const index = out.length - SIGNATURE_BYTES + (bit >>> 3);
      out[index] = (out[index] as number) ^ (1 << (bit & 7));
      this.counters.badSignatures++;
    }
    if (f.duplicatePpm > 0 && chance(this.rng, f.duplicatePpm)) {
      // Counted in frames, as the receiver counts the copies it ignores: a BATCH holds several.
      this.counters.duplicated += type === PacketType.Batch ? (bytes[BATCH_COUNT_AT] as number) : 1;
      return [out, out];
    }
    return [out];
  }

  /** The network's faults on a datagram as it leaves: blackhole, loss, delay (and with jitter, reordering). */
  send(to: string, bytes: Uint8Array): void {
    const f = this.faults();
    if (f.blackhole) {
      this.counters.blackholed++;
      return;
    }
    if (f.lossOutPpm > 0 && chance(this.rng, f.lossOutPpm)) {
      this.counters.droppedOut++;
      return;
    }
    const delay = f.jitterMs > 0 ? delayOf(this.rng, f) : f.delayMs;
    if (delay > 0) this.later(delay, to, bytes);
    else this.transmit(to, bytes);
  }

  private later(delayMs: number, to: string, bytes: Uint8Array): void {
    this.counters.delayed++;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.transmit(to, bytes);
    }, delayMs);
    this.timers.add(timer);
  }

  private transmit(to: string, bytes: Uint8Array): void {
    if (this.closed) return;
    const { host, port } = parseAddress(to);
    // A send error (unreachable network, a peer's port closed) is a lost datagram to us: retransmission handles it.
    // No callback: it would cost a tick per datagram; errors go to the socket's 'error' handler, which ignores them.
    this.socket.send(bytes, port, host);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
