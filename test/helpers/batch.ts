import type { BatchProof, CryptoPort } from "../../src/engine/ports.ts";

/** `message` signed in a batch of its own: the proof a DATA carrying it alone would have. */
export function signedAlone(crypto: Pick<CryptoPort, "signBatch">, message: Uint8Array): BatchProof {
  const [proof] = crypto.signBatch([message]);
  if (!proof) throw new Error("a batch of one message has one proof");
  return proof;
}

/** A proof of the right shape for a batch of one, with `signature` (random bytes, say) that nobody made. */
export function unsignedProof(signature: Uint8Array): BatchProof {
  return { index: 0, size: 1, path: [], signature };
}
