/**
 * Fault injection decisions, made from an injected Rng so a seeded run replays exactly. Rates are fractions in
 * [0, 1]; the runtime (src/node/faulty-socket.ts) and the crypto wrapper (faulty-crypto.ts) act on them.
 */
import type { Rng } from "../engine/ports.ts";

export interface FaultConfig {
  /** Outgoing datagrams dropped. */
  lossOut: number;
  /** Incoming datagrams dropped. */
  lossIn: number;
  /** Outgoing DATA datagrams sent twice (the same msgId and seq: the receiver must ignore the copy). */
  duplicate: number;
  /** Outgoing DATA datagrams whose signature gets one bit flipped. */
  badSignature: number;
  /** Private messages sealed to a key that is not the recipient's. */
  wrongKey: number;
  /** Every outgoing datagram is held this long... */
  delayMs: number;
  /** ...plus a uniform random extra in [0, jitterMs), which reorders datagrams. */
  jitterMs: number;
  /** Drop everything, both ways. */
  blackhole: boolean;
}

export const NO_FAULTS: FaultConfig = {
  lossOut: 0,
  lossIn: 0,
  duplicate: 0,
  badSignature: 0,
  wrongKey: 0,
  delayMs: 0,
  jitterMs: 0,
  blackhole: false,
};

export interface FaultCounters {
  droppedOut: number;
  droppedIn: number;
  duplicated: number;
  badSignatures: number;
  wrongKeys: number;
  delayed: number;
  blackholed: number;
}

export function newFaultCounters(): FaultCounters {
  return {
    droppedOut: 0,
    droppedIn: 0,
    duplicated: 0,
    badSignatures: 0,
    wrongKeys: 0,
    delayed: 0,
    blackholed: 0,
  };
}

export type FaultName = keyof FaultConfig;

/** Parses "loss", "0.4" style settings from flags and the /fault command; throws a readable RangeError. */
export function parseFault(name: string, value: string): Partial<FaultConfig> {
  const rate = (key: keyof FaultConfig) => {
    const n = Number(value.endsWith("%") ? Number(value.slice(0, -1)) / 100 : value);
    if (!Number.isFinite(n) || n < 0 || n > 1)
      throw new RangeError(`${name} must be a rate from 0 to 1 (or 0% to 100%)`);
    return { [key]: n } as Partial<FaultConfig>;
  };
  const ms = (key: keyof FaultConfig) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 60_000)
      throw new RangeError(`${name} must be whole milliseconds, 0 to 60000`);
    return { [key]: n } as Partial<FaultConfig>;
  };
  switch (name) {
    case "loss": {
      const r = rate("lossOut").lossOut as number;
      return { lossOut: r, lossIn: r };
    }
    case "loss-out":
      return rate("lossOut");
    case "loss-in":
      return rate("lossIn");
    case "duplicate":
      return rate("duplicate");
    case "bad-signature":
      return rate("badSignature");
    case "wrong-key":
      return rate("wrongKey");
    case "delay":
      return ms("delayMs");
    case "jitter":
      return ms("jitterMs");
    case "blackhole": {
      if (!["on", "off", "true", "false", "1", "0"].includes(value))
        throw new RangeError("blackhole must be on or off");
      return { blackhole: value === "on" || value === "true" || value === "1" };
    }
    default:
      throw new RangeError(
        `unknown fault "${name}" (one of: loss, loss-out, loss-in, duplicate, bad-signature, wrong-key, delay, jitter, blackhole)`,
      );
  }
}

export const FAULT_NAMES = [
  "loss",
  "loss-out",
  "loss-in",
  "duplicate",
  "bad-signature",
  "wrong-key",
  "delay",
  "jitter",
  "blackhole",
] as const;

/** True with probability `rate`. */
export function roll(rng: Rng, rate: number): boolean {
  return rate > 0 && rng.nextU32() / 2 ** 32 < rate;
}
