import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { before, describe, test } from "node:test";
import fc from "fast-check";
import { ATTACKS } from "../../sim/adversary.ts";
import type { OutboxEntry } from "../../sim/cluster.ts";
import { Checker, type Violation } from "../../sim/invariants.ts";
import { type LinkProfile, VirtualNetwork } from "../../sim/network.ts";
import { classOf, EXIT_CODES, replayCommand } from "../../sim/run.ts";
import { chooseOptions, runSeed, type SeedResult } from "../../sim/scenario.ts";
import type { MsgId, PeerId } from "../../src/engine/types.ts";
import { SeededRng } from "../../src/faults/seeded-rng.ts";

/** A fixed set of seeds, under the default fault profile; ~0.1 s each. */
const SEEDS = Array.from({ length: 150 }, (_, i) => i + 1);

function describeFailures(results: readonly SeedResult[], invariant: string): string {
  const lines: string[] = [];
  for (const r of results) {
    for (const v of r.violations.filter((x) => x.invariant.startsWith(invariant)).slice(0, 2))
      lines.push(`seed ${r.seed} (${replayCommand(r.seed, [])}): ${v.detail.slice(0, 400)} [step ${v.step}]`);
  }
  return lines.slice(0, 10).join("\n");
}

describe("simulated cluster under 40% loss, duplication, reordering, corruption, partitions and crashes", () => {
  let results: SeedResult[] = [];
  before(() => {
    results = SEEDS.map((seed) => runSeed(seed));
  });

  const invariants = [
    ["I1", "delivers exactly the kind, text and sentAt that the author sent"],
    ["I2", "delivers no message twice at one receiver, across restarts too"],
    ["I3", "delivers nothing its claimed author did not send to that receiver"],
    ["I4", "delivers each sender's messages in the order they were sent"],
    ["I5", "resolves every message within the give-up bound of its last frame's first transmission"],
    ["I6", "reports `delivered` only for messages the receiver has delivered"],
    ["I7", "delivers everything within heartbeat + give-up bound after the network heals"],
    ["I8", "never has an honest message refused by its recipient"],
  ] as const;
  for (const [id, behaviour] of invariants) {
    test(`${id}: ${behaviour}`, () => {
      const failing = results.filter((r) => r.violations.some((v) => v.invariant.startsWith(id)));
      assert.equal(
        failing.length,
        0,
        `${failing.length} of ${SEEDS.length} seeds:\n${describeFailures(failing, id)}`,
      );
    });
  }

  test("neither the engine nor the simulator throws", () => {
    const failing = results.filter((r) => r.violations.some((v) => v.cls === "crash"));
    assert.equal(failing.length, 0, describeFailures(failing, ""));
  });

  test("the seeds really exercise every fault and some multi-fragment, private and crashed traffic", () => {
    const total = (f: (r: SeedResult) => number) => results.reduce((sum, r) => sum + f(r), 0);
    for (const kind of [
      "loss",
      "partition",
      "duplicate",
      "corrupt",
      "reorder",
      "crash",
      "power-loss",
      "restart",
      "blackhole",
    ] as const)
      assert.ok(total((r) => r.faults[kind]) > 0, `no ${kind} was injected`);
    assert.ok(total((r) => r.copies) > 1_000);
    assert.ok(total((r) => r.privateMessages) > 100);
    assert.ok(total((r) => r.multiFragmentMessages) > 10);
    assert.ok(results.some((r) => r.options.largePpm > 0 && r.multiFragmentMessages > 0));
    assert.equal(
      total((r) => r.deliveries),
      total((r) => r.copies),
    );
    assert.ok(total((r) => r.engine.giveUps) > 0, "no message was ever given up");
    for (const attack of ATTACKS)
      assert.ok(total((r) => r.faults[`attack-${attack}`] ?? 0) > 0, `the adversary never tried ${attack}`);
    for (const reason of ["stale-epoch", "inconsistent-fragments", "bad-signature"] as const)
      assert.ok(total((r) => r.engine.rejected[reason] ?? 0) > 0, `nothing was rejected as ${reason}`);
    // Below the engine, the session layer refuses corrupted, replayed and stale datagrams.
    for (const reason of ["bad-aead", "replayed", "unknown-index"])
      assert.ok(
        total((r) => r.sessions.refused[reason] ?? 0) > 0,
        `no session refused a datagram as ${reason}`,
      );
    assert.ok(total((r) => r.sessions.established) > total((r) => r.options.nodes), "too few sessions made");
    // Some seeds rekey every few seconds: keys are replaced and erased under the faults as well.
    const rekeying = results.filter((r) => r.options.rekeyMs > 0);
    assert.ok(rekeying.length > 10, "no seed rekeys fast");
    assert.ok(
      rekeying.reduce((n, r) => n + r.sessions.keysErased, 0) > rekeying.length * 4,
      "fast-rekeying seeds erased too few keys",
    );
    assert.ok(results.some((r) => r.options.nodes >= 6));
  });
});

describe("determinism", () => {
  test("the same seed gives the same trace, and another seed a different one", () => {
    const forced = { crashes: 2, partitions: 2, blackholes: 1 };
    const a = runSeed(7, forced, { hash: true });
    const b = runSeed(7, forced, { hash: true });
    const c = runSeed(8, forced, { hash: true });
    assert.ok(a.traceHash);
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual(a.faults, b.faults);
    assert.equal(a.steps, b.steps);
    assert.notEqual(a.traceHash, c.traceHash);
  });

  test("forcing one option leaves every other choice of the seed as it was", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 2, max: 50 }), (seed, nodes) => {
        const chosen = chooseOptions(seed);
        assert.deepEqual(chooseOptions(seed, { nodes }), { ...chosen, nodes });
      }),
    );
  });
});

describe("virtual network", () => {
  const clean: LinkProfile = { lossPpm: 0, duplicatePpm: 0, corruptPpm: 0, delayMs: 1, jitterMs: 50 };
  const links = (n: number, p: LinkProfile) => Array.from({ length: n * n }, () => p);

  test("delivers datagrams in order of delivery time, whatever order they were sent in", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(1_000), fc.nat(2), fc.nat(2)), { maxLength: 200 }),
        fc.nat(),
        (sends, seed) => {
          const net = new VirtualNetwork(new SeededRng(seed), 3, links(3, clean));
          for (const [at, from, to] of [...sends].sort((x, y) => x[0] - y[0]))
            net.send(at, from, to, Uint8Array.of(at & 255));
          let last = Number.NEGATIVE_INFINITY;
          let count = 0;
          for (let d = net.pop(); d; d = net.pop()) {
            assert.ok(d.at >= last);
            last = d.at;
            count++;
          }
          assert.equal(count, sends.length);
        },
      ),
    );
  });

  test("drops 40% of datagrams at --loss 400000, and corrupts copies, never the sender's buffer", () => {
    const net = new VirtualNetwork(
      new SeededRng(1),
      2,
      links(2, { ...clean, lossPpm: 400_000, corruptPpm: 100_000 }),
    );
    const bytes = new Uint8Array(64);
    for (let i = 0; i < 20_000; i++) net.send(i, 0, 1, bytes);
    assert.ok(net.faults.loss > 7_700 && net.faults.loss < 8_300, `lost ${net.faults.loss} of 20000`);
    assert.ok(bytes.every((b) => b === 0));
    let flipped = 0;
    for (let d = net.pop(); d; d = net.pop()) if (d.bytes.some((b) => b !== 0)) flipped++;
    assert.equal(flipped, net.faults.corrupt);
  });

  test("partitions cut links until they are joined; a crash drops what is in flight to the node", () => {
    const net = new VirtualNetwork(new SeededRng(2), 3, links(3, clean));
    net.split([0], [1, 2], true);
    net.send(0, 0, 1, Uint8Array.of(1));
    net.send(0, 1, 0, Uint8Array.of(2));
    assert.equal(net.faults.partition, 1);
    net.join([0], [1, 2], true);
    net.send(0, 0, 2, Uint8Array.of(3));
    net.send(0, 1, 2, Uint8Array.of(4));
    net.dropInFlightTo(2);
    assert.equal(net.faults["crash-drop"], 2);
    assert.equal(net.pop()?.to, 0);
    assert.equal(net.pop(), undefined);
  });
});

describe("the invariant checker catches broken promises", () => {
  const ids = ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"] as PeerId[];
  const msgId = "11".repeat(16) as MsgId;
  const entry = (): OutboxEntry => ({
    msgId,
    kind: "private",
    text: "hello",
    sentAt: 5,
    recipients: new Map([[ids[1] as PeerId, "pending"]]),
  });
  const message = (text: string) =>
    ({ type: "message", msgId, from: ids[0] as PeerId, kind: "private", text, sentAt: 5 }) as const;
  const invariantsOf = (c: Checker) => c.violations.map((v: Violation) => v.invariant.slice(0, 2));

  test("a changed text (I1), a second delivery (I2) and a forged author (I3)", () => {
    const c = new Checker(ids, 7_500, 0);
    c.onSend(1, 0, 0, entry());
    c.onEvent(2, 1, 1, message("hellO"));
    c.onEvent(3, 2, 1, message("hello"));
    c.onEvent(4, 3, 0, {
      type: "message",
      msgId,
      from: ids[1] as PeerId,
      kind: "private",
      text: "x",
      sentAt: 5,
    });
    assert.deepEqual(invariantsOf(c), ["I1", "I2", "I3"]);
  });

  test("a `delivered` before the receiver delivered (I6), and a late resolution (I5)", () => {
    const c = new Checker(ids, 7_500, 0);
    c.onSend(1, 0, 0, entry());
    c.onDataFrame(2, 10, 0, { recipient: ids[1] as PeerId, msgId, seq: 0, fragCount: 1 });
    c.afterStep(3, 7_510);
    c.afterStep(4, 7_511);
    c.onEvent(5, 7_600, 0, { type: "delivered", msgId, to: ids[1] as PeerId, tries: 1 });
    assert.deepEqual(invariantsOf(c), ["I5", "I6"]);
  });

  test("give-ups on an undisturbed link (I9), but not within giveUpBoundMs of a partition", () => {
    const waiting = () =>
      ({ type: "waiting", msgId, to: ids[1] as PeerId, cause: "no-answer", tries: 30 }) as const;
    const calm = new Checker(ids, 7_500, 0);
    calm.onSend(1, 0, 0, entry());
    calm.onEvent(2, 10_000, 0, waiting());
    calm.checkNeedlessGiveUps(3, 10_000);
    assert.deepEqual(invariantsOf(calm), [], "one give-up may be bad luck");
    calm.onEvent(4, 20_000, 0, waiting());
    calm.checkNeedlessGiveUps(5, 20_000);
    assert.deepEqual(invariantsOf(calm), ["I9"]);

    const cut = new Checker(ids, 7_500, 0);
    cut.onSend(1, 0, 0, entry());
    cut.onDisruption(1_000, "partition 0", (s, r) => s !== r);
    cut.onEvent(2, 5_000, 0, waiting()); // during the partition
    cut.onDisruption(6_000, "partition 0");
    cut.onEvent(3, 10_000, 0, waiting()); // 4 s after it healed: its frames may date from the cut
    cut.checkNeedlessGiveUps(4, 10_000);
    assert.deepEqual(invariantsOf(cut), []);
  });

  test("a skipped earlier message (I4) and a message that never arrives (I7)", () => {
    const c = new Checker(ids, 7_500, 0);
    const second = { ...entry(), msgId: "22".repeat(16) as MsgId };
    c.onSend(1, 0, 0, entry());
    c.onSend(2, 0, 0, second);
    c.onEvent(3, 1, 1, { ...message("hello"), msgId: second.msgId });
    c.checkOrder(4, 2);
    c.checkLiveness(5, 3, 0, () => 0);
    assert.deepEqual(invariantsOf(c), ["I4", "I7", "I7"]);
    assert.equal(classOf(c.violations), "correctness");
  });
});

describe("command line", () => {
  test("a replay command keeps the forced options and drops the range and job flags", () => {
    assert.equal(
      replayCommand(42, ["--seeds", "100", "--loss", "100000", "--jobs=2", "--nodes=9", "--real-crypto"]),
      "npm run sim -- --seed 42 --loss 100000 --nodes=9 --real-crypto",
    );
  });

  test("prints a summary and exits with the code of the seed's violation class", () => {
    const seed = 3;
    const forced = { nodes: 3, messages: 3 };
    const expected = classOf(runSeed(seed, forced).violations);
    const run = spawnSync(
      process.execPath,
      ["--import", "tsx", "sim/run.ts", "--seed", String(seed), "--nodes", "3", "--messages", "3"],
      { encoding: "utf8" },
    );
    assert.match(run.stdout, /ChatNode simulation summary/);
    assert.match(run.stdout, /faults {6}loss=/);
    assert.equal(run.status, expected ? EXIT_CODES[expected] : 0, run.stderr);
    if (expected) assert.match(run.stdout, /replay: npm run sim -- --seed 3 --nodes 3 --messages 3/);
  });
});
