import { clearScreenDown, cursorTo, type Interface, moveCursor } from "node:readline";
import { rowsOf } from "../terminal/text.ts";

/**
 * Output above the prompt. On a terminal, every write first clears the prompt rows (the prompt and a partial input
 * may span several rows; the cursor may be on any of them), writes, then lets readline re-render the prompt with
 * the input and cursor unchanged. Without a terminal it just writes lines.
 */
export class Screen {
  private rl: Interface | undefined;
  private last: { key: string; rows: number; columns: number } | undefined;
  private closed = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    readonly tty: boolean,
  ) {}

  attach(rl: Interface): void {
    this.rl = rl;
  }

  private get columns(): number {
    return this.out.columns || 80;
  }

  /** Prints a block; `key` marks it as replaceable (an own message whose receipt will change). */
  print(text: string, key?: string): void {
    this.clearPrompt();
    this.out.write(`${text}\n`);
    this.last =
      key !== undefined && this.tty
        ? { key, rows: rowsOf(text, this.columns), columns: this.columns }
        : undefined;
    this.showPrompt();
  }

  /** Rewrites the block printed with `key` if it is still the last one on screen; false otherwise. */
  replace(key: string, text: string): boolean {
    const last = this.last;
    if (!this.tty || this.closed || last?.key !== key || last.columns !== this.columns) return false;
    this.clearPrompt();
    moveCursor(this.out, 0, -last.rows);
    cursorTo(this.out, 0);
    clearScreenDown(this.out);
    this.out.write(`${text}\n`);
    this.last = { key, rows: rowsOf(text, this.columns), columns: this.columns };
    this.showPrompt();
    return true;
  }

  /** After Enter, the typed line is still on screen above the cursor: remove it (the formatted message replaces it). */
  eraseEcho(promptText: string, line: string): void {
    if (!this.tty || this.closed) return;
    moveCursor(this.out, 0, -rowsOf(promptText + line, this.columns));
    cursorTo(this.out, 0);
    clearScreenDown(this.out);
  }

  showPrompt(): void {
    const rl = this.rl;
    if (!rl || !this.tty || this.closed) return;
    // readline moves up by the cursor row of its last render before redrawing; we already put the cursor at the
    // first row of the prompt, so that row count is stale.
    const internals = rl as unknown as { prevRows?: number };
    if (typeof internals.prevRows === "number") internals.prevRows = 0;
    rl.prompt(true);
  }

  private clearPrompt(): void {
    const rl = this.rl;
    if (!rl || !this.tty || this.closed) return;
    const { rows } = rl.getCursorPos();
    if (rows > 0) moveCursor(this.out, 0, -rows);
    cursorTo(this.out, 0);
    clearScreenDown(this.out);
  }

  /** Removes the prompt for good (quitting). */
  close(): void {
    if (this.closed) return;
    this.clearPrompt();
    this.closed = true;
  }
}
