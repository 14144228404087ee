/**
 * Fuzzing a live node: `npx tsx scripts/fuzz.ts [--count 100000] [--seed N] [--batch 200] [--inner-percent 50]`.
 *
 * Starts bob (the target) in a child process, and alice and carol here; captures their real sessions with bob (on
 * the wire: sealed handshakes and transport datagrams; inside: DATA, private and fragmented DATA, ACKs, HELLOs, both
 * ways), then sends --count datagrams to bob while alice keeps sending him messages: a share (--inner-percent, 50
 * unless told) as engine datagrams through carol's session (one holding her keys: the engine's decoder and checks),
 * the rest on the wire from a stranger's address (random and mutated sealed datagrams, forged handshakes, the old
 * clear-text format: the session layer). Prints the figures: datagrams fuzzed, refused and rejected by reason,
 * replays, crashes, unhandled rejections, peak RSS and heap of the target, honest messages delivered. Exits 1 if a
 * datagram went unaccounted for, one was opened or accepted, the target crashed, or an honest message was lost.
 * (npm test runs 20,000 of them: test/hardening/fuzz.test.ts.)
 */
import { formatFuzzReport, runFuzz } from "../test/hardening/helpers/fuzz.ts";

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(value) || value < 0) {
    process.stderr.write(`--${name} needs a whole number\n`);
    process.exit(2);
  }
  return value;
}

const count = option("count", 100_000);
const seed = option("seed", Date.now() % 2 ** 31);
const batch = option("batch", 200);
const innerPercent = option("inner-percent", 50);
console.log(`fuzzing a live node with ${count} datagrams (seed ${seed})`);
const report = await runFuzz({
  count,
  seed,
  batch,
  innerShare: Math.min(innerPercent, 100) / 100,
  log: (line) => console.log(line),
});
console.log(formatFuzzReport(report));
const ok =
  report.wire.unaccounted === 0 &&
  report.wire.opened === 0 &&
  report.inner.unaccounted === 0 &&
  report.lostInKernel === 0 &&
  report.accepted === 0 &&
  report.target.crashes === 0 &&
  report.target.unhandledRejections === 0 &&
  report.honest.delivered === report.honest.sent &&
  report.honest.shownTwice === 0;
console.log(ok ? "OK" : "FAILED");
process.exit(ok ? 0 : 1);
