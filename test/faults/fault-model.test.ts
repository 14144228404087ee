/**
 * The fault model's one unit and one generator: a ppm decision happens at its rate over a seeded stream, the stream
 * replays from its seed, and every way a person types a fault setting becomes ppm or a one-line reason.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "commander";
import fc from "fast-check";
import { addChatOptions, type ChatFlags, faultsFromFlags } from "../../src/cli/chat-options.ts";
import { FAULT_NAMES, faultsAsFractions, parseFault } from "../../src/faults/parse.ts";
import { delayOf, flipBits, NO_FAULTS } from "../../src/faults/plan.ts";
import { below, chance, PPM, parseRatePpm } from "../../src/faults/ppm.ts";
import { SeededRng } from "../../src/faults/seeded-rng.ts";

const DRAWS = 20_000;

describe("the ppm decision", () => {
  it("comes true at its rate over a seeded stream, within six standard deviations", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: PPM }), (seed, ppm) => {
        const rng = new SeededRng(seed);
        let hits = 0;
        for (let i = 0; i < DRAWS; i++) if (chance(rng, ppm)) hits++;
        // Six standard deviations, plus three hits for the rates so small that the normal approximation fails.
        const expected = (DRAWS * ppm) / PPM;
        const bound = 6 * Math.sqrt(expected * (1 - ppm / PPM)) + 3;
        assert.ok(Math.abs(hits - expected) <= bound, `${hits} of ${DRAWS} at ${ppm} ppm (seed ${seed})`);
      }),
      { numRuns: 60 },
    );
  });

  it("never at 0 and always at 1,000,000, drawing once either way so later decisions do not shift", () => {
    const a = new SeededRng(9);
    const b = new SeededRng(9);
    for (let i = 0; i < 1000; i++) {
      assert.equal(chance(a, 0), false);
      assert.equal(chance(a, PPM), true);
      b.nextU32();
      b.nextU32();
    }
    assert.equal(a.nextU32(), b.nextU32());
  });

  it("below(n) stays in [0, n) and a jittered delay in [delayMs, delayMs + jitterMs)", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 2 ** 32 }), fc.nat(1000), (seed, n, jitterMs) => {
        const rng = new SeededRng(seed);
        const x = below(rng, n);
        assert.ok(Number.isInteger(x) && x >= 0 && x < n);
        const d = delayOf(rng, { delayMs: 5, jitterMs });
        assert.ok(d >= 5 && d < 5 + Math.max(1, jitterMs));
      }),
    );
  });

  it("a corrupted copy differs from the original in 1..bitsMax bits and leaves the original alone", () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.integer({ min: 1, max: 8 }),
        (seed, bytes, bitsMax) => {
          const before = Uint8Array.from(bytes);
          const out = flipBits(new SeededRng(seed), bytes, bitsMax);
          assert.deepEqual(bytes, before);
          let flipped = 0;
          for (let i = 0; i < out.length; i++) {
            for (let x = (out[i] as number) ^ (bytes[i] as number); x; x &= x - 1) flipped++;
          }
          assert.ok(flipped >= 1 && flipped <= bitsMax, `${flipped} bits`);
        },
      ),
    );
  });
});

describe("the seeded generator", () => {
  it("replays from its seed, and seeds that differ only above 32 bits or in sign give other streams", () => {
    const take = (seed: number) => {
      const rng = new SeededRng(seed);
      return Array.from({ length: 8 }, () => rng.nextU32());
    };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
        assert.deepEqual(take(seed), take(seed));
        assert.notDeepEqual(take(seed), take(seed + 2 ** 32));
        if (seed > 0) assert.notDeepEqual(take(seed), take(-seed));
      }),
    );
    assert.throws(() => new SeededRng(1.5), /seed must be an integer/);
    assert.throws(() => new SeededRng(2 ** 53), /seed must be an integer/);
  });
});

describe("fault settings as people type them", () => {
  const RATE_NAMES = ["loss", "loss-out", "loss-in", "duplicate", "bad-signature", "wrong-key"] as const;

  it("a rate written as ppm, a percentage or a fraction becomes the same parts per million", () => {
    fc.assert(
      fc.property(fc.constantFrom(...RATE_NAMES), fc.integer({ min: 0, max: PPM }), (name, ppm) => {
        const forms = [`${ppm}ppm`, `${ppm / 10_000}%`, `${ppm / PPM}`];
        const parsed = forms.map((text) => parseFault(name, text));
        for (const p of parsed) assert.deepEqual(p, parsed[0]);
        for (const value of Object.values(parsed[0] as object)) assert.equal(value, ppm);
      }),
    );
    assert.deepEqual(parseFault("loss", "30%"), { lossOutPpm: 300_000, lossInPpm: 300_000 });
  });

  it("rejects a bad rate, duration or switch with one line that names the setting", () => {
    const badRate = fc.oneof(
      fc.double({ min: 1.000001, max: 1e9, noNaN: true }).map(String),
      fc.double({ min: -1e9, max: -1e-6, noNaN: true }).map(String),
      fc.double({ min: 100.0001, max: 1e6, noNaN: true }).map((x) => `${x}%`),
      fc.integer({ min: PPM + 1 }).map((x) => `${x}ppm`),
      fc.constantFrom("", " ", "lots", "NaN", "Infinity", "0.3.1", "%", "ppm", "--1"),
    );
    const badMs = fc.oneof(
      fc.integer({ min: 60_001 }).map(String),
      fc.integer({ max: -1 }).map(String),
      fc.constantFrom("", "1.5", "soon", "1e99"),
    );
    const oneLine = (name: string, text: string, run: () => unknown) => {
      assert.throws(run, (error: unknown) => {
        assert.ok(error instanceof RangeError, `${name} ${JSON.stringify(text)}: ${String(error)}`);
        assert.match(error.message, new RegExp(`^${name} must be `));
        assert.doesNotMatch(error.message, /\n/);
        return true;
      });
    };
    fc.assert(
      fc.property(fc.constantFrom(...RATE_NAMES), badRate, (name, text) =>
        oneLine(name, text, () => parseFault(name, text)),
      ),
    );
    fc.assert(
      fc.property(fc.constantFrom("delay", "jitter"), badMs, (name, text) =>
        oneLine(name, text, () => parseFault(name, text)),
      ),
    );
    oneLine("blackhole", "maybe", () => parseFault("blackhole", "maybe"));
    assert.throws(() => parseFault("gremlins", "1"), /unknown fault "gremlins" \(one of: loss, /);
    assert.throws(() => parseRatePpm("2", "--loss"), /^RangeError: --loss must be a rate/);
  });

  it("the chat flags reach the node in ppm, and a bad one is a usage error naming the flag", () => {
    const parse = (...args: string[]) => {
      const cmd = addChatOptions(new Command())
        .exitOverride()
        .configureOutput({ writeErr: () => {} });
      cmd.parse(args, { from: "user" });
      return faultsFromFlags(cmd.opts<ChatFlags>());
    };
    assert.deepEqual(
      parse("--loss", "25%", "--loss-out", "0.1", "--duplicate", "1500ppm", "--jitter", "40"),
      {
        lossOutPpm: 100_000,
        lossInPpm: 250_000,
        duplicatePpm: 1500,
        jitterMs: 40,
      },
    );
    for (const [flag, value] of [
      ["--loss", "7"],
      ["--wrong-key", "-0.1"],
      ["--delay", "1.5"],
    ] as const) {
      assert.throws(
        () => parse(flag, value),
        (error: Error) =>
          /option '--[a-z-]+ <[a-z]+>' argument '.*' is invalid\. [a-z-]+ must be /.test(error.message),
        `${flag} ${value}`,
      );
    }
  });

  it("--json reports the settings as fractions, as it always has", () => {
    assert.deepEqual(faultsAsFractions({ ...NO_FAULTS, lossInPpm: 250_000, delayMs: 3 }), {
      lossOut: 0,
      lossIn: 0.25,
      duplicate: 0,
      badSignature: 0,
      wrongKey: 0,
      delayMs: 3,
      jitterMs: 0,
      blackhole: false,
    });
    assert.equal(FAULT_NAMES.length, 9);
  });
});
