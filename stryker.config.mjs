/**
 * Mutation testing, one folder at a time: `npm run mutate [src/engine|src/node|src/storage|src/crypto …]`
 * (scripts/mutate.mjs sets CHATNODE_MUTATE_FOLDER). Slow, so not part of `npm test`; README says when to run it.
 * Stryker plants one small change at a time and runs the tests that cover it; a mutant no test notices is a
 * behaviour nothing guards. test/MUTANTS.md lists the survivors judged equivalent, with the reason.
 */

/** The tests that guard each folder, fast files first: a mutant stops at its first failing file. */
export const TEST_TIERS = {
  "src/crypto": ["test/crypto/*.test.ts"],
  "src/storage": ["test/storage/*.test.ts"],
  "src/engine": [
    "test/engine/*.test.ts",
    "test/sim/*.test.ts",
    "test/hardening/{acks,admission,fuzz,replay}.test.ts",
  ],
  "src/node": ["test/node/*.test.ts", "test/hardening/*.test.ts"],
};

const folder = process.env.CHATNODE_MUTATE_FOLDER ?? "src/crypto";
const tier = TEST_TIERS[folder];
if (tier === undefined) throw new Error(`no test tier for ${folder}`);
const slug = folder.replace("/", "-");

export default {
  mutate: [`${folder}/**/*.ts`, "!src/**/*.d.ts"],
  testRunner: "tap",
  tap: { testFiles: tier, nodeArgs: ["--import", "tsx"], forceBail: true },
  coverageAnalysis: "perTest",
  // Mutants that do not type-check are discarded before any test runs.
  checkers: ["typescript"],
  tsconfigFile: "tsconfig.json",
  // A mutant that makes a loop run forever is stopped by the timeout, and counts as detected.
  timeoutMS: 30_000,
  concurrency: 2,
  // A later run tests only the mutants whose code or covering tests changed.
  incremental: true,
  incrementalFile: `reports/mutation/${slug}.incremental.json`,
  reporters: ["clear-text", "progress-append-only", "json"],
  clearTextReporter: { logTests: false, allowColor: false },
  jsonReporter: { fileName: `reports/mutation/${slug}.json` },
  thresholds: { high: 90, low: 85, break: null },
  tempDirName: ".stryker-tmp",
  cleanTempDir: "always",
};
