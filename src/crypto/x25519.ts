import { randomBytes } from "node:crypto";
import { toBytes } from "./bytes.ts";
import { sodium } from "./sodium.ts";

/**
 * X25519 (RFC 7748) over libsodium (sodium-native), with keys as raw 32-byte strings: the same library as Ed25519
 * (src/crypto/ed25519.ts). Scalars are clamped and the u-coordinate's top bit is masked inside libsodium, as RFC 7748
 * section 5 requires. HPKE makes a fresh ephemeral key pair for every private message; libsodium does a base-point
 * multiplication and a DH on raw bytes, where OpenSSL first builds key objects, which takes longer (bench/README.md).
 */

export const X25519_KEY_BYTES = 32;

export class X25519PublicKey {
  private constructor(readonly raw: Uint8Array) {}

  /** Undefined unless `raw` is 32 bytes (every 32-byte string is a u-coordinate; low-order ones fail in `dh`). */
  static fromRaw(raw: Uint8Array): X25519PublicKey | undefined {
    return raw.length === X25519_KEY_BYTES ? new X25519PublicKey(toBytes(raw)) : undefined;
  }
}

export class X25519PrivateKey {
  readonly publicKey: Uint8Array;

  private constructor(private readonly scalar: Uint8Array) {
    this.publicKey = new Uint8Array(X25519_KEY_BYTES);
    sodium().crypto_scalarmult_base(this.publicKey, scalar);
  }

  /** Throws RangeError for a key that is not 32 bytes: a programming error, not hostile input. */
  static fromRaw(raw: Uint8Array): X25519PrivateKey {
    if (raw.length !== X25519_KEY_BYTES)
      throw new RangeError(`an X25519 private key is ${X25519_KEY_BYTES} bytes`);
    return new X25519PrivateKey(toBytes(raw));
  }

  /**
   * The shared secret X25519(self, peer), or undefined if it is all zeros: a low-order peer key would make the
   * "secret" a constant an attacker knows (RFC 7748 section 6.1, RFC 9180 section 7.1.4). libsodium refuses those
   * (it throws here), and we check again so that the guarantee does not depend on the library's version.
   */
  dh(peer: X25519PublicKey): Uint8Array | undefined {
    const shared = new Uint8Array(X25519_KEY_BYTES);
    try {
      sodium().crypto_scalarmult(shared, this.scalar, peer.raw);
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
