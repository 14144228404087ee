/**
 * Every session of one node, sans-IO: plaintext datagrams in (`send`) and out (`receive`), session datagrams out
 * (`pollTransmit`), `now` on every call and `pollTimeout()` to say when to call back, as the engine does. Beneath
 * the engine it is a tunnel: whatever the engine sends a peer is sealed under that pair's current session; a
 * datagram for a peer without one waits (boundedly) while the handshake runs.
 *
 * Per peer there are at most three keypairs: `current` (sends), `previous` (still opens late datagrams for a grace
 * window after a rekey, then is erased) and `next` (a responder's, until the initiator's first datagram confirms
 * it, so that a replayed initiation cannot displace a working session). State exists only for pinned peers: an
 * initiation is read, and answered, only if its static key is one of them, so spoofed floods allocate nothing
 * here (the runtime's admission control bounds the CPU they cost before that).
 */
import type { KeyPair } from "noise-handshake";
import type { Address, PeerId } from "../engine/types.ts";
import { newSessionStats, type SessionEvent, type SessionRefusal, type SessionStats } from "./events.ts";
import { InitiatorHandshake, ResponderHandshake } from "./handshake.ts";
import type { HandshakeMemory } from "./key-source.ts";
import { freshIndex, Keypair } from "./keypair.ts";
import {
  compareBytes,
  type PeerState,
  PeerTable,
  type Pending,
  type SessionPeer,
  wantsRekey,
} from "./peer-state.ts";
import { DEFAULT_TIMING, retryDelayMs, type SessionTiming } from "./timing.ts";
import {
  decodeSessionPacket,
  encodeInitiation,
  encodeResponse,
  encodeTransport,
  type InitiationPacket,
  type ResponsePacket,
  readTimestamp,
  SessionPacketType,
  type TransportPacket,
  transportHeader,
  writeTimestamp,
} from "./wire.ts";

type IndexEntry = { state: PeerState; keypair: Keypair | undefined };

export class Sessions {
  private readonly peers = new PeerTable();
  private readonly byIndex = new Map<number, IndexEntry>();
  private readonly transmits: { to: Address; bytes: Uint8Array }[] = [];
  private readonly events: SessionEvent[] = [];
  private readonly counters: SessionStats = newSessionStats();

  constructor(
    private readonly local: KeyPair,
    peers: readonly SessionPeer[],
    /** Ephemeral secrets, indices and jitter: crypto-grade in the runtime, seeded in the simulator. */
    private readonly random: (length: number) => Uint8Array,
    private readonly timing: SessionTiming = DEFAULT_TIMING,
    /** Where the newest accepted initiation timestamps outlive a restart (the runtime's store); none: memory only. */
    private readonly memory?: HandshakeMemory,
  ) {
    this.peers.set(peers, () => {});
  }

  /** Seals `plaintext` for `peer`, or holds it until a session exists (starting the handshake). */
  send(now: number, peer: PeerId, plaintext: Uint8Array): void {
    const s = this.peers.get(peer);
    // A contact without a pinned key (or removed a moment ago) has no session to send under.
    if (!s) return void this.counters.noSessionPeer++;
    const kp = s.sendable(now, this.timing);
    if (kp) {
      this.seal(s, kp, plaintext, now);
      if (!s.pending && wantsRekey(kp, now, this.timing)) this.initiate(s, now, 0, now);
      else this.retryIfDue(s, now);
      return;
    }
    s.queue.push(plaintext);
    if (s.queue.length > this.timing.queueMax) {
      s.queue.shift();
      this.counters.queueDropped++;
    }
    // A responder whose session awaits confirmation gives the initiator a moment before initiating itself.
    if (s.next && s.confirmBy !== undefined && now < s.confirmBy) return;
    if (!s.pending) this.initiate(s, now, 0, now);
    else this.retryIfDue(s, now);
  }

  /** A datagram from `from`: the plaintext it carries for the engine, or undefined (handled, or refused). */
  receive(
    now: number,
    from: Address,
    bytes: Uint8Array,
  ): { peer: PeerId; plaintext: Uint8Array } | undefined {
    const decoded = decodeSessionPacket(bytes, this.local.publicKey);
    if (!decoded.ok) return this.refuse(from, decoded.reason);
    const packet = decoded.packet;
    switch (packet.type) {
      case SessionPacketType.Initiation:
        return this.onInitiation(now, from, packet);
      case SessionPacketType.Response:
        return this.onResponse(now, from, packet);
      case SessionPacketType.Transport:
        return this.onTransport(now, from, packet);
    }
  }

  handleTimeout(now: number): void {
    for (const s of this.peers.all()) {
      const p = s.pending;
      if (p && now - p.startedAt >= this.timing.handshakeGiveUpMs) {
        this.dropPending(s);
        const dropped = s.queue.length;
        s.queue = [];
        s.unansweredSince = undefined;
        this.events.push({ type: "gave-up", peer: s.peer.id, dropped });
      } else if (p && now >= p.retryAt) {
        this.initiate(s, now, p.tries + 1, p.startedAt);
      }
      if (s.previous?.eraseAt !== undefined && now >= s.previous.eraseAt)
        s.previous = this.retire(s.previous);
      if (s.current && now - s.current.createdAt >= this.timing.rejectAfterMs)
        s.current = this.retire(s.current);
      if (s.next && now - s.next.createdAt >= this.timing.rejectAfterMs) s.next = this.retire(s.next);
      if (s.keepaliveAt !== undefined && now >= s.keepaliveAt) {
        const kp = s.sendable(now, this.timing);
        if (kp) this.seal(s, kp, new Uint8Array(0), now);
        s.keepaliveAt = undefined;
      }
      if (s.pending) continue;
      const waited = s.confirmBy !== undefined && now >= s.confirmBy;
      if (s.queue.length > 0 && !s.sendable(now, this.timing) && (waited || !s.next))
        this.initiate(s, now, 0, now);
      else if (
        s.unansweredSince !== undefined &&
        now - s.unansweredSince >= this.timing.silenceBeforeRehandshakeMs
      )
        this.initiate(s, now, 0, now);
    }
  }

  pollTimeout(): number | undefined {
    let next: number | undefined;
    for (const s of this.peers.all()) {
      const at = s.deadline(this.timing);
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  pollTransmit(): { to: Address; bytes: Uint8Array } | undefined {
    const t = this.transmits.shift();
    if (t) this.counters.wireBytesOut += t.bytes.length;
    return t;
  }

  pollEvent(): SessionEvent | undefined {
    return this.events.shift();
  }

  /** Where the peer is now, as its latest authenticated datagram says. */
  addressOf(peer: PeerId): Address | undefined {
    return this.peers.get(peer)?.peer.address;
  }

  /** Initiates to `to`, a LAN hint for `peer` (the last try stays answerable); only a response moves the peer. */
  tryAddress(now: number, peer: PeerId, to: Address): void {
    const s = this.peers.get(peer);
    if (s) this.initiate(s, now, s.pending?.tries ?? 0, s.pending?.startedAt ?? now, to);
  }

  hasSession(peer: PeerId, now: number): boolean {
    return this.peers.get(peer)?.sendable(now, this.timing) !== undefined;
  }

  stats(): SessionStats {
    return { ...this.counters, indices: this.byIndex.size, refused: { ...this.counters.refused } };
  }

  /** Takes the pinned peers as they are now (PeerTable.set says how); a removed or re-keyed peer's keys go. */
  setPeers(peers: readonly SessionPeer[]): void {
    this.peers.set(peers, (s) => this.forget(s));
  }

  /** Forgets every key (shutdown): nothing of this node's sessions stays in memory. */
  eraseAll(): void {
    for (const s of this.peers.all()) this.forget(s);
  }

  private onInitiation(now: number, from: Address, packet: InitiationPacket): undefined {
    const read = ResponderHandshake.read(
      this.local,
      packet.noise,
      (key) => this.peers.byKey(key) !== undefined,
    );
    if (!read.ok) return this.refuse(from, read.reason);
    const s = this.peers.byKey(read.value.remoteStatic) as PeerState;
    const timestamp = readTimestamp(read.value.payload);
    const seen = Math.max(s.timestampSeen, this.memory?.newestInitiation(s.peer.id) ?? -1);
    if (timestamp <= seen) return this.refuse(from, "replayed-initiation");
    s.timestampSeen = timestamp;
    this.memory?.rememberInitiation(s.peer.id, timestamp);
    // Both sides initiated at once. The side with the higher static key yields: it drops its own handshake. The
    // other keeps its own (sent again now, to where the peer is) and answers too, so one round trip suffices
    // whichever gets through; a keypair it made as initiator then wins over one it answered (onResponse).
    if (s.pending) {
      if (compareBytes(this.local.publicKey, s.peer.staticKey) < 0) {
        this.counters.crossed++;
        this.retryIfDue(s, now, from);
      } else this.dropPending(s);
    }
    const index = this.newIndex();
    const reply = read.value.reply(this.random(32));
    if (s.next) s.next = this.retire(s.next);
    const kp = new Keypair(reply.keys, index, packet.sender, now, false, from);
    s.next = kp;
    s.confirmBy = now + this.timing.retryFirstMs;
    this.byIndex.set(index, { state: s, keypair: kp });
    // To where the initiation came from: the peer may have moved; its address changes only once it is confirmed.
    this.transmits.push({
      to: from,
      bytes: encodeResponse(index, packet.sender, reply.message, s.peer.staticKey),
    });
    return undefined;
  }

  private onResponse(now: number, from: Address, packet: ResponsePacket): undefined {
    const entry = this.byIndex.get(packet.receiver);
    const s = entry?.state;
    const pending = [s?.pending, s?.superseded].find((p) => p?.localIndex === packet.receiver);
    if (!s || entry.keypair || !pending) return this.refuse(from, "unknown-index");
    const done = pending.handshake.finish(packet.noise);
    if (!done.ok) return this.refuse(from, done.reason);
    this.dropPending(s);
    // A responder's keypair still unconfirmed is older news than the one just made: the peer moves to this one.
    if (s.next) s.next = this.retire(s.next);
    const kp = new Keypair(done.value.keys, pending.localIndex, packet.sender, now, true);
    this.byIndex.set(kp.localIndex, { state: s, keypair: kp });
    this.promote(s, kp, now);
    this.roam(s, from);
    this.events.push({ type: "established", peer: s.peer.id, initiator: true });
    // The responder may send only once it hears from us under the new keys: an empty datagram if nothing waits.
    if (s.queue.length === 0) this.seal(s, kp, new Uint8Array(0), now);
    this.flushQueue(s, kp, now);
    return undefined;
  }

  private onTransport(
    now: number,
    from: Address,
    packet: TransportPacket,
  ): { peer: PeerId; plaintext: Uint8Array } | undefined {
    const entry = this.byIndex.get(packet.receiver);
    const kp = entry?.keypair;
    if (!entry || !kp) {
      this.onUnknownIndex(now, from);
      return this.refuse(from, "unknown-index");
    }
    const s = entry.state;
    if (now - kp.createdAt >= this.timing.rejectAfterMs) return this.refuse(from, "expired");
    if (!kp.replay.wouldAccept(packet.counter)) return this.refuse(from, "replayed");
    const plaintext = kp.receiver.open(packet.counter, packet.sealed, packet.header);
    if (!plaintext) return this.refuse(from, "bad-aead");
    const newest = packet.counter > kp.replay.highest;
    kp.replay.mark(packet.counter);
    s.unansweredSince = undefined;
    // Only the newest datagram moves the peer (no replay can), and before a new session flushes what waited.
    if (newest) this.roam(s, from);
    // A replaced keypair still in use (late datagrams, a crossing) stays, within rejectAfterMs, a grace window more.
    if (kp === s.previous) kp.eraseAt = now + this.timing.previousGraceMs;
    if (kp === s.next) {
      s.next = undefined;
      kp.confirmed = true;
      s.confirmBy = undefined;
      this.promote(s, kp, now);
      this.events.push({ type: "established", peer: s.peer.id, initiator: false });
      this.flushQueue(s, kp, now);
    }
    if (plaintext.length === 0) return undefined;
    s.keepaliveAt ??= now + this.timing.keepaliveMs;
    this.counters.opened++;
    return { peer: s.peer.id, plaintext };
  }

  /**
   * A peer sends under a session we lack (we restarted or erased it, or crossing, it took an answer we replaced
   * since): so we handshake there now, at most once per initiationMinGapMs, all a forger of the address gains.
   */
  private onUnknownIndex(now: number, from: Address): void {
    for (const s of this.peers.all()) {
      if (s.peer.address !== from && s.next?.initiatedFrom !== from) continue;
      if (!s.pending) this.initiate(s, now, 0, now, from);
      else this.retryIfDue(s, now, from);
      return;
    }
  }

  /** Sends the running handshake's initiation again (a fresh one) unless the last went out too recently. */
  private retryIfDue(s: PeerState, now: number, to: Address = s.peer.address): void {
    const p = s.pending;
    if (p && now - p.sentAt >= this.timing.initiationMinGapMs)
      this.initiate(s, now, p.tries + 1, p.startedAt, to);
  }

  /** Starts (or restarts) a handshake, to `to`: the peer's address, or where its own fresh initiation came from. */
  private initiate(s: PeerState, now: number, tries: number, startedAt: number, to = s.peer.address): void {
    if (s.superseded) this.dropAttempt(s.superseded);
    s.superseded = s.pending;
    s.unansweredSince = undefined;
    const localIndex = this.newIndex();
    // Strictly increasing, and in ms of the caller's clock, so that a restart (a later clock) is not a replay.
    const timestamp = Math.max(Math.floor(now), s.timestampSent + 1);
    s.timestampSent = timestamp;
    const handshake = new InitiatorHandshake(
      this.local,
      s.peer.staticKey,
      this.random(32),
      writeTimestamp(timestamp),
    );
    const delay = retryDelayMs(this.timing, tries + 1, this.random(2));
    s.pending = { handshake, localIndex, startedAt, tries, sentAt: now, retryAt: now + delay };
    this.byIndex.set(localIndex, { state: s, keypair: undefined });
    this.counters.handshakesStarted++;
    this.transmits.push({
      to,
      bytes: encodeInitiation(localIndex, handshake.message, s.peer.staticKey),
    });
  }

  private seal(s: PeerState, kp: Keypair, plaintext: Uint8Array, now: number): void {
    const counter = kp.sendCounter++;
    const header = transportHeader(kp.remoteIndex, counter);
    this.transmits.push({
      to: s.peer.address,
      bytes: encodeTransport(header, kp.sender.seal(counter, plaintext, header)),
    });
    s.keepaliveAt = undefined;
    // Only data expects an answer; a keepalive answers and expects none (else two idle peers would ping-pong).
    if (plaintext.length === 0) return;
    this.counters.sealed++;
    s.unansweredSince ??= now;
  }

  private flushQueue(s: PeerState, kp: Keypair, now: number): void {
    const queued = s.queue.splice(0);
    for (const plaintext of queued) this.seal(s, kp, plaintext, now);
  }

  /** `kp` becomes current; the current one stays a grace window for late datagrams; an older one is erased. */
  private promote(s: PeerState, kp: Keypair, now: number): void {
    this.counters.established++;
    if (s.previous) s.previous = this.retire(s.previous);
    if (s.current) {
      s.current.eraseAt = now + this.timing.previousGraceMs;
      s.previous = s.current;
    }
    s.current = kp;
  }

  private roam(s: PeerState, from: Address): void {
    if (from === s.peer.address) return;
    this.events.push({ type: "roamed", peer: s.peer.id, from: s.peer.address, to: from });
    s.peer.address = from;
  }

  private retire(kp: Keypair): undefined {
    kp.erase();
    this.byIndex.delete(kp.localIndex);
    this.counters.keysErased++;
    return undefined;
  }

  /** Ends the handshake in progress: every attempt's ephemeral secret is erased. */
  private dropPending(s: PeerState): void {
    if (s.pending) this.dropAttempt(s.pending);
    if (s.superseded) this.dropAttempt(s.superseded);
    s.pending = s.superseded = undefined;
  }

  private dropAttempt(p: Pending): void {
    p.handshake.erase();
    this.byIndex.delete(p.localIndex);
  }

  private forget(s: PeerState): void {
    this.dropPending(s);
    for (const kp of [s.current, s.previous, s.next]) if (kp) this.retire(kp);
    s.current = s.previous = s.next = undefined;
    s.queue = [];
  }

  private refuse(from: Address, reason: SessionRefusal): undefined {
    this.counters.refused[reason] = (this.counters.refused[reason] ?? 0) + 1;
    const version = reason === "protocol-v1" ? 1 : reason === "protocol-v2" ? 2 : undefined;
    if (version) this.events.push({ type: "old-protocol", from, version });
    else if (reason === "unknown-key") this.events.push({ type: "unknown-key", from });
    return undefined;
  }

  private newIndex(): number {
    return freshIndex(this.random, (index) => this.byIndex.has(index));
  }
}
