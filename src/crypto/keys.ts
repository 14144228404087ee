import { randomBytes } from "node:crypto";
import type { PeerId } from "../engine/types.ts";
import { ed25519PublicKey, generateEd25519Seed, keyId } from "./ed25519.ts";
import { generateX25519PrivateKey, X25519PrivateKey } from "./x25519.ts";

/**
 * A user's two key pairs. Ed25519 signs (identity); X25519 receives HPKE messages and keys the MACs. Two pairs rather
 * than one converted key, because reusing one key across signature and DH is outside what either RFC analyses.
 */

export interface SecretKeys {
  /** The 32-byte Ed25519 seed (RFC 8032's private key). */
  readonly ed25519Seed: Uint8Array;
  /** The 32-byte X25519 scalar (RFC 7748), unclamped as generated. */
  readonly x25519PrivateKey: Uint8Array;
}

export interface PublicKeys {
  readonly ed25519: Uint8Array;
  readonly x25519: Uint8Array;
}

export function generateSecretKeys(random: (length: number) => Uint8Array = randomBytes): SecretKeys {
  return { ed25519Seed: generateEd25519Seed(random), x25519PrivateKey: generateX25519PrivateKey(random) };
}

export function publicKeysOf(secrets: SecretKeys): PublicKeys {
  return {
    ed25519: ed25519PublicKey(secrets.ed25519Seed),
    x25519: X25519PrivateKey.fromRaw(secrets.x25519PrivateKey).publicKey,
  };
}

export function peerIdOf(keys: PublicKeys): PeerId {
  return keyId(keys.ed25519);
}
