/**
 * The pump: what runs after every engine call, in the order that makes a crash lose nothing and show nothing twice.
 * Events, dirty peer state and the messages just written commit in one store transaction; only then are they
 * reported, and only then do datagrams (ACKs among them) leave. Sans-IO (no node:* imports, the clock injected) so
 * that ChatNode and the simulator run this same code.
 */
import type { Engine } from "../engine/engine.ts";
import type { EngineEvent } from "../engine/events.ts";
import type { Address, PeerId } from "../engine/types.ts";
import type { OutgoingMessage, Store } from "../storage/store.ts";

export interface CommittedEvent {
  event: EngineEvent;
  /** False for a message the store already held: it must not be shown again. */
  fresh: boolean;
}

export interface PumpOutput {
  /** After the commit, before any datagram leaves: the messages written to the outbox, then every event. */
  committed(queued: readonly OutgoingMessage[], events: readonly CommittedEvent[]): void;
  /** A datagram for `peer`, at the address the engine has for it. */
  transmit(to: Address, bytes: Uint8Array, peer: PeerId): void;
}

export class EnginePump {
  /** Messages sent since the last flush, written to the outbox by the next one (group commit). */
  private readonly outbox: OutgoingMessage[] = [];

  constructor(
    private readonly engine: Engine,
    private readonly store: Store,
    private readonly now: () => number,
    private readonly output: PumpOutput,
  ) {}

  /** Queues a message the engine was just given; it is stored before any datagram of it leaves. */
  queueOutgoing(message: OutgoingMessage): void {
    this.outbox.push(message);
  }

  /** Persist, then report, then transmit. The order is the durability guarantee. */
  flush(): void {
    const engine = this.engine;
    const events: EngineEvent[] = [];
    for (let e = engine.pollEvent(); e; e = engine.pollEvent()) events.push(e);
    const dirty = engine.drainDirtyState();
    const queued = this.outbox.splice(0);
    let committed: CommittedEvent[] = [];
    try {
      if (events.length > 0 || dirty.length > 0 || queued.length > 0)
        committed = this.store.transaction(() => {
          for (const m of queued) this.store.addOutgoing(m);
          const out = events.map((event) => ({ event, fresh: this.persist(event) }));
          for (const [peer, snapshot] of dirty) this.store.savePeerState(peer, JSON.stringify(snapshot));
          return out;
        });
    } catch (error) {
      // Nothing was written and nothing sent: the next flush writes these outbox rows before any datagram leaves.
      this.outbox.unshift(...queued);
      throw error;
    }
    this.output.committed(queued, committed);
    for (let t = engine.pollTransmit(); t; t = engine.pollTransmit())
      this.output.transmit(t.to, t.bytes, t.peer);
  }

  /** Writes what an event changes; false for an event that must not be reported (a message already stored). */
  private persist(e: EngineEvent): boolean {
    const now = this.now();
    switch (e.type) {
      case "message":
        return this.store.addReceived({
          msgId: e.msgId,
          from: e.from,
          kind: e.kind,
          text: e.text,
          sentAt: e.sentAt,
          receivedAt: now,
        });
      case "delivered":
        this.store.setRecipientState(e.msgId, e.to, "delivered", now);
        return true;
      case "failed":
        this.store.setRecipientState(e.msgId, e.to, "failed", now, e.detail);
        return true;
      case "peer-online":
        this.store.upsertPeer({ id: e.peer, address: e.address, lastSeen: now });
        return true;
      default:
        return true;
    }
  }
}
