/**
 * `chatnode scenarios` (also `npm start`): the nine fault scenarios on ten local nodes, with a live progress line
 * per scenario, a summary table, and exit code 0 only if every scenario passed (1 if any failed, 2 for a usage
 * or setup problem such as a busy port).
 */
import { type Command, InvalidArgumentError } from "commander";
import { formatEvent, formatJson, formatTable, makeStyle } from "../scenarios/report.ts";
import {
  DEFAULT_BASE_PORT,
  MAX_BASE_PORT,
  runScenarios,
  SCENARIOS,
  SetupError,
} from "../scenarios/runner.ts";
import { colorEnabled } from "../terminal/text.ts";
import { UsageError } from "./errors.ts";

interface ScenarioFlags {
  basePort: number;
  only?: number;
  json?: boolean;
  color: boolean;
  dataDir?: string;
}

function parseBasePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > MAX_BASE_PORT)
    throw new InvalidArgumentError(`use 0 (free ports) or a port from 1 to ${MAX_BASE_PORT}`);
  return n;
}

function parseOnly(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !SCENARIOS.some((s) => s.id === n))
    throw new InvalidArgumentError(`use a scenario number from 1 to ${SCENARIOS.length}`);
  return n;
}

/** Wraps `text` at `width` columns, every line after the first indented by `indent`. */
function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent + word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.join("\n");
}

const LIST = SCENARIOS.map((s) => `  ${wrap(`${s.id}. ${s.title}: ${s.proves}`, 108, "     ")}`).join("\n");

const HELP = `
Scenarios (each checks exact counts and fails on any mismatch):
${LIST}

The ten demo users (zoe, alice … ivan) are registered in a temporary directory, removed afterwards, and their
nodes listen on 127.0.0.1, ports base … base+9. Colour is used on a terminal without NO_COLOR or --no-color, or with FORCE_COLOR.

Examples:
  $ chatnode scenarios                       # all nine, on ports 12000-12009
  $ chatnode scenarios --base-port 0         # on free ports (when 12000-12009 are busy)
  $ chatnode scenarios --only 5              # just the total-loss scenario
  $ chatnode scenarios --json > results.json # results as JSON (progress on stderr)
  $ chatnode scenarios --data-dir ./scn      # keep the users and SQLite databases in ./scn`;

export function addScenarioCommand(program: Command): void {
  program
    .command("scenarios")
    .description("run the nine fault scenarios on ten local nodes and check every number")
    .option(
      "--base-port <n>",
      "first of the ten UDP ports; 0 picks free ports",
      parseBasePort,
      DEFAULT_BASE_PORT,
    )
    .option("--only <n>", "run only scenario n (1-9)", parseOnly)
    .option("--json", "write the results as JSON on stdout; progress goes to stderr")
    .option("--no-color", "never colour the output")
    .option(
      "--data-dir <dir>",
      "keep users and databases in <dir>, which must be new or empty (default: temporary)",
    )
    .addHelpText("after", HELP)
    .action(async (flags: ScenarioFlags) => {
      const progress = flags.json ? process.stderr : process.stdout;
      const style = makeStyle(colorEnabled({ flag: flags.color, env: process.env, isTTY: progress.isTTY }));
      let report: Awaited<ReturnType<typeof runScenarios>>;
      try {
        report = await runScenarios({
          basePort: flags.basePort,
          ...(flags.only !== undefined && { only: flags.only }),
          ...(flags.dataDir !== undefined && { dataDir: flags.dataDir }),
          onEvent: (event) => progress.write(formatEvent(event, style)),
        });
      } catch (error) {
        if (error instanceof SetupError) throw new UsageError(error.message);
        throw error;
      }
      if (flags.json) process.stdout.write(formatJson(report));
      else process.stdout.write(`\n${formatTable(report, style)}`);
      if (report.dataDirKept) progress.write(style.dim(`users and databases kept in ${report.dataDir}\n`));
      process.exitCode = report.ok ? 0 : 1;
    });
}
