import { createHash, randomBytes } from "node:crypto";
import { KEY_ID_BYTES, type PeerId, SIGNATURE_BYTES, toHex } from "../engine/types.ts";
import { toBytes } from "./bytes.ts";
import { sodium } from "./sodium.ts";

/**
 * Ed25519 (RFC 8032, pure variant) over libsodium (sodium-native). Every receiver checks every author's signatures,
 * so verification is the hot path of a busy node: libsodium's is the faster (`npm run bench` prints both;
 * bench/README.md has the figures). Both are RFC 8032 and give the same signatures (Ed25519 is
 * deterministic); libsodium's verification is also stricter: it refuses non-canonical encodings and small-order
 * points (keys and R), which no honest signer produces.
 */

export const ED25519_SEED_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = SIGNATURE_BYTES;

export interface Ed25519Signer {
  readonly publicKey: Uint8Array;
  /** The 64-byte signature over exactly `message`. */
  sign(message: Uint8Array): Uint8Array;
}

export interface Ed25519Verifier {
  readonly publicKey: Uint8Array;
  /** False for any bad input (wrong length, wrong key, altered bytes): never throws. */
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

export function generateEd25519Seed(random: (length: number) => Uint8Array = randomBytes): Uint8Array {
  return toBytes(random(ED25519_SEED_BYTES));
}

/** Throws RangeError for a seed that is not 32 bytes: that is a programming error, not hostile input. */
export function ed25519Signer(seed: Uint8Array): Ed25519Signer {
  if (seed.length !== ED25519_SEED_BYTES)
    throw new RangeError(`an Ed25519 seed is ${ED25519_SEED_BYTES} bytes`);
  const publicKey = new Uint8Array(ED25519_PUBLIC_KEY_BYTES);
  // libsodium's secret key is the seed followed by the public key.
  const secretKey = new Uint8Array(sodium().crypto_sign_SECRETKEYBYTES);
  sodium().crypto_sign_seed_keypair(publicKey, secretKey, seed);
  return {
    publicKey,
    sign(message) {
      const signature = new Uint8Array(ED25519_SIGNATURE_BYTES);
      sodium().crypto_sign_detached(signature, message, secretKey);
      return signature;
    },
  };
}

/**
 * Undefined when `publicKey` is not 32 bytes. libsodium's check itself fails every signature under a non-canonical or
 * small-order key (for which anyone can forge), and checks a key with a small-order component (mixed order) without
 * the cofactor, as OpenSSL did: a user record an older build accepted still verifies.
 */
export function ed25519Verifier(publicKey: Uint8Array): Ed25519Verifier | undefined {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return undefined;
  const raw = toBytes(publicKey);
  return {
    publicKey: raw,
    verify: (message, signature) =>
      signature.length === ED25519_SIGNATURE_BYTES &&
      sodium().crypto_sign_verify_detached(signature, message, raw),
  };
}

/** The public key for a seed (RFC 8032 5.1.5). */
export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  return ed25519Signer(seed).publicKey;
}

/** The engine's PeerId: the first 8 bytes of SHA-256 over the raw Ed25519 public key, as 16 hex digits. */
export function keyId(publicKey: Uint8Array): PeerId {
  const digest = createHash("sha256").update(publicKey).digest();
  return toHex(digest.subarray(0, KEY_ID_BYTES)) as PeerId;
}
