import type { Address, MessageKind, MsgId, PeerId } from "./types.ts";
import type { DecodeError } from "./wire.ts";

/**
 * Why a datagram or a message was refused. Every one is counted in stats. A datagram that does not decode is
 * refused for its DecodeError (wire.ts); the rest are the engine's own checks, after decoding.
 */
export type RejectReason =
  | DecodeError
  /** A session carried it from a peer the engine does not have (removed from the directory meanwhile). */
  | "unknown-sender"
  | "bad-signature"
  | "stale-epoch"
  | "replayed-hello"
  | "beyond-window"
  | "decrypt-failed"
  | "inconsistent-fragments"
  | "bad-utf8";

/** Why a message failed for one recipient, for good: the node will not send it to them again. */
export type FailReason = "rejected-decrypt" | "rejected-malformed" | "expired";

/** Why a message waits for a recipient: the node stopped sending it and sends it again once the peer is heard. */
export type WaitCause = "no-answer" | "left";

export type EngineEvent =
  /** A message from `from`, delivered once, in its sender's order. */
  | { type: "message"; msgId: MsgId; from: PeerId; kind: MessageKind; text: string; sentAt: number }
  /** Every fragment of `msgId` reached `to` and was acknowledged. May follow a `failed` (offline delivery). */
  | { type: "delivered"; msgId: MsgId; to: PeerId; tries: number }
  | { type: "failed"; msgId: MsgId; to: PeerId; reason: FailReason; tries: number; detail: string }
  /**
   * The recipient stopped answering (`no-answer`, after `tries` transmissions of a frame) or said it was leaving
   * (`left`): the message is parked and goes again, in order, once the recipient is heard from. Not a failure.
   */
  | { type: "waiting"; msgId: MsgId; to: PeerId; cause: WaitCause; tries: number }
  | { type: "rejected"; reason: RejectReason; from?: PeerId; address: Address }
  | { type: "duplicate"; from: PeerId; msgId?: MsgId }
  | { type: "peer-online"; peer: PeerId; address: Address }
  | { type: "peer-offline"; peer: PeerId };

export function describeFailure(reason: FailReason, expireMs: number): string {
  switch (reason) {
    case "rejected-decrypt":
      return "recipient could not decrypt it";
    case "rejected-malformed":
      return "recipient refused it as malformed";
    case "expired":
      return `not delivered within ${describeSpan(expireMs)}`;
  }
}

function describeSpan(ms: number): string {
  const days = ms / 86_400_000;
  if (Number.isInteger(days)) return `${days} ${days === 1 ? "day" : "days"}`;
  const seconds = Math.round(ms / 1000);
  return `${seconds} ${seconds === 1 ? "second" : "seconds"}`;
}

/**
 * Whether a stored failure description is a give-up of ChatNode 0.1 ("gave up after 30 tries"), which stored the
 * recipient as failed though it went on waiting for them: such a recipient is still pending.
 */
export function isLegacyGiveUp(detail: string | undefined): boolean {
  return detail?.startsWith("gave up after") ?? false;
}
