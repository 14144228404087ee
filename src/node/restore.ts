/**
 * What a node takes from its store when it starts: its epoch, its peers' saved protocol state, and the messages
 * it still owes. Sans-IO (no node:* imports, the clock passed in) so that ChatNode and the simulator's restarts run
 * this same code.
 */
import type { Engine } from "../engine/engine.ts";
import { isLegacyGiveUp } from "../engine/events.ts";
import { type PeerSnapshot, parsePeerSnapshot } from "../engine/peer.ts";
import type { PeerId } from "../engine/types.ts";
import { StoreError } from "../storage/errors.ts";
import type { Store } from "../storage/store.ts";

const EPOCH_KEY = "epoch";

export interface EpochChoice {
  epoch: number;
  /** Wall-clock ms before which the epoch must not be used: a new epoch is the next whole second. */
  startsAt: number;
}

/**
 * The epoch stays while our state is kept. A node that lost it (or never keeps it: `keep` false, --ephemeral)
 * starts a newer one, so peers treat its restarted sequence numbers as new rather than as replays. A new epoch is
 * the next whole second of the clock, and the caller waits for that second to begin (at most one second): two
 * lives of a node can then never share an epoch, however quickly it restarts.
 */
export function chooseEpoch(store: Store, nowMs: number, keep: boolean): EpochChoice {
  const saved = keep ? store.getMeta(EPOCH_KEY) : undefined;
  if (saved !== undefined) {
    const epoch = Number(saved);
    if (!Number.isInteger(epoch) || epoch <= 0 || epoch >= 2 ** 32)
      throw new StoreError(
        "DB_DAMAGED",
        `the saved epoch ${JSON.stringify(saved)} in ${store.location} is damaged`,
      );
    return { epoch, startsAt: nowMs };
  }
  const epoch = Math.floor(nowMs / 1000) + 1;
  // Saved before the wait: a crash during it leaves an epoch no life has used yet.
  if (keep) store.setMeta(EPOCH_KEY, String(epoch));
  return { epoch, startsAt: epoch * 1000 };
}

/** Every peer's saved protocol state, checked; a damaged one is a `DB_DAMAGED` StoreError. */
export function loadPeerSnapshots(store: Store): Map<PeerId, PeerSnapshot> {
  const out = new Map<PeerId, PeerSnapshot>();
  for (const [peer, json] of store.loadPeerStates()) {
    try {
      out.set(peer, parsePeerSnapshot(json));
    } catch {
      throw new StoreError(
        "DB_DAMAGED",
        `the saved protocol state for peer ${peer} in ${store.location} is damaged`,
      );
    }
  }
  return out;
}

/**
 * Gives the engine again every message still owed to a peer it knows (to `only` of them, when given): after a
 * restart the outbox is the only copy of what was not yet delivered.
 */
export function resubmitOutbox(
  engine: Engine,
  store: Store,
  now: number,
  isPeer: (peer: PeerId) => boolean,
  only?: ReadonlySet<PeerId>,
): void {
  for (const message of store.unfinishedOutgoing()) {
    for (const r of message.recipients) {
      if (r.state === "delivered" || !isPeer(r.peer)) continue;
      if (only && !only.has(r.peer)) continue;
      // Refused by the peer, or expired: failed for good. (An older ChatNode stored a give-up as failed.)
      if (r.state === "failed" && !isLegacyGiveUp(r.reason)) continue;
      // Every peer counts as offline until heard from: the message waits for this one's answer to our HELLO.
      engine.send(now, {
        kind: message.kind,
        to: [r.peer],
        text: message.text,
        msgId: message.msgId,
        sentAt: message.sentAt,
      });
    }
  }
}
