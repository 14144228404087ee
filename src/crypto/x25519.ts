import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject, randomBytes } from "node:crypto";
import { toBytes } from "./bytes.ts";

/**
 * X25519 (RFC 7748) over node:crypto, with keys as raw 32-byte strings. Scalars are clamped and the u-coordinate's
 * top bit is masked inside OpenSSL, as RFC 7748 section 5 requires.
 *
 * Keys enter node:crypto as JWK (RFC 8037 OKP), which node hands to OpenSSL's raw-key constructor. We do not wrap them
 * in PKCS#8 / SPKI DER as for Ed25519: OpenSSL 3's DER decoder costs ~10x more (~1 ms per private key on this
 * machine), and HPKE builds a new ephemeral private key for every private message. For a private JWK node reads only
 * `d` (it requires `x` to be a string and ignores it); the RFC 7748 known-answer tests pin this behaviour down.
 */

export const X25519_KEY_BYTES = 32;

function jwkPublic(raw: Uint8Array) {
  return { kty: "OKP", crv: "X25519", x: Buffer.from(raw).toString("base64url") };
}

export class X25519PublicKey {
  private constructor(
    readonly raw: Uint8Array,
    /** The parsed key, kept so that each DH does not parse it again. */
    readonly keyObject: KeyObject,
  ) {}

  /** Undefined unless `raw` is 32 bytes that OpenSSL accepts. */
  static fromRaw(raw: Uint8Array): X25519PublicKey | undefined {
    if (raw.length !== X25519_KEY_BYTES) return undefined;
    try {
      return new X25519PublicKey(toBytes(raw), createPublicKey({ key: jwkPublic(raw), format: "jwk" }));
    } catch {
      return undefined;
    }
  }
}

export class X25519PrivateKey {
  readonly publicKey: Uint8Array;

  private constructor(private readonly keyObject: KeyObject) {
    const { x } = keyObject.export({ format: "jwk" });
    this.publicKey = toBytes(Buffer.from(x ?? "", "base64url"));
  }

  /** Throws RangeError for a key that is not 32 bytes: a programming error, not hostile input. */
  static fromRaw(raw: Uint8Array): X25519PrivateKey {
    if (raw.length !== X25519_KEY_BYTES)
      throw new RangeError(`an X25519 private key is ${X25519_KEY_BYTES} bytes`);
    const jwk = { kty: "OKP", crv: "X25519", d: Buffer.from(raw).toString("base64url"), x: "" };
    return new X25519PrivateKey(createPrivateKey({ key: jwk, format: "jwk" }));
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
