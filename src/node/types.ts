import type { EngineConfig } from "../engine/config.ts";
import type { WaitCause } from "../engine/events.ts";
import type { CryptoPort } from "../engine/ports.ts";
import type { EngineStats } from "../engine/stats.ts";
import type { MessageKind, MsgId, PeerId } from "../engine/types.ts";
import type { FaultConfig, FaultCounters } from "../faults/plan.ts";
import type { SessionStats } from "../session/events.ts";
import type { SessionKeySource } from "../session/key-source.ts";
import type { Store } from "../storage/store.ts";
import type { AdmissionStats } from "./admission.ts";
import type { LanRuntimeStats } from "./lan-runtime.ts";
import type { LoopClock } from "./loop.ts";

/** A user this node may talk to, from the directory. */
export interface Contact {
  id: PeerId;
  name: string;
  host: string;
  port: number;
  /** The full safety fingerprint (groups of 4 hex digits), to compare out of band. */
  fingerprint?: string;
}

export interface ChatNodeOptions {
  /** This node's user. */
  self: Contact;
  /** Every user in the directory (self may be included; it is skipped). */
  contacts: readonly Contact[];
  crypto: CryptoPort;
  /** The X25519 keys the session layer handshakes with: this node's, and each contact's pinned one. */
  sessionKeys: SessionKeySource;
  store: Store;
  /** The address to bind; defaults to the user's registered host and port. Port 0 picks a free one. */
  host?: string;
  port?: number;
  faults?: Partial<FaultConfig>;
  config?: Partial<EngineConfig>;
  /** Whether the store is durable. An ephemeral node picks a new epoch at every start. */
  ephemeral?: boolean;
  /** How long close() waits for ACKs of frames in flight. */
  closeGraceMs?: number;
  /**
   * Finds contacts on the LAN by multicast DNS (docs/PROTOCOL.md §15) when the node listens on an address the LAN
   * can reach (lan-runtime.ts, lanReachable). Off unless asked: the chat command asks unless --no-lan.
   */
  lan?: boolean;
  /** The time and the loop's scheduling; the wall clock (loop-clock.ts) unless a test drives a virtual one. */
  clock?: LoopClock;
}

/** A message just sent: its recipients, and those of them not heard from, for whom it waits. */
export interface SentView {
  msgId: MsgId;
  to: string[];
  waiting: string[];
}

export interface PeerView {
  id: PeerId;
  name: string;
  address: string;
  online: boolean;
  lastSeen: number | undefined;
  rttMs: number | undefined;
  inFlight: number;
  queued: number;
  parked: number;
  fingerprint: string | undefined;
}

export interface NodeStats extends EngineStats {
  faults: FaultCounters;
  /** Datagrams from unknown sources admitted or dropped by rate limiting (src/node/admission.ts). */
  admission: AdmissionStats;
  /** The session layer's handshakes, keys and refusals (src/session). */
  sessions: SessionStats;
  /** LAN discovery's counters; undefined when it is off. */
  lan: LanRuntimeStats | undefined;
  /** Outgoing (message, recipient) pairs not yet delivered, across restarts. */
  pending: number;
}

export type ChatNodeEvents = {
  ready: [{ username: string; port: number; address: string }];
  /** The message is in the store's outbox (committed at the end of the tick that sent it): a crash can no longer lose it. */
  queued: [{ msgId: MsgId; kind: MessageKind; to: string[]; waiting: string[] }];
  delivered: [{ msgId: MsgId; to: string; toId: PeerId; tries: number }];
  /** Failed for good: refused by the recipient (`rejected-decrypt`, `rejected-malformed`) or `expired`. */
  failed: [{ msgId: MsgId; to: string; toId: PeerId; reason: string; code: string }];
  /** The recipient stopped answering, or quit: the message waits and goes once it is heard from. */
  waiting: [{ msgId: MsgId; to: string; toId: PeerId; cause: WaitCause; reason: string }];
  message: [
    {
      msgId: MsgId;
      from: string;
      fromId: PeerId;
      kind: MessageKind;
      text: string;
      sentAt: number;
      receivedAt: number;
    },
  ];
  rejected: [{ reason: string; from?: string; address: string }];
  duplicate: [{ from: string; msgId?: MsgId }];
  "peer-online": [{ peer: string; id: PeerId; address: string }];
  "peer-offline": [{ peer: string; id: PeerId }];
  /** A contact is online at the address it announced on the LAN (found by multicast, its key proven by the session). */
  "lan-found": [{ peer: string; id: PeerId; address: string }];
  /** The directory changed while the node runs (updateContacts). */
  contacts: [ContactChanges];
  /** close() finished: the socket and the store are closed. */
  closed: [];
};

/** What a change of the directory did, by user name. */
export interface ContactChanges {
  added: string[];
  removed: string[];
  /** Same name with a new address or new keys. */
  changed: string[];
}
