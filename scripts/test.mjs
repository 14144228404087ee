/**
 * Runs the test files with node:test: `npm test` (after the type check and lint), `npm run coverage`.
 *
 *   node scripts/test.mjs [--verbose] [--coverage] [FILE …]
 *
 * The summary reporter (scripts/test-reporter.mjs) prints a line per suite, the failures and the count;
 * `--verbose` prints every test as Node's spec reporter does. No files: every test/<area>/*.test.ts.
 *
 * --test-force-exit: a test file whose tests have all finished must not keep the run waiting on a handle it
 * leaked (a socket, a worker). Node 20's runner exits before a custom reporter has written its last lines, so
 * there it is left off. --test-timeout turns a hung test into a failure with its name instead of a CI run that
 * never ends.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const TEST_TIMEOUT_MS = 180_000;

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
if (Number(process.versions.node.split(".")[0]) >= 22) nodeArgs.push("--test-force-exit");
// Source maps let the coverage count TypeScript lines, not tsx's output.
if (coverage) nodeArgs.push("--experimental-test-coverage", "--enable-source-maps");

const run = spawnSync(process.execPath, [...nodeArgs, ...files], { stdio: "inherit" });
process.exit(run.status ?? 1);
