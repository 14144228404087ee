/**
 * LAN discovery, sans-IO: what a node does with what it hears on multicast DNS (lan-records.ts). Time comes in as
 * `now`, actions go out of `handleTimeout`, and `pollTimeout()` says when to call back, as the engine does; the
 * runtime (src/node/lan-runtime.ts) owns the socket and the timer.
 *
 * An announcement is not authenticated, and need not be: it only names a *candidate* address for a contact. A
 * candidate is tried (the runtime sends a handshake initiation there) only if, a short grace after it was heard,
 * the contact is still not online, so an address that works is never second-guessed; and only the session
 * layer's authenticated response moves the contact there. A forged announcement can at worst make this node send
 * one initiation per `probeGapMs` to an address of the forger's choosing. Memory is bounded by the contact list
 * (announcements of unknown keys are counted, not kept) times `candidatesPerPeerMax`.
 */
import type { PeerId } from "../engine/types.ts";
import {
  type Announced,
  asksFor,
  type LanQuestion,
  type LanRecord,
  readAnnouncements,
} from "./lan-records.ts";

export interface LanTiming {
  /** A candidate waits this long before it is tried: time for a working hint to bring the contact online. */
  graceMs: number;
  /** Initiations to a contact's candidates, at most one per this; so a forger's addresses take turns. */
  probeGapMs: number;
  /** A candidate announced again is tried again only this long after it was last settled (tried or not needed). */
  retryCandidateMs: number;
  /** Answers to queries, at most one per this (RFC 6762 §6: one multicast of a record per second). */
  answerGapMs: number;
  /** When to announce after start, unasked (RFC 6762 §8.3: at least twice, one second apart). */
  announceAtMs: readonly number[];
  candidatesPerPeerMax: number;
}

export const DEFAULT_LAN_TIMING: LanTiming = {
  graceMs: 500,
  probeGapMs: 1000,
  retryCandidateMs: 10_000,
  answerGapMs: 1000,
  announceAtMs: [0, 1000],
  candidatesPerPeerMax: 4,
};

/** What the node knows of a contact right now, from its engine. */
export interface PeerPresence {
  online: boolean;
  address: string;
}

export type LanAction =
  /** Multicast our announcement (unasked at start, or answering queries). */
  | { type: "announce" }
  /** Multicast the question "which ChatNodes are here?" (at start, with the first announcements). */
  | { type: "query" }
  /** Send a handshake initiation for `peer` to `address`; only an authenticated answer moves the peer there. */
  | { type: "probe"; peer: PeerId; address: string }
  /** The contact is online at an address it announced on this LAN: tell the user, once per candidate. */
  | { type: "found"; peer: PeerId; address: string };

export interface LanStats {
  /** Announcements of contacts (one per SRV record read). */
  heard: number;
  /** Announcements of keys that are not our contacts: counted, never kept. */
  unknownKeys: number;
  /** Our own announcements, heard back through multicast loopback. */
  ownEchoes: number;
  /** Candidates already tried, replaced by newer ones (a contact announced at many addresses). */
  candidatesEvicted: number;
  /** Announced addresses not taken: the contact's candidates were all still waiting for their try. */
  candidatesDropped: number;
  probes: number;
  found: number;
  /** Announcements multicast: at start, and in answer to queries. */
  announced: number;
}

interface Candidate {
  address: string;
  heardAt: number;
  /** When to try it; undefined once settled. */
  dueAt: number | undefined;
  /** When it was last tried, or judged not needed. */
  settledAt: number | undefined;
  reported: boolean;
}

export class LanDiscovery {
  private readonly candidates = new Map<PeerId, Candidate[]>();
  private readonly lastProbeAt = new Map<PeerId, number>();
  private contacts: ReadonlySet<PeerId>;
  private readonly announceAt: number[];
  private lastAnswerAt = Number.NEGATIVE_INFINITY;
  private answerDueAt: number | undefined;
  private readonly counters: LanStats = {
    heard: 0,
    unknownKeys: 0,
    ownEchoes: 0,
    candidatesEvicted: 0,
    candidatesDropped: 0,
    probes: 0,
    found: 0,
    announced: 0,
  };

  constructor(
    private readonly self: PeerId,
    contacts: Iterable<PeerId>,
    startedAt: number,
    private readonly timing: LanTiming = DEFAULT_LAN_TIMING,
  ) {
    this.contacts = new Set(contacts);
    this.announceAt = timing.announceAtMs.map((ms) => startedAt + ms);
  }

  /** The contacts as they are now; a removed one's candidates go. */
  setContacts(contacts: Iterable<PeerId>): void {
    this.contacts = new Set(contacts);
    for (const peer of this.candidates.keys()) {
      if (this.contacts.has(peer)) continue;
      this.candidates.delete(peer);
      this.lastProbeAt.delete(peer);
    }
  }

  /** A multicast DNS query: answered (an `announce` from handleTimeout) if it asks for ChatNodes or for us. */
  onQuery(now: number, questions: readonly LanQuestion[] | undefined): void {
    if (!asksFor(questions, this.self) || this.answerDueAt !== undefined) return;
    this.answerDueAt = Math.max(now, this.lastAnswerAt + this.timing.answerGapMs);
  }

  /** A multicast DNS response from IPv4 address `fromHost`: each contact it announces is a candidate there. */
  onResponse(now: number, fromHost: string, records: readonly LanRecord[]): void {
    if (!isIpv4(fromHost)) return;
    for (const a of readAnnouncements(records)) this.onAnnounced(now, fromHost, a);
  }

  /** The engine says `peer` came online at `address`: if the contact announced that address, it was found here. */
  onPeerOnline(peer: PeerId, address: string): LanAction | undefined {
    const c = this.candidates.get(peer)?.find((x) => x.address === address);
    return c ? this.report(peer, c) : undefined;
  }

  /** What is due now: announcements, probes of candidates, contacts found. */
  handleTimeout(now: number, presence: (peer: PeerId) => PeerPresence | undefined): LanAction[] {
    const actions: LanAction[] = [];
    const starting = this.announceAt.length > 0 && (this.announceAt[0] as number) <= now;
    if (starting) actions.push({ type: "query" });
    if (this.announceDue(now)) actions.push({ type: "announce" });
    for (const [peer, list] of this.candidates) {
      for (const c of list) {
        if (c.dueAt === undefined) continue;
        const p = presence(peer);
        // Already online at the address announced (it connected first, then was heard): found, no need to wait.
        if (now < c.dueAt && !(p?.online && p.address === c.address)) continue;
        const action = this.settle(now, peer, c, p);
        if (action) actions.push(action);
      }
    }
    return actions;
  }

  pollTimeout(): number | undefined {
    let next = this.answerDueAt;
    for (const at of this.announceAt) if (next === undefined || at < next) next = at;
    for (const list of this.candidates.values())
      for (const c of list)
        if (c.dueAt !== undefined && (next === undefined || c.dueAt < next)) next = c.dueAt;
    return next;
  }

  stats(): LanStats {
    return { ...this.counters };
  }

  /** Candidates held, over all contacts (bounded by contacts × candidatesPerPeerMax). */
  candidateCount(): number {
    let n = 0;
    for (const list of this.candidates.values()) n += list.length;
    return n;
  }

  private onAnnounced(now: number, host: string, a: Announced): void {
    if (a.id === this.self) return void this.counters.ownEchoes++;
    if (!this.contacts.has(a.id)) return void this.counters.unknownKeys++;
    this.counters.heard++;
    const address = `${host}:${a.port}`;
    const list = this.candidates.get(a.id) ?? [];
    this.candidates.set(a.id, list);
    const known = list.find((c) => c.address === address);
    if (known) {
      known.heardAt = now;
      const settledLongAgo =
        known.settledAt === undefined || now - known.settledAt >= this.timing.retryCandidateMs;
      if (known.dueAt === undefined && settledLongAgo) known.dueAt = now + this.timing.graceMs;
      return;
    }
    if (list.length >= this.timing.candidatesPerPeerMax) {
      // Room is made only from candidates already tried (the one tried longest ago goes): every candidate taken
      // is tried once, so a flood of forged addresses cannot push out a real one before its turn; it can only
      // wait for a free place, as the real one does.
      const settled = list.filter((c) => c.dueAt === undefined).sort((x, y) => x.heardAt - y.heardAt)[0];
      if (!settled) return void this.counters.candidatesDropped++;
      list.splice(list.indexOf(settled), 1);
      this.counters.candidatesEvicted++;
    }
    list.push({
      address,
      heardAt: now,
      dueAt: now + this.timing.graceMs,
      settledAt: undefined,
      reported: false,
    });
  }

  /** A due candidate: found (online there), not needed (online elsewhere), or tried, within the probe gap. */
  private settle(
    now: number,
    peer: PeerId,
    c: Candidate,
    p: PeerPresence | undefined,
  ): LanAction | undefined {
    if (p?.online) {
      c.dueAt = undefined;
      c.settledAt = now;
      return p.address === c.address ? this.report(peer, c) : undefined;
    }
    const last = this.lastProbeAt.get(peer);
    if (last !== undefined && now - last < this.timing.probeGapMs) {
      c.dueAt = last + this.timing.probeGapMs;
      return undefined;
    }
    c.dueAt = undefined;
    c.settledAt = now;
    this.lastProbeAt.set(peer, now);
    this.counters.probes++;
    return { type: "probe", peer, address: c.address };
  }

  private report(peer: PeerId, c: Candidate): LanAction | undefined {
    if (c.reported) return undefined;
    c.reported = true;
    this.counters.found++;
    return { type: "found", peer, address: c.address };
  }

  private announceDue(now: number): boolean {
    let due = false;
    while (this.announceAt.length > 0 && (this.announceAt[0] as number) <= now) {
      this.announceAt.shift();
      due = true;
    }
    if (this.answerDueAt !== undefined && this.answerDueAt <= now) {
      this.answerDueAt = undefined;
      due = true;
    }
    if (due) {
      this.lastAnswerAt = now;
      this.counters.announced++;
    }
    return due;
  }
}

function isIpv4(host: string): boolean {
  const parts = host.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}
