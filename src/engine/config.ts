import type { RtoConfig } from "./rto.ts";
import type { Millis } from "./types.ts";

export interface EngineConfig extends RtoConfig {
  /** A frame is given up after this many transmissions... */
  triesMax: number;
  /** ...or once this long has passed since its first transmission, whichever comes first. */
  giveUpMs: Millis;
  /** Frames in flight (sent, not yet acknowledged) per peer. */
  windowFrames: number;
  /** Tries of a frame sent as one datagram; every later try sends two copies (docs/PROTOCOL.md §9.7). */
  singleCopyTries: number;
  /** Frames queued per peer beyond the window before `send` refuses. */
  queueFramesMax: number;
  /** Interval of the HELLO heartbeat to every peer. */
  heartbeatMs: Millis;
  /** A peer not heard from for this long is offline. */
  offlineAfterMs: Millis;
  /** Messages kept per peer for offline delivery after a give-up; the oldest beyond it are dropped from memory (the runtime's outbox still holds them). */
  parkedMax: number;
  /** The wait after the first probe of a peer not heard from; each further probe waits twice as long... */
  probeMsMin: Millis;
  /** ...up to this. */
  probeMsMax: Millis;
  /** Probes (HELLOs to peers not heard from) per second across all peers: what a node spends on the silent. */
  probesPerSecondMax: number;
  /** A message still waiting for a recipient this long after it was written fails for that recipient: `expired`. */
  expireMs: Millis;
}

/**
 * Defaults sized for a LAN. A try succeeds with probability 0.6 × 0.6 = 0.36 at 40% loss both ways, so all 30
 * tries fail for one frame in 1 / 0.64^30 ≈ 660,000; while the peer acknowledges anything of ours the tries come
 * at the plain RTO (a few ms on a LAN). With total loss the first 6 timeouts wait the plain RTO, then the wait
 * doubles: after a 3 ms RTO the 30 tries take 7 × 3 + 6 + 12 + … + 192 + 17 × 200 ms ≈ 3.8 s (up to 25% more with
 * jitter): giveUpBoundMs() is 7.5 s.
 */
export const DEFAULT_CONFIG: EngineConfig = {
  rtoMsMin: 2,
  rtoMsMax: 200,
  rtoMsInitial: 100,
  linearTimeouts: 6,
  triesMax: 30,
  giveUpMs: 10_000,
  windowFrames: 64,
  singleCopyTries: 2,
  queueFramesMax: 8192,
  heartbeatMs: 5_000,
  offlineAfterMs: 16_000,
  parkedMax: 1024,
  // Probes at 0, 1, 3, 7, 15, 31 s, then every 30 s: a peer that never starts costs 9 HELLOs (549 bytes) in its
  // first two minutes and 2 a minute after; 16 a second in all is 976 bytes/s of HELLOs, whatever the contact list.
  probeMsMin: 1_000,
  probeMsMax: 30_000,
  probesPerSecondMax: 16,
  expireMs: 7 * 24 * 3600_000,
};

/**
 * The longest a frame can stay unresolved after its first transmission: every wait between tries (and the last
 * wait before the give-up) is at most rtoMsMax stretched by 25% of jitter, and the time bound cuts it short.
 */
export function giveUpBoundMs(c: EngineConfig): Millis {
  const longestWait = c.rtoMsMax * 1.25;
  return Math.min(c.giveUpMs + longestWait, c.triesMax * longestWait);
}
