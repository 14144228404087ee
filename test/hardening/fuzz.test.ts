/**
 * Fuzzing a live node over UDP (the full 100,000-datagram run is `npx tsx scripts/fuzz.ts --count 100000`), in two
 * modes (helpers/fuzz.ts): on the wire, with no keys (random and mutated sealed datagrams, forged handshakes, the
 * old clear-text format), and inside a peer's session, as one holding that peer's keys (random and mutated engine
 * datagrams). Each one accounted for: refused by the session layer, or rejected by the engine, with a reason (or a
 * harmless replay of the key holder's own); no crash, no unhandled rejection, bounded memory, and the honest
 * peer's messages all delivered, once, during the flood.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatFuzzReport, runFuzz } from "./helpers/fuzz.ts";

const COUNT = Number(process.env.CHATNODE_FUZZ_COUNT ?? 20_000);

test(`${COUNT} fuzzed datagrams: every one refused by the session layer or rejected by the engine with a reason, or a harmless replay; honest traffic flows`, {
  timeout: 120_000,
}, async (t) => {
  const report = await runFuzz({ count: COUNT, seed: Number(process.env.CHATNODE_FUZZ_SEED ?? 20_240_601) });
  for (const line of formatFuzzReport(report).split("\n")) t.diagnostic(line);
  assert.equal(report.target.crashes, 0, "the node never crashed");
  assert.equal(report.target.unhandledRejections, 0, "no unhandled rejection");
  assert.equal(report.lostInKernel, 0, "every datagram reached the node's socket");
  assert.equal(report.received, COUNT);
  assert.ok(report.wire.sent > 0 && report.inner.sent > 0, "both modes ran");
  // On the wire: nothing without keys gets past the session layer.
  assert.equal(report.wire.unaccounted, 0, "every wire datagram refused by the session layer");
  assert.equal(report.wire.opened, 0, "no wire datagram opened by a session");
  // The engine saw none; what a user hears of is the old protocol and handshakes by keys not pinned.
  assert.equal(
    report.wire.reported,
    (report.wire.refusedByReason["protocol-v1"] ?? 0) +
      (report.wire.refusedByReason["protocol-v2"] ?? 0) +
      (report.wire.refusedByReason["unknown-key"] ?? 0),
    "the engine saw none",
  );
  // Inside carol's session: the engine's checks.
  assert.equal(
    report.inner.unaccounted,
    0,
    "every inner DATA (or undecodable datagram) is a rejection with a reason or a duplicate",
  );
  // Carol's exact replays are not each a duplicate any more: the signature covers a DATA's message, not its stream
  // fields, and the session says only that carol sent it, so a fuzzed DATA of hers with a larger epoch starts a new
  // epoch of her stream, after which her old ones are stale-epoch. Carol may disrupt her own stream; nobody else's.
  assert.ok(
    (report.inner.rejectedByReason["bad-signature"] ?? 0) > 0,
    "carol's own DATA, altered, reached the signature check",
  );
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
