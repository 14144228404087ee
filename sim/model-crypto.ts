/**
 * A fast stand-in for the real crypto (src/crypto/port.ts) with the same observable behaviour: only the key
 * holder can sign, a ciphertext opens only for its recipient and only untampered.
 * Built on HMAC-SHA256 so the simulator can run thousands of seeds; the real Ed25519/HPKE port is exercised by
 * the crypto tests and by `npm run sim -- --real-crypto`.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { signBatch, statementOf, wholeBatchStatement } from "../src/crypto/batch-signature.ts";
import type { BatchProof, CryptoPort } from "../src/engine/ports.ts";
import type { PeerId } from "../src/engine/types.ts";

export interface ModelKeys {
  id: PeerId;
  secret: Uint8Array;
}

/** Keys for node `index` of a seeded run: the same seed gives the same keys. */
export function modelKeys(seed: number, index: number): ModelKeys {
  const secret = createHash("sha256").update(`chatnode-sim/${seed}/${index}`).digest();
  const id = createHash("sha256").update(secret).digest("hex").slice(0, 16) as PeerId;
  return { id, secret };
}

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return h.digest();
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export class ModelCrypto implements CryptoPort {
  readonly selfId: PeerId;
  constructor(
    private readonly self: ModelKeys,
    private readonly directory: ReadonlyMap<PeerId, ModelKeys>,
  ) {
    this.selfId = self.id;
  }

  knows(peer: PeerId): boolean {
    return this.directory.has(peer);
  }

  /** The real batch construction (Merkle tree, audit paths), with an HMAC in place of Ed25519. */
  signBatch(messages: readonly Uint8Array[]): BatchProof[] {
    return signBatch(messages, (statement) =>
      Buffer.concat([hmac(this.self.secret, statement), Buffer.alloc(32)]),
    );
  }

  verify(author: PeerId, message: Uint8Array, proof: BatchProof): boolean {
    const keys = this.directory.get(author);
    const statement = statementOf(message, proof);
    if (!keys || !statement || proof.signature.length !== 64) return false;
    return equal(Buffer.concat([hmac(keys.secret, statement), Buffer.alloc(32)]), proof.signature);
  }

  verifyBatch(author: PeerId, messages: readonly Uint8Array[], signature: Uint8Array): boolean {
    const keys = this.directory.get(author);
    const statement = wholeBatchStatement(messages);
    if (!keys || !statement || signature.length !== 64) return false;
    return equal(Buffer.concat([hmac(keys.secret, statement), Buffer.alloc(32)]), signature);
  }

  seal(recipient: PeerId, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const keys = this.directory.get(recipient);
    const secret = keys ? keys.secret : new Uint8Array(32);
    const stream = keystream(secret, aad, plaintext.length);
    const body = Buffer.alloc(plaintext.length);
    for (let i = 0; i < plaintext.length; i++) body[i] = (plaintext[i] ?? 0) ^ (stream[i] ?? 0);
    return Buffer.concat([body, hmac(secret, aad, body).subarray(0, 16)]);
  }

  open(ciphertext: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
    if (ciphertext.length < 16) return undefined;
    const body = ciphertext.subarray(0, ciphertext.length - 16);
    const tag = ciphertext.subarray(ciphertext.length - 16);
    if (!equal(hmac(this.self.secret, aad, body).subarray(0, 16), tag)) return undefined;
    const stream = keystream(this.self.secret, aad, body.length);
    const out = new Uint8Array(body.length);
    for (let i = 0; i < body.length; i++) out[i] = (body[i] ?? 0) ^ (stream[i] ?? 0);
    return out;
  }
}

function keystream(secret: Uint8Array, aad: Uint8Array, length: number): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; blocks.length * 32 < length; i++)
    blocks.push(hmac(secret, aad, Uint8Array.of(i >> 8, i & 255)));
  return Buffer.concat(blocks).subarray(0, length);
}
