// Shared by both stores, so no node: imports (the simulator loads memory.ts).
import type { MsgId, PeerId } from "../engine/types.ts";
import { StoreError } from "./errors.ts";
import type { OutgoingMessage } from "./store.ts";

/** Refuses a message that names one recipient twice, before anything of it is stored. */
export function assertDistinctRecipients(message: OutgoingMessage): void {
  const seen = new Set<PeerId>();
  for (const { peer } of message.recipients) {
    if (seen.has(peer)) {
      throw new StoreError("DUPLICATE_RECIPIENT", `message ${message.msgId} names recipient ${peer} twice`);
    }
    seen.add(peer);
  }
}

export function duplicateMsgId(msgId: MsgId): StoreError {
  return new StoreError("DUPLICATE_MSG_ID", `an outgoing message with id ${msgId} is already stored`);
}

/** A transaction's work must be synchronous: a promise it returns is refused, as better-sqlite3 refuses it. */
export function assertNotThenable(value: unknown): void {
  const thenable =
    typeof value === "object" && value !== null && "then" in value && typeof value.then === "function";
  if (thenable) throw new TypeError("Transaction function cannot return a promise");
}
