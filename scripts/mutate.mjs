/**
 * `npm run mutate [folder …]`: Stryker over src/engine, src/node, src/storage and src/crypto (or the folders
 * named), one folder at a time with the tests that guard it, then one line per folder: its mutation score and
 * the survivors to read. Results are incremental (reports/mutation/, not committed), so a second run retests only what changed.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { TEST_TIERS } from "../stryker.config.mjs";

const folders = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(TEST_TIERS);
const unknown = folders.filter((f) => !(f in TEST_TIERS));
if (unknown.length > 0) {
  console.error(
    `npm run mutate: no such folder ${unknown[0]} (folders: ${Object.keys(TEST_TIERS).join(", ")})`,
  );
  process.exit(2);
}

const DETECTED = new Set(["Killed", "Timeout"]);
const UNDETECTED = new Set(["Survived", "NoCoverage"]);

const lines = [];
for (const folder of folders) {
  console.log(`\n=== mutating ${folder} ===`);
  const run = spawnSync("npx", ["stryker", "run", "stryker.config.mjs"], {
    stdio: "inherit",
    env: { ...process.env, CHATNODE_MUTATE_FOLDER: folder },
  });
  const report = `reports/mutation/${folder.replace("/", "-")}.json`;
  if (run.status !== 0 || !existsSync(report)) {
    lines.push(`${folder}: Stryker failed (exit ${run.status})`);
    continue;
  }
  const mutants = Object.values(JSON.parse(readFileSync(report, "utf8")).files).flatMap((f) => f.mutants);
  const detected = mutants.filter((m) => DETECTED.has(m.status)).length;
  const undetected = mutants.filter((m) => UNDETECTED.has(m.status)).length;
  const score = (100 * detected) / Math.max(1, detected + undetected);
  lines.push(`${folder}: ${score.toFixed(1)}% (${detected} detected, ${undetected} undetected) — ${report}`);
}
console.log(
  `\nmutation score (target ≥ 85%; equivalent survivors are listed in test/MUTANTS.md)\n${lines.join("\n")}`,
);
