/**
 * Batch signing of DATA: the frames queued since the last batch are signed together, one Ed25519 signature per
 * MAX_BATCH_LEAVES messages, and only then encoded (docs/PROTOCOL.md §6.1).
 */
import type { EngineContext } from "./context.ts";
import type { ParkedMessage } from "./peer.ts";
import type { BatchProof } from "./ports.ts";
import type { OutFrame } from "./send-stream.ts";
import { MAX_BATCH_LEAVES } from "./types.ts";
import { type DataFields, dataSignedBytes, encodeData } from "./wire.ts";

/** A frame queued since the last batch signature, with what signing and encoding it need. */
export interface UnsignedFrame {
  frame: OutFrame;
  fields: DataFields;
  /** A broadcast's fragments are the same message for every peer: one leaf, keyed by the message written. */
  shared: ParkedMessage | undefined;
}

export class BatchSigner {
  private readonly unsigned: UnsignedFrame[] = [];

  constructor(private readonly ctx: EngineContext) {}

  /** Queues a frame for the next batch; its bytes stay undefined until sign(). */
  add(u: UnsignedFrame): void {
    this.unsigned.push(u);
  }

  /**
   * Signs every frame queued since the last call, MAX_BATCH_LEAVES messages per signature, and encodes their
   * datagrams. It runs when the runtime polls the first datagram after a burst of sends: what the application
   * wrote in one go (a pump's worth of sends, a long message's fragments) costs one Ed25519 signature per 16
   * fragments, and each receiver verifies that signature once per batch.
   */
  sign(): void {
    const leaves: Uint8Array[] = [];
    const leafOf: number[] = [];
    const sharedLeaves = new Map<ParkedMessage, number[]>();
    for (const u of this.unsigned) {
      const known = u.shared && sharedLeaves.get(u.shared)?.[u.fields.fragIndex];
      if (known !== undefined) {
        leafOf.push(known);
        continue;
      }
      leafOf.push(leaves.length);
      if (u.shared) {
        const byFragment = sharedLeaves.get(u.shared) ?? [];
        byFragment[u.fields.fragIndex] = leaves.length;
        sharedLeaves.set(u.shared, byFragment);
      }
      leaves.push(dataSignedBytes(this.ctx.selfId, u.fields));
    }
    const proofs: BatchProof[] = [];
    for (let from = 0; from < leaves.length; from += MAX_BATCH_LEAVES) {
      const batch = leaves.slice(from, from + MAX_BATCH_LEAVES);
      proofs.push(...this.ctx.crypto.signBatch(batch));
      this.ctx.counters.batchSignatures++;
      this.ctx.counters.messagesSigned += batch.length;
    }
    this.unsigned.forEach((u, i) => {
      const proof = proofs[leafOf[i] as number] as BatchProof;
      u.frame.bytes = encodeData(u.fields, proof);
    });
    this.unsigned.length = 0;
  }
}
