/**
 * How a scenario run looks: a progress line when each scenario starts and when it ends (with its notes, and every
 * mismatch on failure), then the summary table; or the RunReport as JSON. Pure functions from values to strings:
 * with colour off no escape code is ever written.
 */
import { displayWidth, type Format, paint } from "../terminal/text.ts";
import type { RunEvent } from "./runner.ts";
import type { RunReport, ScenarioResult } from "./types.ts";

export interface Style {
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

export function makeStyle(color: boolean): Style {
  const wrap = (format: Format) => (s: string) => paint(color, format, s);
  return {
    green: wrap("green"),
    red: wrap("red"),
    yellow: wrap("yellow"),
    dim: wrap("dim"),
    bold: wrap("bold"),
  };
}

function pad(s: string, width: number, right = false): string {
  const fill = " ".repeat(Math.max(0, width - displayWidth(s)));
  return right ? fill + s : s + fill;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatRejections(rejections: Record<string, number>): string {
  const entries = Object.entries(rejections).filter(([, n]) => n !== 0);
  if (entries.length === 0) return "0";
  const total = entries.reduce((a, [, n]) => a + n, 0);
  return `${total} (${entries.map(([reason, n]) => `${reason} ${n}`).join(", ")})`;
}

/** The progress line(s) for one runner event, ending in a newline; "" for nothing to show. */
export function formatEvent(event: RunEvent, style: Style): string {
  switch (event.type) {
    case "setup":
      return `${style.dim(event.message)}\n`;
    case "start": {
      const with_ = event.alongside.length > 0 ? ` (alongside ${event.alongside.join(", ")})` : "";
      return `${style.dim(`  … ${event.scenario.id}. ${event.scenario.title}${with_}`)}\n`;
    }
    case "end":
      return formatResultLines(event.result, style);
  }
}

function formatResultLines(r: ScenarioResult, style: Style): string {
  const mark = r.ok ? style.green("✔ PASS") : style.red("✘ FAIL");
  const head = `${mark} ${style.bold(`${r.id}. ${r.title}`)} ${style.dim(seconds(r.timeMs))}`;
  const lines = [head];
  for (const note of r.notes) lines.push(`         ${style.dim(note)}`);
  if (!r.ok) {
    const failed = r.checks.filter((c) => !c.ok);
    for (const c of failed)
      lines.push(`         ${style.red(`${c.label}: expected ${c.expected}, got ${c.actual}`)}`);
    if (failed.length === 0 && r.error) lines.push(`         ${style.red(r.error)}`);
    else if (r.error && !failed.some((c) => r.error?.startsWith(c.label)))
      lines.push(`         ${style.red(r.error)}`);
  }
  return `${lines.join("\n")}\n`;
}

const COLUMNS = [
  "#",
  "Scenario",
  "Result",
  "Messages",
  "Retransmits",
  "Dup. ignored",
  "Rejections",
  "Give-ups",
  "Time",
] as const;
/** Columns aligned right (numbers). */
const RIGHT = new Set(["#", "Messages", "Retransmits", "Dup. ignored", "Give-ups", "Time"]);

/** The summary table and the verdict line. */
export function formatTable(report: RunReport, style: Style): string {
  const rows = report.scenarios.map((r) => [
    String(r.id),
    r.title,
    r.ok ? style.green("PASS") : style.red("FAIL"),
    `${r.delivered}/${r.expected}`,
    String(r.retransmits),
    String(r.duplicatesIgnored),
    formatRejections(r.rejections),
    String(r.giveUps),
    seconds(r.timeMs),
  ]);
  const widths = COLUMNS.map((c, i) =>
    Math.max(displayWidth(c), ...rows.map((row) => displayWidth(row[i] ?? ""))),
  );
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => pad(cell, widths[i] ?? 0, RIGHT.has(COLUMNS[i] ?? ""))).join("  ");
  const rule = style.dim(widths.map((w) => "─".repeat(w)).join("  "));
  const out = [style.bold(line(COLUMNS)), rule, ...rows.map(line), rule];
  const passed = report.scenarios.filter((r) => r.ok).length;
  const total = report.scenarios.length;
  const verdict = report.ok
    ? style.green(style.bold(`${passed}/${total} scenarios passed`))
    : style.red(style.bold(`${total - passed} of ${total} scenarios FAILED`));
  out.push(
    `${verdict} in ${seconds(report.totalMs)}  ${style.dim("(Messages: shown / expected deliveries)")}`,
  );
  if (!report.ok) {
    for (const r of report.scenarios.filter((s) => !s.ok))
      out.push(style.red(`  ${r.id}. ${r.title}: ${r.error}`));
  }
  return `${out.join("\n")}\n`;
}

export function formatJson(report: RunReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
