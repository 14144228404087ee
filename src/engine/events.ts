import type { Address, MessageKind, MsgId, PeerId } from "./types.ts";

/** Why a datagram or a message was refused. Every one is counted in stats. */
export type RejectReason =
  | "too-short"
  | "too-long"
  | "bad-magic"
  | "unknown-version"
  | "unknown-type"
  | "bad-length"
  | "bad-fragment"
  | "too-many-ranges"
  | "not-for-me"
  | "unknown-sender"
  | "bad-signature"
  | "bad-mac"
  | "stale-epoch"
  | "replayed-hello"
  | "beyond-window"
  | "decrypt-failed"
  | "inconsistent-fragments"
  | "bad-utf8";

/** Why a message to one recipient was given up. */
export type FailReason = "timeout" | "rejected-decrypt" | "rejected-malformed";

export type EngineEvent =
  /** A message from `from`, delivered once, in its sender's order. */
  | { type: "message"; msgId: MsgId; from: PeerId; kind: MessageKind; text: string; sentAt: number }
  /** Every fragment of `msgId` reached `to` and was acknowledged. May follow a `failed` (offline delivery). */
  | { type: "delivered"; msgId: MsgId; to: PeerId; tries: number }
  | { type: "failed"; msgId: MsgId; to: PeerId; reason: FailReason; tries: number; detail: string }
  | { type: "rejected"; reason: RejectReason; from?: PeerId; address: Address }
  | { type: "duplicate"; from: PeerId; msgId?: MsgId }
  | { type: "peer-online"; peer: PeerId; address: Address }
  | { type: "peer-offline"; peer: PeerId };

const GAVE_UP = "gave up after";

export function describeFailure(reason: FailReason, tries: number): string {
  switch (reason) {
    case "timeout":
      return `${GAVE_UP} ${tries} ${tries === 1 ? "try" : "tries"}`;
    case "rejected-decrypt":
      return "recipient could not decrypt it";
    case "rejected-malformed":
      return "recipient refused it as malformed";
  }
}

/** Whether a stored failure description (from describeFailure) says the message was given up for lack of an answer. */
export function isGiveUp(detail: string | undefined): boolean {
  return detail?.startsWith(GAVE_UP) ?? false;
}
