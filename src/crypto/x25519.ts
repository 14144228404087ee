import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject, randomBytes } from "node:crypto";
import { concatBytes, toBytes } from "./bytes.ts";

/**
 * X25519 (RFC 7748) over node:crypto, with keys as raw 32-byte strings wrapped in the fixed PKCS#8 / SPKI prefixes for
 * the X25519 OID (1.3.101.110). Scalars are clamped and the u-coordinate's top bit is masked inside OpenSSL, as
 * RFC 7748 section 5 requires. A KeyObject is built once per key and kept.
 */

export const X25519_KEY_BYTES = 32;

const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

export class X25519PublicKey {
  private constructor(
    readonly raw: Uint8Array,
    /** @internal the parsed key, kept so that each DH does not parse DER again. */
    readonly keyObject: KeyObject,
  ) {}

  /** Undefined unless `raw` is 32 bytes that OpenSSL accepts. */
  static fromRaw(raw: Uint8Array): X25519PublicKey | undefined {
    if (raw.length !== X25519_KEY_BYTES) return undefined;
    try {
      const key = createPublicKey({
        key: Buffer.from(concatBytes(SPKI_PREFIX, raw)),
        format: "der",
        type: "spki",
      });
      return new X25519PublicKey(toBytes(raw), key);
    } catch {
      return undefined;
    }
  }
}

export class X25519PrivateKey {
  readonly publicKey: Uint8Array;

  private constructor(private readonly keyObject: KeyObject) {
    const der = createPublicKey(keyObject).export({ format: "der", type: "spki" });
    this.publicKey = toBytes(der.subarray(SPKI_PREFIX.length));
  }

  /** Throws RangeError for a key that is not 32 bytes: a programming error, not hostile input. */
  static fromRaw(raw: Uint8Array): X25519PrivateKey {
    if (raw.length !== X25519_KEY_BYTES)
      throw new RangeError(`an X25519 private key is ${X25519_KEY_BYTES} bytes`);
    return new X25519PrivateKey(
      createPrivateKey({ key: Buffer.from(concatBytes(PKCS8_PREFIX, raw)), format: "der", type: "pkcs8" }),
    );
  }

  /**
   * The shared secret X25519(self, peer), or undefined if it is all zeros: a low-order peer key would make the
   * "secret" a constant an attacker knows (RFC 7748 section 6.1, RFC 9180 section 7.1.4). OpenSSL refuses those, and
   * we check again so that the guarantee does not depend on the OpenSSL version.
   */
  dh(peer: X25519PublicKey): Uint8Array | undefined {
    let shared: Uint8Array;
    try {
      shared = toBytes(diffieHellman({ privateKey: this.keyObject, publicKey: peer.keyObject }));
    } catch {
      return undefined;
    }
    return shared.some((b) => b !== 0) ? shared : undefined;
  }
}

export function generateX25519PrivateKey(random: (length: number) => Uint8Array = randomBytes): Uint8Array {
  return toBytes(random(X25519_KEY_BYTES));
}

/** One-shot X25519(scalar, u) for known-answer tests and one-off uses; undefined for bad input. */
export function x25519(scalar: Uint8Array, u: Uint8Array): Uint8Array | undefined {
  const peer = X25519PublicKey.fromRaw(u);
  if (scalar.length !== X25519_KEY_BYTES || !peer) return undefined;
  return X25519PrivateKey.fromRaw(scalar).dh(peer);
}
