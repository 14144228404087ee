/**
 * Crash soak: `npx tsx scripts/crash-soak.ts [--runs 50] [--kills 4] [--messages 30] [--interval 15]
 * [--concurrency 3] [--seed 1] [--loss 0]`.
 *
 * Each run starts two nodes (alice and bob) in their own processes on fresh SQLite databases; each sends
 * --messages numbered broadcasts to the other, one every --interval ms. --kills times per run, at a random moment
 * (20-420 ms apart), one of alice, bob or both at once is killed with SIGKILL and started again on its database.
 * Then the run waits until every message is stored by its recipient and acknowledged, closes both, and reads the
 * databases: a message queued (in its sender's outbox) but not stored by its recipient is lost; one stored twice,
 * or shown twice across lives, is a duplicate. Prints one line per run and the totals; exits 1 unless lost,
 * duplicates and failed runs are all 0. --loss P drops P% of the datagrams each node sends, so that kills also
 * catch messages held behind a hole: acknowledged and saved, not yet shown. (test/node/crash.test.ts covers 20 kills
 * of one side in `npm test`.)
 */
import { runSoak } from "../test/hardening/helpers/soak.ts";

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`--${name} needs a whole number\n`);
    process.exit(2);
  }
  return value;
}

const options = {
  runs: option("runs", 50),
  kills: option("kills", 4),
  messages: option("messages", 30),
  intervalMs: option("interval", 15),
  concurrency: option("concurrency", 3),
  seed: option("seed", 1),
  loss: option("loss", 0) / 100,
};
if (options.loss > 1) {
  process.stderr.write("--loss is a percentage, 0 to 100\n");
  process.exit(2);
}
console.log(
  `crash soak: ${options.runs} runs × ${options.kills} SIGKILLs (sender, receiver or both), ` +
    `${options.messages} messages each way per run, seed ${options.seed}, loss ${options.loss * 100}%`,
);
const report = await runSoak({ ...options, log: (line) => console.log(line) });
const twice = report.deliveredTwice + report.shownTwice;
console.log(
  [
    "",
    `runs:                    ${report.runs} (${report.failedRuns} failed)`,
    `SIGKILLs:                ${report.kills.alice + report.kills.bob + report.kills.both} (alice ${report.kills.alice}, bob ${report.kills.bob}, both at once ${report.kills.both})`,
    `messages queued:         ${report.queued}`,
    `delivered:               ${report.delivered}`,
    `queued messages lost:    ${report.lost}`,
    `delivered twice:         ${twice} (stored twice ${report.deliveredTwice}, shown twice ${report.shownTwice})`,
    `stored but unacknowledged: ${report.unacknowledged}`,
    `time:                    ${(report.durationMs / 1000).toFixed(1)} s`,
  ].join("\n"),
);
process.exit(report.lost === 0 && twice === 0 && report.failedRuns === 0 ? 0 : 1);
