/**
 * Fuzzing a live node over UDP (the full 100,000-datagram run is `npx tsx scripts/fuzz.ts --count 100000`):
 * random and mutated datagrams, each one accounted for; no crash, no unhandled rejection, bounded memory, and the
 * honest peer's messages all delivered, once, during the flood.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatFuzzReport, runFuzz } from "./helpers/fuzz.ts";

const COUNT = Number(process.env.CHATNODE_FUZZ_COUNT ?? 20_000);

test(`${COUNT} fuzzed datagrams: every one rejected with a reason or a harmless replay; honest traffic flows`, {
  timeout: 120_000,
}, async (t) => {
  const report = await runFuzz({ count: COUNT, seed: Number(process.env.CHATNODE_FUZZ_SEED ?? 20_240_601) });
  for (const line of formatFuzzReport(report).split("\n")) t.diagnostic(line);
  assert.equal(report.target.crashes, 0, "the node never crashed");
  assert.equal(report.target.unhandledRejections, 0, "no unhandled rejection");
  assert.equal(report.lostInKernel, 0, "every datagram reached the node's socket");
  assert.equal(report.received, COUNT);
  assert.equal(
    report.unaccounted,
    0,
    "every datagram is a rejection with a reason, a duplicate or a replayed ACK",
  );
  assert.equal(report.duplicates, report.exactReplays.dataToTarget, "each replayed DATA is one duplicate");
  assert.equal(report.replayedAcks, report.exactReplays.ackToTarget);
  assert.equal(
    report.rejected,
    COUNT - report.exactReplays.dataToTarget - report.exactReplays.ackToTarget,
    "everything else was rejected",
  );
  assert.equal(report.rejectedByReason["replayed-hello"] ?? 0, report.exactReplays.helloToTarget);
  assert.equal(report.accepted, 0, "no fuzz datagram was delivered as a message");
  assert.ok(report.honest.sent > 0);
  assert.equal(
    report.honest.delivered,
    report.honest.sent,
    "every honest message delivered during the flood",
  );
  assert.equal(report.honest.shownTwice, 0);
  assert.equal(report.honest.acked, report.honest.sent, "and acknowledged");
  assert.equal(report.honest.rejected, 0, "no honest datagram was rejected");
  // Caps: nothing a stranger sends is kept (RECV_WINDOW bounds what even a peer can make us hold).
  assert.ok(
    report.target.heapAfterGcAfterBytes - report.target.heapAfterGcBeforeBytes < 16 * 1024 * 1024,
    "the heap after GC grew by less than 16 MB",
  );
  assert.ok(report.target.peakRssBytes < 400 * 1024 * 1024, "peak RSS under 400 MB");
});
