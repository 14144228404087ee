/**
 * What one node holds about one peer's sessions: up to three keypairs, the handshake it is running, the datagrams
 * waiting for a session, and the clocks that decide when to retry, confirm, keep alive or erase.
 */
import type { Address, PeerId } from "../engine/types.ts";
import type { InitiatorHandshake } from "./handshake.ts";
import type { Keypair } from "./keypair.ts";
import type { SessionTiming } from "./timing.ts";

export interface SessionPeer {
  id: PeerId;
  /** The peer's pinned X25519 public key: its Noise static key. */
  staticKey: Uint8Array;
  /** Where to send; updated from authenticated datagrams (roaming). */
  address: Address;
}

export interface Pending {
  handshake: InitiatorHandshake;
  localIndex: number;
  /** When this attempt (its first initiation) began, for the give-up. */
  startedAt: number;
  tries: number;
  /** When this initiation was sent, and when the timer sends the next if nothing else does. */
  sentAt: number;
  retryAt: number;
}

export class PeerState {
  readonly peer: SessionPeer;
  current: Keypair | undefined;
  previous: Keypair | undefined;
  next: Keypair | undefined;
  pending: Pending | undefined;
  /** The attempt before `pending`: its response may still be on the way, and completes the handshake as well. */
  superseded: Pending | undefined;
  queue: Uint8Array[] = [];
  /** The newest initiation timestamp accepted from the peer: older or equal ones are replays. */
  timestampSeen = -1;
  timestampSent = -1;
  /** A responder waits until then for confirmation before initiating itself to send what it queued. */
  confirmBy: number | undefined;
  /** First data sent since the peer was last heard from (a restarted peer has lost the session). */
  unansweredSince: number | undefined;
  /** When to send a keepalive for data received and not yet answered by anything. */
  keepaliveAt: number | undefined;

  constructor(peer: SessionPeer) {
    this.peer = { ...peer, staticKey: new Uint8Array(peer.staticKey) };
  }

  /** The keypair to send under now, if any: confirmed, not too old, not worn out. */
  sendable(now: number, timing: SessionTiming): Keypair | undefined {
    const kp = this.current;
    if (!kp?.confirmed || kp.erased) return undefined;
    if (now - kp.createdAt >= timing.rejectAfterMs) return undefined;
    return kp.sendCounter < timing.rejectAfterMessages ? kp : undefined;
  }

  /** The earliest moment one of this peer's timers is due. */
  deadline(timing: SessionTiming): number | undefined {
    let next: number | undefined;
    const at = (t: number | undefined) => {
      if (t !== undefined && (next === undefined || t < next)) next = t;
    };
    if (this.pending) {
      at(this.pending.retryAt);
      at(this.pending.startedAt + timing.handshakeGiveUpMs);
    }
    at(this.previous?.eraseAt);
    at(this.keepaliveAt);
    if (this.current) at(this.current.createdAt + timing.rejectAfterMs);
    if (this.next) at(this.next.createdAt + timing.rejectAfterMs);
    if (this.queue.length > 0 && !this.pending) at(this.confirmBy);
    if (this.unansweredSince !== undefined && !this.pending)
      at(this.unansweredSince + timing.silenceBeforeRehandshakeMs);
    return next;
  }
}

/** Whether a keypair in use should be replaced by a new handshake. */
export function wantsRekey(kp: Keypair, now: number, timing: SessionTiming): boolean {
  if (kp.sendCounter >= timing.rekeyAfterMessages) return true;
  // The initiator rekeys on age; the responder only later, should the initiator have gone quiet, so that the
  // two do not both start a handshake at the same moment.
  const age = now - kp.createdAt;
  return kp.initiator ? age >= timing.rekeyAfterMs : age >= (timing.rekeyAfterMs + timing.rejectAfterMs) / 2;
}

/** The pinned peers, by id and by static key. */
export class PeerTable {
  private readonly byId = new Map<PeerId, PeerState>();
  private readonly byStaticKey = new Map<string, PeerState>();

  get(peer: PeerId): PeerState | undefined {
    return this.byId.get(peer);
  }

  byKey(staticKey: Uint8Array): PeerState | undefined {
    return this.byStaticKey.get(hex(staticKey));
  }

  all(): IterableIterator<PeerState> {
    return this.byId.values();
  }

  /**
   * Takes the pinned peers as they are now: a new one is added; a removed one, or one whose static key changed,
   * is `dropped` (a new key must handshake afresh); an address is only a hint, taken while no session exists.
   */
  set(peers: readonly SessionPeer[], dropped: (s: PeerState) => void): void {
    const next = new Map(peers.map((p) => [p.id, p]));
    for (const [id, s] of this.byId) {
      const p = next.get(id);
      if (p && hex(p.staticKey) === hex(s.peer.staticKey)) {
        if (!s.current && !s.pending && !s.next) s.peer.address = p.address;
        continue;
      }
      dropped(s);
      this.byId.delete(id);
      this.byStaticKey.delete(hex(s.peer.staticKey));
    }
    for (const p of peers) {
      if (this.byId.has(p.id)) continue;
      const state = new PeerState(p);
      this.byId.set(p.id, state);
      this.byStaticKey.set(hex(p.staticKey), state);
    }
  }
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++)
    if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}
