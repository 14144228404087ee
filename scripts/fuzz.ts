/**
 * Fuzzing a live node: `npx tsx scripts/fuzz.ts [--count 100000] [--seed N] [--batch 200]`.
 *
 * Starts bob (the target) in a child process and alice here, captures a real session between them (DATA, private
 * and fragmented DATA, ACKs, HELLOs, both ways), then sends --count random and mutated datagrams to bob over UDP
 * while alice keeps sending him messages. Prints the figures: datagrams fuzzed, rejected by reason, replays,
 * crashes, unhandled rejections, peak RSS and heap of the target, honest messages delivered. Exits 1 if a datagram
 * went unaccounted for, one was accepted, the target crashed, or an honest message was lost.
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
console.log(`fuzzing a live node with ${count} datagrams (seed ${seed})`);
const report = await runFuzz({ count, seed, batch, log: (line) => console.log(line) });
console.log(formatFuzzReport(report));
const ok =
  report.unaccounted === 0 &&
  report.lostInKernel === 0 &&
  report.accepted === 0 &&
  report.target.crashes === 0 &&
  report.target.unhandledRejections === 0 &&
  report.honest.delivered === report.honest.sent &&
  report.honest.shownTwice === 0;
console.log(ok ? "OK" : "FAILED");
process.exit(ok ? 0 : 1);
