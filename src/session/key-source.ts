import type { PeerId } from "../engine/types.ts";
import type { SessionPeer } from "./peer-state.ts";

/** Where the session layer finds its keys: this node's X25519 private key and each contact's pinned public one. */
export interface SessionKeySource {
  readonly privateKey: Uint8Array;
  /** Undefined for a peer without a pinned key: no session is made with it. */
  staticKeyOf(peer: PeerId): Uint8Array | undefined;
}

/**
 * What the session layer keeps across restarts: the newest initiation timestamp it accepted from each peer, so
 * that a restarted node refuses a replayed old initiation as a running one does (it would otherwise answer one,
 * harmlessly but visibly). Never a key: sessions themselves live in memory only.
 */
export interface HandshakeMemory {
  newestInitiation(peer: PeerId): number | undefined;
  rememberInitiation(peer: PeerId, timestamp: number): void;
}

/** A store's named values as the handshake memory (the store's setMeta and getMeta). */
export function handshakeMemoryIn(store: {
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
}): HandshakeMemory {
  const key = (peer: PeerId) => `session-initiation:${peer}`;
  return {
    newestInitiation: (peer) => {
      const value = Number(store.getMeta(key(peer)));
      return Number.isSafeInteger(value) ? value : undefined;
    },
    rememberInitiation: (peer, timestamp) => store.setMeta(key(peer), String(timestamp)),
  };
}

/** The session peers for a set of contacts: those with a pinned key, at their directory addresses. */
export function sessionPeers(
  contacts: Iterable<{ id: PeerId; address: string }>,
  keys: SessionKeySource,
): SessionPeer[] {
  const out: SessionPeer[] = [];
  for (const c of contacts) {
    const staticKey = keys.staticKeyOf(c.id);
    if (staticKey) out.push({ id: c.id, staticKey, address: c.address });
  }
  return out;
}

/** The session keys of a user: the X25519 half of their secret keys, and the directory's pinned X25519 keys. */
export function keySourceOf(
  identity: { readonly x25519PrivateKey: Uint8Array },
  directory: { publicKeysOf(peer: PeerId): { readonly x25519: Uint8Array } | undefined },
): SessionKeySource {
  return {
    privateKey: identity.x25519PrivateKey,
    staticKeyOf: (peer) => directory.publicKeysOf(peer)?.x25519,
  };
}
