import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { bytesEqual, concatBytes, i2osp, utf8 } from "./bytes.ts";
import { hkdfExpand, hkdfExtract } from "./hkdf.ts";
import { X25519_KEY_BYTES, X25519PrivateKey, X25519PublicKey } from "./x25519.ts";

/**
 * HPKE (RFC 9180), base mode, single-shot, for one suite only:
 * DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305 (KEM 0x0020, KDF 0x0001, AEAD 0x0003).
 * Each function below is named after, and follows line by line, the RFC's pseudocode. Single-shot means one message
 * per encapsulation, so the sequence number is always 0 and the nonce is base_nonce itself (section 5.2).
 */

const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_ID = 0x0003;
const MODE_BASE = 0x00;

/** Nsecret, Nenc, Npk, Nsk of DHKEM(X25519, HKDF-SHA256); Nk, Nn, Nt of ChaCha20-Poly1305; Nh of HKDF-SHA256. */
const N_SECRET = 32;
export const HPKE_ENC_BYTES = 32;
const N_SK = 32;
const N_K = 32;
const N_N = 12;
const N_T = 16;
const N_H = 32;
/** What seal adds to the plaintext: the encapsulated key and the AEAD tag. */
export const HPKE_OVERHEAD_BYTES = HPKE_ENC_BYTES + N_T;

const HPKE_V1 = utf8("HPKE-v1");
const KEM_SUITE_ID = concatBytes(utf8("KEM"), i2osp(KEM_ID, 2));
const HPKE_SUITE_ID = concatBytes(utf8("HPKE"), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(AEAD_ID, 2));
const EMPTY = new Uint8Array(0);

function labeledExtract(suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return hkdfExtract(salt, concatBytes(HPKE_V1, suiteId, utf8(label), ikm));
}

function labeledExpand(
  suiteId: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
) {
  return hkdfExpand(prk, concatBytes(i2osp(length, 2), HPKE_V1, suiteId, utf8(label), info), length);
}

export interface HpkeKeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * DeriveKeyPair (section 7.1.3, X25519 branch): the key pair is a function of `ikm`, so an injected random source
 * makes encryption reproducible in the simulator. `ikm` must hold at least Nsk = 32 bytes of entropy.
 */
export function deriveKeyPair(ikm: Uint8Array): HpkeKeyPair {
  const { privateKey, key } = deriveX25519(ikm);
  return { privateKey, publicKey: key.publicKey };
}

/** DeriveKeyPair keeping the parsed key, so that Encap does not parse it a second time. */
function deriveX25519(ikm: Uint8Array): { privateKey: Uint8Array; key: X25519PrivateKey } {
  const dkpPrk = labeledExtract(KEM_SUITE_ID, EMPTY, "dkp_prk", ikm);
  const privateKey = labeledExpand(KEM_SUITE_ID, dkpPrk, "sk", EMPTY, N_SK);
  return { privateKey, key: X25519PrivateKey.fromRaw(privateKey) };
}

function extractAndExpand(dh: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const eaePrk = labeledExtract(KEM_SUITE_ID, EMPTY, "eae_prk", dh);
  return labeledExpand(KEM_SUITE_ID, eaePrk, "shared_secret", kemContext, N_SECRET);
}

export interface Encapsulation {
  readonly sharedSecret: Uint8Array;
  readonly enc: Uint8Array;
}

/** Encap(pkR) with the ephemeral key pair derived from `ikmE`; undefined if pkR is unusable (low order). */
export function encap(pkR: X25519PublicKey, ikmE: Uint8Array): Encapsulation | undefined {
  const ephemeral = deriveX25519(ikmE).key;
  const dh = ephemeral.dh(pkR);
  if (!dh) return undefined;
  const enc = ephemeral.publicKey;
  return { sharedSecret: extractAndExpand(dh, concatBytes(enc, pkR.raw)), enc };
}

/** Decap(enc, skR); undefined if enc is not a usable public key. */
export function decap(enc: Uint8Array, skR: X25519PrivateKey): Uint8Array | undefined {
  const pkE = X25519PublicKey.fromRaw(enc);
  if (!pkE) return undefined;
  const dh = skR.dh(pkE);
  if (!dh) return undefined;
  return extractAndExpand(dh, concatBytes(enc, skR.publicKey));
}

export interface KeySchedule {
  readonly key: Uint8Array;
  readonly baseNonce: Uint8Array;
  readonly exporterSecret: Uint8Array;
}

/**
 * The key schedule's context for `info`: `mode ‖ psk_id_hash ‖ info_hash`. With the default PSK it depends on
 * `info` alone, which is the same for every private message, so the last one is kept (two HMACs saved per message).
 */
let lastContext: { info: Uint8Array; context: Uint8Array } | undefined;

function keyScheduleContext(info: Uint8Array): Uint8Array {
  if (lastContext && bytesEqual(lastContext.info, info)) return lastContext.context;
  const pskIdHash = labeledExtract(HPKE_SUITE_ID, EMPTY, "psk_id_hash", EMPTY);
  const infoHash = labeledExtract(HPKE_SUITE_ID, EMPTY, "info_hash", info);
  const context = concatBytes(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
  lastContext = { info: Uint8Array.from(info), context };
  return context;
}

/**
 * KeySchedule<ROLE>(mode_base, shared_secret, info, default_psk = "", default_psk_id = "") (section 5.1). The exporter
 * secret is derived only when read: single-shot seal and open never use it.
 */
export function keySchedule(sharedSecret: Uint8Array, info: Uint8Array): KeySchedule {
  const context = keyScheduleContext(info);
  const secret = labeledExtract(HPKE_SUITE_ID, sharedSecret, "secret", EMPTY);
  return {
    key: labeledExpand(HPKE_SUITE_ID, secret, "key", context, N_K),
    baseNonce: labeledExpand(HPKE_SUITE_ID, secret, "base_nonce", context, N_N),
    get exporterSecret() {
      return labeledExpand(HPKE_SUITE_ID, secret, "exp", context, N_H);
    },
  };
}

function aeadSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: N_T });
  cipher.setAAD(aad, { plaintextLength: pt.length });
  return concatBytes(cipher.update(pt), cipher.final(), cipher.getAuthTag());
}

function aeadOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ct: Uint8Array,
): Uint8Array | undefined {
  if (ct.length < N_T) return undefined;
  const body = ct.subarray(0, ct.length - N_T);
  try {
    const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: N_T });
    decipher.setAuthTag(ct.subarray(ct.length - N_T));
    decipher.setAAD(aad, { plaintextLength: body.length });
    return concatBytes(decipher.update(body), decipher.final());
  } catch {
    return undefined;
  }
}

function asPublicKey(pkR: Uint8Array | X25519PublicKey): X25519PublicKey | undefined {
  return pkR instanceof X25519PublicKey ? pkR : X25519PublicKey.fromRaw(pkR);
}

function asPrivateKey(skR: Uint8Array | X25519PrivateKey): X25519PrivateKey | undefined {
  if (skR instanceof X25519PrivateKey) return skR;
  return skR.length === X25519_KEY_BYTES ? X25519PrivateKey.fromRaw(skR) : undefined;
}

/**
 * SealBase (section 6.1) as one message: enc (32 bytes) || AEAD ciphertext (plaintext length + 16).
 * `ikmE` (32 random bytes by default) seeds the ephemeral key; pass it only from a real random source.
 * Undefined, never a throw, if `pkR` is unusable.
 */
export function seal(
  pkR: Uint8Array | X25519PublicKey,
  info: Uint8Array,
  aad: Uint8Array,
  pt: Uint8Array,
  ikmE: Uint8Array = randomBytes(N_SK),
): Uint8Array | undefined {
  const recipient = asPublicKey(pkR);
  if (!recipient) return undefined;
  const encapsulation = encap(recipient, ikmE);
  if (!encapsulation) return undefined;
  const { key, baseNonce } = keySchedule(encapsulation.sharedSecret, info);
  return concatBytes(encapsulation.enc, aeadSeal(key, baseNonce, aad, pt));
}

/** OpenBase (section 6.1) of `enc || ct`; undefined, never a throw, if anything is wrong. */
export function open(
  skR: Uint8Array | X25519PrivateKey,
  info: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array | undefined {
  if (sealed.length < HPKE_OVERHEAD_BYTES) return undefined;
  const recipient = asPrivateKey(skR);
  if (!recipient) return undefined;
  const sharedSecret = decap(sealed.subarray(0, HPKE_ENC_BYTES), recipient);
  if (!sharedSecret) return undefined;
  const { key, baseNonce } = keySchedule(sharedSecret, info);
  return aeadOpen(key, baseNonce, aad, sealed.subarray(HPKE_ENC_BYTES));
}
