import { randomBytes as nodeRandomBytes } from "node:crypto";
import type { CryptoPort } from "../engine/ports.ts";
import type { PeerId } from "../engine/types.ts";
import { signBatch, statementOf, wholeBatchStatement } from "./batch-signature.ts";
import { bytesEqual, utf8 } from "./bytes.ts";
import { type Ed25519Verifier, ed25519Signer, ed25519Verifier, keyId } from "./ed25519.ts";
import { open as hpkeOpen, seal as hpkeSeal } from "./hpke.ts";
import type { PublicKeys, SecretKeys } from "./keys.ts";
import { X25519PrivateKey, X25519PublicKey } from "./x25519.ts";

/**
 * The engine's CryptoPort (src/engine/ports.ts) over the primitives in this folder. Per-peer state (parsed keys) is
 * made on first use and cached; if the directory later returns different keys for a peer
 * (a contact replaced with --force), the cache entry is rebuilt. Nothing here throws for hostile input.
 */

/** HPKE `info` for private messages: binds every ciphertext to this protocol and purpose. */
export const PRIVATE_MESSAGE_INFO = utf8("chatnode v1 private");
/** Bytes of entropy for each HPKE ephemeral key (RFC 9180's Nsk). */
const EPHEMERAL_IKM_BYTES = 32;
/**
 * Successful signature checks remembered per port. The messages of one batch share one signature over one
 * statement (their Merkle root), and a retransmitted DATA datagram (its ACK was lost or late) carries the same
 * again: recognising a statement already checked costs its audit path's few SHA-256s instead of an Ed25519
 * verify (bench/README.md has both costs, and an entry's size).
 */
const VERIFIED_CACHE_MAX = 1024;

/** Where the port finds a peer's public keys; src/identity/directory.ts implements it over users.json. */
export interface PeerKeyDirectory {
  publicKeysOf(peer: PeerId): PublicKeys | undefined;
}

export interface CryptoPortOptions {
  /** This node's secret keys (an UnlockedIdentity from src/identity/register.ts fits). */
  readonly identity: SecretKeys;
  readonly directory: PeerKeyDirectory;
  /** The random source for HPKE ephemeral keys; inject a seeded one for deterministic simulation. */
  readonly randomBytes?: (length: number) => Uint8Array;
}

interface PeerState {
  readonly ed25519: Uint8Array;
  readonly verifier: Ed25519Verifier;
  readonly x25519: X25519PublicKey;
}

/** A fixed set of peers, for the simulator and tests. */
export function staticKeyDirectory(peers: Iterable<PublicKeys>): PeerKeyDirectory {
  const byId = new Map<PeerId, PublicKeys>();
  for (const keys of peers) byId.set(keyId(keys.ed25519), keys);
  return { publicKeysOf: (peer) => byId.get(peer) };
}

export function createCryptoPort(options: CryptoPortOptions): CryptoPort {
  const random = options.randomBytes ?? nodeRandomBytes;
  const signer = ed25519Signer(options.identity.ed25519Seed);
  const x25519 = X25519PrivateKey.fromRaw(options.identity.x25519PrivateKey);
  const selfId = keyId(signer.publicKey);
  // We always know ourselves, even before our own entry reaches the directory.
  const peers = new PeerKeys(options.directory, selfId, {
    ed25519: signer.publicKey,
    x25519: x25519.publicKey,
  });
  const verified = new VerifiedSignatures();

  return {
    selfId,
    knows: (peer) => peers.get(peer) !== undefined,
    signBatch: (messages) => signBatch(messages, (statement) => signer.sign(statement)),
    verify(author, message, proof) {
      const state = peers.get(author);
      if (!state) return false;
      const statement = statementOf(message, proof);
      return statement !== undefined && verified.check(author, state.verifier, statement, proof.signature);
    },
    verifyBatch(author, messages, signature) {
      const state = peers.get(author);
      if (!state) return false;
      const statement = wholeBatchStatement(messages);
      return statement !== undefined && verified.check(author, state.verifier, statement, signature);
    },
    seal(recipient, plaintext, aad) {
      const state = peers.get(recipient);
      if (!state) return new Uint8Array(0);
      const sealed = hpkeSeal(
        state.x25519,
        PRIVATE_MESSAGE_INFO,
        aad,
        plaintext,
        random(EPHEMERAL_IKM_BYTES),
      );
      // Empty (which `open` rejects everywhere) rather than a throw, for an unknown or unusable recipient key.
      return sealed ?? new Uint8Array(0);
    },
    open: (ciphertext, aad) => hpkeOpen(x25519, PRIVATE_MESSAGE_INFO, aad, ciphertext),
  };
}

/** Each peer's parsed keys, from the directory on first use; rebuilt when the directory's keys change. */
class PeerKeys {
  private readonly cache = new Map<PeerId, PeerState>();

  constructor(
    private readonly directory: PeerKeyDirectory,
    private readonly selfId: PeerId,
    private readonly selfKeys: PublicKeys,
  ) {}

  get(peer: PeerId): PeerState | undefined {
    const keys = peer === this.selfId ? this.selfKeys : this.directory.publicKeysOf(peer);
    if (!keys) {
      this.cache.delete(peer);
      return undefined;
    }
    const cached = this.cache.get(peer);
    if (cached && bytesEqual(cached.ed25519, keys.ed25519) && bytesEqual(cached.x25519.raw, keys.x25519)) {
      return cached;
    }
    this.cache.delete(peer);
    // A directory entry filed under an id its key does not hash to is refused, not trusted.
    if (keyId(keys.ed25519) !== peer) return undefined;
    const verifier = ed25519Verifier(keys.ed25519);
    const peerX25519 = X25519PublicKey.fromRaw(keys.x25519);
    if (!verifier || !peerX25519) return undefined;
    const state: PeerState = {
      ed25519: verifier.publicKey,
      verifier,
      x25519: peerX25519,
    };
    this.cache.set(peer, state);
    return state;
  }
}

/**
 * Signature checks that succeeded, the oldest forgotten past VERIFIED_CACHE_MAX. Ed25519 verification is
 * deterministic: the same author key, statement and signature give the same answer. A hit needs the same
 * verifier (so a replaced directory key is checked afresh) and the same statement.
 */
class VerifiedSignatures {
  /** author + signature → the verifier that accepted it and the statement it covered. */
  private readonly accepted = new Map<string, { verifier: Ed25519Verifier; statement: Uint8Array }>();

  check(author: PeerId, verifier: Ed25519Verifier, statement: Uint8Array, signature: Uint8Array): boolean {
    const key =
      author + Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString("latin1");
    const hit = this.accepted.get(key);
    if (hit && hit.verifier === verifier && bytesEqual(hit.statement, statement)) return true;
    if (!verifier.verify(statement, signature)) return false;
    this.accepted.set(key, { verifier, statement });
    if (this.accepted.size > VERIFIED_CACHE_MAX) {
      const oldest = this.accepted.keys().next().value;
      if (oldest !== undefined) this.accepted.delete(oldest);
    }
    return true;
  }
}
