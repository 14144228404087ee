/**
 * The test runner's reporter for `npm test`: one line per top-level suite (with the figures its tests report
 * through t.diagnostic), every skip with its reason, every failure in full at the end, and a closing line
 * "N passed, N failed, N skipped". Node's own reporters print either TAP (every test, thousands of lines, when
 * not on a terminal) or one line per test; a person and CI both need the failures and the count.
 *
 * With `--coverage` (scripts/test.mjs) it also prints line / branch / function coverage per folder of src/.
 * Plain JavaScript: the runner loads it before tsx is registered in the test processes.
 */
import { relative, sep } from "node:path";

const cwd = process.cwd();
const rel = (file) => (file ? relative(cwd, file.startsWith("file:") ? new URL(file).pathname : file) : "?");
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** Node 20 marks only suites with a type; 22 and 24 mark tests too. */
const isSuite = (data) => data.details?.type === "suite";

function errorText(error) {
  const cause = error?.cause ?? error;
  if (!cause) return String(error);
  const text = cause.stack ?? cause.message ?? String(cause);
  // Keep the message and the test's own frames; Node's runner internals say nothing about the failure.
  return text
    .split("\n")
    .filter((line) => !/\(node:internal\/|node:internal\/|\(node:async_hooks/.test(line))
    .slice(0, 30)
    .join("\n");
}

function coverageLines(summary) {
  const folders = new Map();
  for (const f of summary.files) {
    const path = rel(f.path);
    if (!path.startsWith(`src${sep}`)) continue;
    const folder = path.split(sep).slice(0, 2).join("/");
    const acc = folders.get(folder) ?? { lines: [0, 0], branches: [0, 0], functions: [0, 0] };
    acc.lines[0] += f.coveredLineCount;
    acc.lines[1] += f.totalLineCount;
    acc.branches[0] += f.coveredBranchCount;
    acc.branches[1] += f.totalBranchCount;
    acc.functions[0] += f.coveredFunctionCount;
    acc.functions[1] += f.totalFunctionCount;
    folders.set(folder, acc);
  }
  const pct = ([covered, total]) => (total === 0 ? "  -  " : `${((100 * covered) / total).toFixed(1)}%`);
  const all = { lines: [0, 0], branches: [0, 0], functions: [0, 0] };
  const rows = [...folders].sort(([a], [b]) => a.localeCompare(b));
  const out = ["", "coverage of src/ (lines / branches / functions):"];
  for (const [folder, acc] of rows) {
    for (const k of Object.keys(all)) {
      all[k][0] += acc[k][0];
      all[k][1] += acc[k][1];
    }
    out.push(
      `  ${folder.padEnd(16)} ${pct(acc.lines).padStart(6)} ${pct(acc.branches).padStart(6)} ${pct(acc.functions).padStart(6)}`,
    );
  }
  out.push(
    `  ${"all of src/".padEnd(16)} ${pct(all.lines).padStart(6)} ${pct(all.branches).padStart(6)} ${pct(all.functions).padStart(6)}`,
  );
  return out;
}

export default async function* summaryReporter(source) {
  const counts = { passed: 0, failed: 0, skipped: 0, todo: 0 };
  const failures = [];
  const skips = [];
  /** Per file: names of the enclosing suites still open, and diagnostics waiting for their top-level line. */
  const openSuites = new Map();
  const notes = new Map();
  const stderrByFile = new Map();
  let coverage;

  for await (const { type, data } of source) {
    if (type === "test:start") {
      const stack = openSuites.get(data.file) ?? [];
      stack[data.nesting] = data.name;
      stack.length = data.nesting + 1;
      openSuites.set(data.file, stack);
    } else if (type === "test:diagnostic" && data.nesting > 0) {
      const list = notes.get(data.file) ?? [];
      list.push(data.message);
      notes.set(data.file, list);
    } else if (type === "test:stderr") {
      const text = (stderrByFile.get(data.file) ?? "") + data.message;
      stderrByFile.set(data.file, text.slice(-4000));
    } else if (type === "test:coverage") {
      coverage = data.summary;
    } else if (type === "test:pass" || type === "test:fail") {
      const path = [...(openSuites.get(data.file) ?? []).slice(0, data.nesting), data.name].join(" › ");
      if (isSuite(data) && type === "test:fail" && data.details?.error?.failureType !== "subtestsFailed") {
        // A suite fails on its own when a hook throws; its tests then show only "cancelled", so keep its error.
        failures.push({ file: rel(data.file), path, error: data.details?.error });
      }
      if (!isSuite(data)) {
        if (type === "test:fail") {
          counts.failed++;
          failures.push({ file: rel(data.file), path, error: data.details?.error });
        } else if (data.skip !== undefined && data.skip !== false) {
          counts.skipped++;
          skips.push(`${rel(data.file)}: ${path}${typeof data.skip === "string" ? ` (${data.skip})` : ""}`);
        } else if (data.todo !== undefined && data.todo !== false) counts.todo++;
        else counts.passed++;
      }
      if (data.nesting === 0) {
        const mark = type === "test:fail" ? "✖" : "✔";
        yield `${mark} ${data.name} — ${rel(data.file)} (${seconds(data.details?.duration_ms ?? 0)})\n`;
        for (const note of notes.get(data.file) ?? []) yield `    ${note}\n`;
        notes.delete(data.file);
      }
    }
  }

  if (skips.length > 0) {
    yield `\nskipped:\n`;
    for (const s of skips) yield `  - ${s}\n`;
  }
  for (const f of failures) {
    yield `\n✖ ${f.path}\n  at ${f.file}\n${errorText(f.error).replace(/^/gm, "    ")}\n`;
  }
  const failedFiles = new Set(failures.map((f) => f.file));
  for (const [file, text] of stderrByFile) {
    if (failedFiles.has(rel(file)) && text.trim())
      yield `\nstderr of ${rel(file)} (last 4,000 characters):\n${text}\n`;
  }
  if (coverage) for (const line of coverageLines(coverage)) yield `${line}\n`;
  const todo = counts.todo > 0 ? `, ${counts.todo} todo` : "";
  yield `\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped${todo}\n`;
}
