/**
 * When sessions rekey, retry, give up and erase: the state machine's clock rules, after WireGuard's timers
 * (Donenfeld, "WireGuard", §6) with chat in mind. All times are the caller's `now`, in ms.
 */
export interface SessionTiming {
  /** The side that initiated a session starts a new handshake once the session is this old and in use. */
  rekeyAfterMs: number;
  /** A session this old neither sends nor receives, and its keys are erased. */
  rejectAfterMs: number;
  /** Datagrams sent under one key before a new handshake starts... */
  rekeyAfterMessages: number;
  /** ...and the most it may ever send (below the transport's COUNTER_MAX). */
  rejectAfterMessages: number;
  /** First handshake retry; each later one waits twice as long, up to the maximum, plus jitter. */
  retryFirstMs: number;
  retryMaxMs: number;
  /** Up to this fraction of each retry interval is added at random, so two peers' retries do not stay in step. */
  retryJitterFraction: number;
  /**
   * A datagram that waits for a handshake sends a fresh initiation, at most this often: the engine's own
   * retransmissions, paced for the path's loss, then pace the handshake too (at 40% loss it needs ~3 tries).
   */
  initiationMinGapMs: number;
  /** A handshake that has not completed after this long gives up and drops what was queued for it. */
  handshakeGiveUpMs: number;
  /**
   * A replaced session still opens datagrams (late, reordered, or from a peer still sending under it) until this
   * long after the last of them, then its keys are erased.
   */
  previousGraceMs: number;
  /** Sent data but heard nothing for this long: the peer may have lost the session (restarted): handshake anew. */
  silenceBeforeRehandshakeMs: number;
  /**
   * Received data and sent nothing back for this long: send an empty datagram, so the sender knows the session
   * still works (WireGuard's passive keepalive). Below silenceBeforeRehandshakeMs, so an idle pair never rekeys.
   */
  keepaliveMs: number;
  /** Datagrams held per peer while its handshake runs; the oldest go first (the engine retransmits anyway). */
  queueMax: number;
}

export const DEFAULT_TIMING: SessionTiming = {
  rekeyAfterMs: 120_000,
  rejectAfterMs: 180_000,
  rekeyAfterMessages: 2 ** 20,
  rejectAfterMessages: 2 ** 32 - 2 ** 16,
  // Under 40% loss a handshake round trip fails 64% of the time; 1 s, doubling, keeps the first message waiting
  // a few seconds at worst rather than WireGuard's fixed 5 s per try.
  retryFirstMs: 1_000,
  retryMaxMs: 8_000,
  retryJitterFraction: 0.25,
  initiationMinGapMs: 200,
  handshakeGiveUpMs: 90_000,
  previousGraceMs: 10_000,
  // Well within the engine's give-up (30 tries, ~8 s at 40% loss), so a peer that lost the session is found
  // before the engine gives up on it; the keepalive answers quiet data before this fires.
  silenceBeforeRehandshakeMs: 5_000,
  keepaliveMs: 2_000,
  queueMax: 256,
};

/** The wait before handshake retry number `tries` (1 = the first retry), jittered by two random bytes. */
export function retryDelayMs(timing: SessionTiming, tries: number, random: Uint8Array): number {
  const delay = Math.min(timing.retryMaxMs, timing.retryFirstMs * 2 ** Math.max(0, tries - 1));
  const fraction = ((random[0] ?? 0) * 256 + (random[1] ?? 0)) / 65536;
  return delay + Math.floor(delay * timing.retryJitterFraction * fraction);
}
