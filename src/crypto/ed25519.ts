import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import { KEY_ID_BYTES, type PeerId, SIGNATURE_BYTES, toHex } from "../engine/types.ts";
import { concatBytes, toBytes } from "./bytes.ts";

/**
 * Ed25519 (RFC 8032, pure variant) over node:crypto. Keys travel as raw 32-byte strings; node:crypto wants DER, so
 * we wrap them in the fixed PKCS#8 / SPKI prefixes for the Ed25519 OID (1.3.101.112). Building a KeyObject parses
 * DER and costs more than a signature check, so callers build one per key and keep it (Ed25519Signer/Verifier).
 */

export const ED25519_SEED_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = SIGNATURE_BYTES;

/** PKCS#8 PrivateKeyInfo { version 0, AlgorithmIdentifier Ed25519, OCTET STRING { OCTET STRING seed } }. */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
/** SubjectPublicKeyInfo { AlgorithmIdentifier Ed25519, BIT STRING public key }. */
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

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
  const privateKey = createPrivateKey({
    key: Buffer.from(concatBytes(PKCS8_PREFIX, seed)),
    format: "der",
    type: "pkcs8",
  });
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return {
    publicKey,
    sign: (message) => toBytes(sign(null, message, privateKey)),
  };
}

/** Undefined when `publicKey` is not a usable Ed25519 key. */
export function ed25519Verifier(publicKey: Uint8Array): Ed25519Verifier | undefined {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return undefined;
  let key: KeyObject;
  try {
    key = createPublicKey({
      key: Buffer.from(concatBytes(SPKI_PREFIX, publicKey)),
      format: "der",
      type: "spki",
    });
  } catch {
    return undefined;
  }
  const raw = toBytes(publicKey);
  return {
    publicKey: raw,
    verify(message, signature) {
      if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
      try {
        return verify(null, message, key, signature);
      } catch {
        return false;
      }
    },
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

function rawPublicKey(key: KeyObject): Uint8Array {
  const der = key.export({ format: "der", type: "spki" });
  return toBytes(der.subarray(SPKI_PREFIX.length));
}
