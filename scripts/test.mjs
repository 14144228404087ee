/**
 * Runs the test files with node:test: `npm test` (after the type check and lint), `npm run coverage`.
 *
 *   node scripts/test.mjs [--verbose] [--coverage] [FILE …]
 *
 * The summary reporter (scripts/test-reporter.mjs) prints a line per suite, the failures and the count;
 * `--verbose` prints every test as Node's spec reporter does. No files: every test/<area>/*.test.ts.
 *
 * Bounded in time two ways. --test-timeout turns a hung test into a failure with its name. A test file whose tests
 * all finished but that keeps a handle open (a socket, a worker) would still keep the run waiting, so the whole run
 * has a deadline, after which it is stopped with exit 1 and a line that says so. Not
 * --test-force-exit: on Node 20, 22 and 24 alike it ends a file's process before all of its results have reached
 * the reporter (seen here: 400 of 427 tests reported on Node 22, every one of them passing), so a failure could go
 * unreported.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const TEST_TIMEOUT_MS = 180_000;
/** The suite takes 1.5-2.5 minutes here; four times that on a busy machine, and still an end. */
const RUN_DEADLINE_MS = 12 * 60_000;

const args = process.argv.slice(2);
const verbose = args.includes("--verbose");
const coverage = args.includes("--coverage");
const unknown = args.filter((a) => a.startsWith("-") && a !== "--verbose" && a !== "--coverage");
if (unknown.length > 0) {
  console.error(`scripts/test.mjs: unknown option ${unknown[0]} (options: --verbose, --coverage)`);
  process.exit(2);
}
let files = args.filter((a) => !a.startsWith("-"));
if (files.length === 0) {
  files = readdirSync("test", { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) =>
      readdirSync(join("test", d.name))
        .filter((f) => f.endsWith(".test.ts"))
        .map((f) => join("test", d.name, f)),
    )
    .sort();
}

const nodeArgs = [
  "--import",
  "tsx",
  "--test",
  "--test-concurrency=2",
  `--test-timeout=${TEST_TIMEOUT_MS}`,
  `--test-reporter=${verbose ? "spec" : "./scripts/test-reporter.mjs"}`,
];
// Source maps let the coverage count TypeScript lines, not tsx's output.
if (coverage) nodeArgs.push("--experimental-test-coverage", "--enable-source-maps");

// Its own process group, so that the deadline stops the test files' processes too.
const run = spawn(process.execPath, [...nodeArgs, ...files], { stdio: "inherit", detached: true });
const stop = (signal) => {
  try {
    process.kill(-run.pid, signal);
  } catch {}
};
const deadline = setTimeout(() => {
  console.error(`\nnpm test: stopped after ${RUN_DEADLINE_MS / 60_000} minutes; a test file did not exit`);
  stop("SIGKILL");
  process.exit(1);
}, RUN_DEADLINE_MS);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => stop(signal));
run.on("exit", (code, signal) => {
  clearTimeout(deadline);
  process.exit(code ?? (signal ? 1 : 0));
});
