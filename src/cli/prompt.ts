/**
 * Asking the person at the terminal: a line (echoed) or a password (never echoed). Every prompt of the CLI goes
 * through here; Ctrl-C, or Ctrl-D on an empty answer, cancels with exit code 130.
 */
import { createInterface, type Interface } from "node:readline";
import { UsageError } from "./errors.ts";

/** One line read on a terminal, echoed. */
export function promptLine(
  question: string,
  input: NodeJS.ReadStream,
  output: NodeJS.WritableStream,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input, output, terminal: true });
    let answered = false;
    rl.on("SIGINT", () => {
      rl.close();
    });
    rl.on("close", () => {
      if (!answered) {
        output.write("\n");
        reject(new UsageError("cancelled", 130));
      }
    });
    rl.question(question, (answer) => {
      answered = true;
      rl.close();
      resolve(answer);
    });
  });
}

/** A password read on a terminal in raw mode: nothing is echoed. Ctrl-C or Ctrl-D cancels; Backspace works. */
export function promptHidden(
  question: string,
  input: NodeJS.ReadStream,
  output: NodeJS.WritableStream,
): Promise<string> {
  return new Promise((resolve, reject) => {
    output.write(question);
    const wasRaw = input.isRaw === true;
    input.setRawMode(true);
    input.setEncoding("utf8");
    input.resume();
    let value = "";
    const finish = (error?: Error) => {
      input.off("data", onData);
      input.setRawMode(wasRaw);
      input.pause();
      output.write("\n");
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") return finish();
        if (ch === "\u0003") return finish(new UsageError("cancelled", 130));
        if (ch === "\u0004") {
          if (value === "") return finish(new UsageError("cancelled", 130));
          continue;
        }
        if (ch === "\u007f" || ch === "\b") value = [...value].slice(0, -1).join("");
        else if (ch === "\u0015") value = "";
        else if (ch >= " ") value += ch;
      }
    };
    input.on("data", onData);
  });
}

/**
 * Questions asked in turn (the register command). On a terminal each is asked with promptLine or, for a password,
 * promptHidden; when stdin is not a terminal (a pipe, a test) answers are read line by line and no prompt is printed.
 */
export class Prompter {
  private readonly rl: Interface | undefined;
  private readonly lines: AsyncIterator<string> | undefined;

  constructor(
    private readonly input: NodeJS.ReadStream = process.stdin,
    private readonly output: NodeJS.WriteStream = process.stderr,
  ) {
    if (input.isTTY) return;
    this.rl = createInterface({ input, terminal: false });
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  async ask(question: string): Promise<string> {
    return (
      this.lines ? await nextLine(this.lines, question) : await promptLine(question, this.input, this.output)
    ).trim();
  }

  /** Like ask, without echoing what is typed. Passwords are not trimmed: spaces may be part of them. */
  askHidden(question: string): Promise<string> {
    return this.lines ? nextLine(this.lines, question) : promptHidden(question, this.input, this.output);
  }

  close(): void {
    this.rl?.close();
  }
}

/** The next answer from a pipe; running out of lines is the caller's mistake, named by the question. */
async function nextLine(lines: AsyncIterator<string>, question: string): Promise<string> {
  const next = await lines.next();
  if (next.done) throw new UsageError(`no input left for "${question.replace(/[:\s[\]\d]+$/, "")}"`);
  return next.value;
}
