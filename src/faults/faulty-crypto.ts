import type { CryptoPort, Rng } from "../engine/ports.ts";
import type { PeerId } from "../engine/types.ts";
import type { FaultConfig, FaultCounters } from "./plan.ts";
import { chance } from "./ppm.ts";

/**
 * Wraps a CryptoPort so that a chosen share of private messages is sealed to the wrong key (our own), as a buggy
 * or confused sender would: the recipient must fail to open it, say so, and keep working.
 */
export function withWrongKeyFaults(
  inner: CryptoPort,
  faults: () => FaultConfig,
  rng: Rng,
  counters: FaultCounters,
): CryptoPort {
  return {
    selfId: inner.selfId,
    knows: (peer: PeerId) => inner.knows(peer),
    signBatch: (messages) => inner.signBatch(messages),
    verify: (author, message, proof) => inner.verify(author, message, proof),
    verifyBatch: (author, messages, signature) => inner.verifyBatch(author, messages, signature),
    seal: (recipient, plaintext, aad) => {
      const { wrongKeyPpm } = faults();
      if (wrongKeyPpm === 0 || !chance(rng, wrongKeyPpm)) return inner.seal(recipient, plaintext, aad);
      counters.wrongKeys++;
      return inner.seal(inner.selfId, plaintext, aad);
    },
    open: (ciphertext, aad) => inner.open(ciphertext, aad),
  };
}
