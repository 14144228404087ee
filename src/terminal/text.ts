/**
 * What a terminal shows: whether to colour, colouring itself, and how many columns and rows a text takes. One
 * module for the interactive client and the scenario runner, so both decide colour the same way and both measure
 * emoji and East Asian text as the terminal draws them.
 */
import { styleText } from "node:util";
import stringWidth from "string-width";

/** A format util.styleText knows: a colour or a modifier, or several applied left to right. */
export type Format = Parameters<typeof styleText>[0];

/**
 * The colour decision, made once per process and then passed down: --no-color wins, then FORCE_COLOR (Node's own
 * rule: "0" or "false" turns colour off, any other value on, so `FORCE_COLOR=1 chatnode … | less -R` keeps colour),
 * then NO_COLOR (any non-empty value, no-color.org), then TERM=dumb; otherwise colour only on a terminal.
 */
export function colorEnabled(o: { flag?: boolean; env?: NodeJS.ProcessEnv; isTTY?: boolean }): boolean {
  if (o.flag === false) return false;
  const env = o.env ?? {};
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== "0" && force !== "false";
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.TERM === "dumb") return false;
  return o.isTTY === true;
}

/**
 * `text` in `format` when colour is on, else `text` untouched. The decision is colorEnabled's: styleText is told not
 * to look at process.stdout itself (validateStream, Node ≥ 22; Node 20 never looks), because the stream it would
 * check is not always the one written to, and a test or `FORCE_COLOR` must get the same bytes as a terminal.
 */
export function paint(color: boolean, format: Format, text: string): string {
  return color ? styleText(format, text, { validateStream: false }) : text;
}

/** Terminal columns a string takes, escape codes excluded: 2 for 🚀, 👍🏽, 👨‍👩‍👧 and CJK, 0 for combining marks. */
export function displayWidth(text: string): number {
  return stringWidth(text);
}

/** Terminal rows a block of lines takes at `columns` wide. */
export function rowsOf(block: string, columns: number): number {
  let rows = 0;
  for (const line of block.split("\n"))
    rows += Math.max(1, Math.ceil(displayWidth(line) / Math.max(1, columns)));
  return rows;
}
