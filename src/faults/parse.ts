/**
 * The node's fault settings as people type them (the --loss … flags, the /fault command) and as --json reports them:
 * the one place where their rates, written as fractions or percentages, become parts per million and back.
 */
import type { FaultConfig } from "./plan.ts";
import { fractionOf, parseRatePpm } from "./ppm.ts";

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

type RateKey = "lossOutPpm" | "lossInPpm" | "duplicatePpm" | "badSignaturePpm" | "wrongKeyPpm";

const RATES: Record<string, readonly RateKey[]> = {
  loss: ["lossOutPpm", "lossInPpm"],
  "loss-out": ["lossOutPpm"],
  "loss-in": ["lossInPpm"],
  duplicate: ["duplicatePpm"],
  "bad-signature": ["badSignaturePpm"],
  "wrong-key": ["wrongKeyPpm"],
};

/** Parses one setting ("loss", "30%"); throws a RangeError whose message is one line a user can act on. */
export function parseFault(name: string, value: string): Partial<FaultConfig> {
  const rateKeys = RATES[name];
  if (rateKeys) {
    const ppm = parseRatePpm(value, name);
    return Object.fromEntries(rateKeys.map((key) => [key, ppm]));
  }
  switch (name) {
    case "delay":
      return { delayMs: parseMs(name, value) };
    case "jitter":
      return { jitterMs: parseMs(name, value) };
    case "blackhole": {
      if (!["on", "off", "true", "false", "1", "0"].includes(value))
        throw new RangeError("blackhole must be on or off");
      return { blackhole: value === "on" || value === "true" || value === "1" };
    }
    default:
      throw new RangeError(`unknown fault "${name}" (one of: ${FAULT_NAMES.join(", ")})`);
  }
}

function parseMs(name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0 || n > 60_000)
    throw new RangeError(`${name} must be whole milliseconds, 0 to 60000 (got "${value}")`);
  return n;
}

/** The settings in the shape --json has always reported them: rates as fractions of 1, the old key names. */
export function faultsAsFractions(f: FaultConfig) {
  return {
    lossOut: fractionOf(f.lossOutPpm),
    lossIn: fractionOf(f.lossInPpm),
    duplicate: fractionOf(f.duplicatePpm),
    badSignature: fractionOf(f.badSignaturePpm),
    wrongKey: fractionOf(f.wrongKeyPpm),
    delayMs: f.delayMs,
    jitterMs: f.jitterMs,
    blackhole: f.blackhole,
  };
}
