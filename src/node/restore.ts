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
 * Every life of a node has its own epoch, newer than any earlier life's, kept (this store) or not (`keep` false:
 * --ephemeral, or another data directory under the same keys). So peers treat a restarted node's sequence numbers
 * as new rather than as replays, and a life that follows an ephemeral one is never older than it: a peer that saw
 * the ephemeral life's epoch would refuse an older one as stale for good.
 *
 * An epoch is the next whole second of the clock, or one more than the saved epoch if that is later (restarts within
 * a second), and the caller waits for that second to begin: every later life, even one that keeps no store, then
 * takes a newer one from the clock. The wait is at most a second, even if the clock went back.
 */
export function chooseEpoch(store: Store, nowMs: number, keep: boolean): EpochChoice {
  const saved = keep ? savedEpoch(store) : undefined;
  const epoch = Math.max(Math.floor(nowMs / 1000) + 1, (saved ?? 0) + 1);
  // Saved before the wait: a crash during it leaves an epoch no life has used yet.
  if (keep) store.setMeta(EPOCH_KEY, String(epoch));
  return { epoch, startsAt: Math.min(epoch * 1000, nowMs + 1000) };
}

function savedEpoch(store: Store): number | undefined {
  const saved = store.getMeta(EPOCH_KEY);
  if (saved === undefined) return undefined;
  const epoch = Number(saved);
  // Below 2^32 − 1: its successor must still fit the wire's u32.
  if (!Number.isInteger(epoch) || epoch <= 0 || epoch >= 2 ** 32 - 1)
    throw new StoreError(
      "DB_DAMAGED",
      `the saved epoch ${JSON.stringify(saved)} in ${store.location} is damaged`,
    );
  return epoch;
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
