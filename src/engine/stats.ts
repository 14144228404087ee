import type { RejectReason } from "./events.ts";

/** Counters of everything the engine did; every rejection is counted under its reason. */
export interface EngineStats {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** The part of bytesOut that was DATA (first transmissions, retransmits and their copies); the rest is ACK and HELLO. */
  dataBytesOut: number;
  /** DATA frames sent for the first time. */
  framesSent: number;
  /** BATCH datagrams sent: each carried a whole batch's frames on their first transmission. */
  batchesSent: number;
  /** DATA and BATCH datagrams sent (first tries, retransmissions and copies): what dataBytesOut is the size of. */
  dataDatagramsOut: number;
  /** Batch signatures made: one Ed25519 signature each, over up to 16 messages (fragments). */
  batchSignatures: number;
  /** Messages (fragments) those signatures covered: a broadcast to many peers counts once. */
  messagesSigned: number;
  retransmits: number;
  /** Retransmits sent early because a later frame was acknowledged first (part of `retransmits`). */
  earlyRetransmits: number;
  framesAcked: number;
  acksSent: number;
  acksReceived: number;
  hellosSent: number;
  hellosReceived: number;
  /** Messages handed to the application. */
  messagesDelivered: number;
  /** Messages whose every fragment a recipient acknowledged (one per recipient). */
  messagesAcked: number;
  /** Messages that failed for a recipient for good: refused by it, or expired. */
  messagesFailed: number;
  /** Messages that got no answer in all their tries and now wait for their recipient to be heard from. */
  giveUps: number;
  /** Copies of frames or messages already received, dropped (and re-acknowledged). */
  duplicates: number;
  rejected: Partial<Record<RejectReason, number>>;
}

export function newStats(): EngineStats {
  return {
    datagramsIn: 0,
    datagramsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    dataBytesOut: 0,
    framesSent: 0,
    batchesSent: 0,
    dataDatagramsOut: 0,
    batchSignatures: 0,
    messagesSigned: 0,
    retransmits: 0,
    earlyRetransmits: 0,
    framesAcked: 0,
    acksSent: 0,
    acksReceived: 0,
    hellosSent: 0,
    hellosReceived: 0,
    messagesDelivered: 0,
    messagesAcked: 0,
    messagesFailed: 0,
    giveUps: 0,
    duplicates: 0,
    rejected: {},
  };
}
