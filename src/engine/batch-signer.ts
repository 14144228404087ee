/**
 * Batch signing of DATA: the frames queued since the last batch are signed together, one Ed25519 signature per
 * batch of up to MAX_BATCH_LEAVES messages, and only then encoded (docs/PROTOCOL.md §3.1, §6.1). Each frame gets
 * its DATA datagram (with its audit path, for retransmissions); a batch that goes whole to a peer and fits one
 * datagram also becomes one BATCH datagram for that peer, which its frames' first transmission uses.
 */
import type { EngineContext } from "./context.ts";
import type { ParkedMessage } from "./peer.ts";
import type { BatchProof } from "./ports.ts";
import type { OutFrame } from "./send-stream.ts";
import { seqAdd } from "./seq.ts";
import { MAX_BATCH_LEAVES, type PeerId } from "./types.ts";
import {
  batchBytes,
  type DataFields,
  dataSignedBytes,
  encodeBatch,
  encodeData,
  MAX_ENGINE_DATAGRAM_BYTES,
} from "./wire.ts";

/** A frame queued since the last batch signature, with what signing and encoding it need. */
export interface UnsignedFrame {
  frame: OutFrame;
  peer: PeerId;
  fields: DataFields;
  /** A broadcast's fragments are the same message for every peer: one leaf, keyed by the message written. */
  shared: ParkedMessage | undefined;
}

/** One message part to sign, and the frames (one per recipient) that carry it. */
interface Leaf {
  signed: Uint8Array;
  payloadBytes: number;
  frames: UnsignedFrame[];
  /** Its recipients, as one key: leaves that share it can go to each of them as one BATCH. */
  recipients: string;
}

export class BatchSigner {
  private readonly unsigned: UnsignedFrame[] = [];

  constructor(private readonly ctx: EngineContext) {}

  /** Queues a frame for the next batch; its bytes stay undefined until sign(). */
  add(u: UnsignedFrame): void {
    this.unsigned.push(u);
  }

  /**
   * Signs every frame queued since the last call and encodes their datagrams. It runs when the runtime polls the
   * first datagram after a burst of sends: what the application wrote in one go (a pump's worth of sends, a long
   * message's fragments) costs one Ed25519 signature per batch, and each receiver verifies it once per batch.
   */
  private dbgSigns = 0;
  sign(): void {
    if (++this.dbgSigns > 1000000) throw new Error("DBG sign loop");
    for (const batch of batchesOf(leavesOf(this.ctx.selfId, this.unsigned))) {
      const proofs = this.ctx.crypto.signBatch(batch.map((leaf) => leaf.signed));
      this.ctx.counters.batchSignatures++;
      this.ctx.counters.messagesSigned += batch.length;
      batch.forEach((leaf, i) => {
        for (const u of leaf.frames) u.frame.bytes = encodeData(u.fields, proofs[i] as BatchProof);
      });
      if (packable(batch)) this.packForEachPeer(batch, (proofs[0] as BatchProof).signature);
    }
    this.unsigned.length = 0;
  }

  /** One BATCH per recipient of a batch whose every leaf goes to the same peers, on consecutive seqs. */
  private packForEachPeer(batch: readonly Leaf[], signature: Uint8Array): void {
    const first = batch[0] as Leaf;
    for (const { peer } of first.frames) {
      const frames = batch.map((leaf) => leaf.frames.find((u) => u.peer === peer) as UnsignedFrame);
      const head = (frames[0] as UnsignedFrame).fields;
      if (!frames.every((u, i) => u.fields.seq === seqAdd(head.seq, i))) continue;
      const group = frames.map((u) => u.frame);
      for (const frame of group) frame.batch = group;
      (group[0] as OutFrame).batchBytes = encodeBatch(
        { epoch: head.epoch, floor: head.floor, seq: head.seq },
        frames.map((u) => u.fields),
        signature,
      );
    }
  }
}

/** The distinct message parts, in the order first queued: a broadcast's copies share one. */
function leavesOf(author: PeerId, unsigned: readonly UnsignedFrame[]): Leaf[] {
  const leaves: Leaf[] = [];
  const shared = new Map<ParkedMessage, Leaf[]>();
  for (const u of unsigned) {
    const known = u.shared && shared.get(u.shared)?.[u.fields.fragIndex];
    if (known) {
      known.frames.push(u);
      continue;
    }
    const leaf: Leaf = {
      signed: dataSignedBytes(author, u.fields),
      payloadBytes: u.fields.payload.length,
      frames: [u],
      recipients: "",
    };
    leaves.push(leaf);
    if (u.shared) {
      const byFragment = shared.get(u.shared) ?? [];
      byFragment[u.fields.fragIndex] = leaf;
      shared.set(u.shared, byFragment);
    }
  }
  for (const leaf of leaves) leaf.recipients = leaf.frames.map((u) => u.peer).join(",");
  return leaves;
}

/**
 * Batches of MAX_BATCH_LEAVES leaves at most. A run of small messages for the same recipients ends where one more
 * would no longer fit one BATCH datagram, so that it goes whole (and a lone message ends where the recipients
 * change); a run of large ones (a long message's fragments, which no BATCH could hold two of) goes on to
 * MAX_BATCH_LEAVES: one signature for them all, each sent as a DATA.
 */
function batchesOf(leaves: readonly Leaf[]): Leaf[][] {
  const batches: Leaf[][] = [];
  let run: Leaf[] = [];
  for (const leaf of leaves) {
    const sameRecipients = run.length === 0 || (run[0] as Leaf).recipients === leaf.recipients;
    const full =
      run.length === MAX_BATCH_LEAVES ||
      (fits(run) && !fits([...run, leaf]) && (run.length >= 2 || !sameRecipients));
    if (full) {
      batches.push(run);
      run = [];
    }
    run.push(leaf);
  }
  if (run.length > 0) batches.push(run);
  return batches;
}

/** Whether a batch goes whole to each of its recipients in one BATCH datagram (one frame alone is a DATA). */
function packable(batch: readonly Leaf[]): boolean {
  return batch.length >= 2 && fits(batch);
}

/** Whether the leaves are for the same recipients and would fit one BATCH datagram. */
function fits(leaves: readonly Leaf[]): boolean {
  const recipients = leaves[0]?.recipients;
  return (
    leaves.every((l) => l.recipients === recipients) &&
    batchBytes(leaves.map((l) => l.payloadBytes)) <= MAX_ENGINE_DATAGRAM_BYTES
  );
}
