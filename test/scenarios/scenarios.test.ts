/**
 * The nine fault scenarios of `chatnode scenarios`, on free ports: ten real nodes on UDP with SQLite stores and
 * real crypto, plus child processes for the crash scenario. Each scenario is reported as its own subtest with
 * every mismatch; afterwards no child process may be left running and the temporary directory must be gone.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { liveChildren } from "../../src/scenarios/child.ts";
import { formatTable, makeStyle } from "../../src/scenarios/report.ts";
import { runScenarios, SCENARIOS, SetupError } from "../../src/scenarios/runner.ts";

test("all nine fault scenarios pass on free ports", { timeout: 120_000 }, async (t) => {
  const report = await runScenarios({ basePort: 0 });
  assert.deepEqual(
    report.scenarios.map((s) => s.id),
    SCENARIOS.map((s) => s.id),
  );
  for (const r of report.scenarios) {
    await t.test(`${r.id}. ${r.title}`, () => {
      const mismatches = r.checks
        .filter((c) => !c.ok)
        .map((c) => `${c.label}: expected ${c.expected}, got ${c.actual}`);
      assert.deepEqual(mismatches, [], r.error ?? undefined);
      assert.equal(r.error, null);
      assert.ok(r.checks.length > 0, "a scenario checks something");
    });
  }
  assert.equal(report.ok, true, formatTable(report, makeStyle(false)));
  assert.equal(liveChildren(), 0, "no child process outlives the run");
  assert.equal(existsSync(report.dataDir), false, "the temporary data directory is removed");
});

test("a busy base port is refused with a hint to use --base-port 0, leaving nothing behind", async () => {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const busy = socket.address().port;
  try {
    await assert.rejects(
      runScenarios({ basePort: busy, only: 8 }),
      (error: unknown) =>
        error instanceof SetupError &&
        error.message.includes(String(busy)) &&
        error.message.includes("--base-port 0"),
    );
    assert.equal(liveChildren(), 0);
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
});

test("the summary table has no escape codes without colour", () => {
  const table = formatTable(
    {
      ok: false,
      totalMs: 1234,
      host: "127.0.0.1",
      ports: [],
      dataDir: "/tmp/x",
      dataDirKept: false,
      scenarios: [
        {
          id: 3,
          title: "Invalid signature",
          ok: false,
          timeMs: 340,
          error: "rejections bad-signature: expected 11, got 10",
          checks: [],
          notes: [],
          sent: 4,
          expected: 20,
          delivered: 20,
          retransmits: 10,
          duplicatesIgnored: 0,
          rejections: { "bad-signature": 10 },
          giveUps: 0,
        },
      ],
    },
    makeStyle(false),
  );
  assert.equal(table.includes("\u001b"), false, "no escape code");
  assert.match(table, /FAIL/);
  assert.match(table, /10 \(bad-signature 10\)/);
  assert.match(table, /1 of 1 scenarios FAILED/);
});
