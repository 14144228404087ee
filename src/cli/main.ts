#!/usr/bin/env node
/**
 * The `chatnode` command. `chat` is the default subcommand, so `chatnode --username alice --password pass1` is the
 * same as `chatnode chat --username alice --password pass1`. Errors are one line on stderr, `chatnode: <message>`;
 * exit codes: 0 success, 1 internal or storage failure, 2 usage or user error (bad flag, unknown user, wrong
 * password, port in use, the user already running), 130 cancelled at a prompt.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { CryptoLibraryError, KeyFileError } from "../crypto/errors.ts";
import { IdentityError } from "../identity/errors.ts";
import { ChatNodeError } from "../node/errors.ts";
import { StoreError } from "../storage/errors.ts";
import { addChaosCommand } from "./chaos-command.ts";
import { addChatOptions, type ChatFlags, resolveChatOptions } from "./chat-options.ts";
import { UsageError } from "./errors.ts";
import { runJson } from "./json-mode.ts";
import { runRepl } from "./repl.ts";
import { addScenarioCommand } from "./scenarios-command.ts";
import { addUserCommands } from "./users.ts";

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

const EXAMPLES = `
Examples:
  $ chatnode bulk-register                                  # demo users zoe, alice ... ivan on ports 12000-12009
  $ chatnode --username alice --password pass1              # chat as alice (on her registered port 12001)
  $ chatnode chat --username bob --port 12002 --loss 0.3    # chat as bob, dropping 30% of datagrams
  $ chatnode -u carol --password-file ~/.carol.pw --json    # machine mode: JSON events on stdout
  $ chatnode users                                          # who is in the directory, with fingerprints
  $ chatnode contact export alice                           # alice's contact code: one line to give a friend
  $ chatnode contact import 'chatnode:1/bob@…'              # add a friend from their code

In the chat: a line is sent to everyone; /p bob hi is private; /help lists the commands.`;

/** Edit distance with transpositions (optimal string alignment), for "did you mean" on an unknown command. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => d[i]?.[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

export function buildProgram(onChatExit: (code: number) => void): Command {
  const program = new Command("chatnode")
    .description(
      "Serverless peer-to-peer chat over UDP: signed messages, encrypted private messages, delivery receipts",
    )
    .version(version(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError()
    .configureOutput({
      // Commander's own messages ("error: unknown option '--x'") in our one-line format.
      outputError: (text, write) => write(`chatnode: ${text.replace(/^error: /, "")}`),
    })
    .exitOverride()
    .addHelpText("after", EXAMPLES);

  const chat = program
    .command("chat", { isDefault: true })
    .description("chat interactively (the default command), or with --json as a program")
    .allowExcessArguments(true);
  addChatOptions(chat)
    .addHelpText(
      "after",
      `
The password: asked for without echo on a terminal (best), or --password-file FILE (mode 600) or
--password-file - (the first line of stdin; the rest is the chat's input). -p is visible to every local user in
ps; $CHATNODE_PASSWORD to the same user's processes through /proc/<pid>/environ.
One node runs per user and data directory: a second start of a running user exits 2, naming the running one.
Fault flags take a rate from 0 to 1 (or 0% to 100%), or milliseconds for --delay and --jitter; /fault changes
them while chatting.

Examples:
  $ chatnode chat --username alice --password pass1
  $ chatnode chat -u bob --data-dir ./demo --host 0.0.0.0
  $ chatnode chat -u carol --json --loss 20% --delay 50 --jitter 30 < commands.txt`,
    )
    .action(async (flags: ChatFlags, cmd: Command) => {
      const extra = cmd.args[0];
      if (extra !== undefined) {
        const names = program.commands.map((c) => c.name());
        const near = names.filter((n) => editDistance(n, extra) <= (n.length >= 4 ? 2 : 1));
        const hint = near.length > 0 ? ` (Did you mean ${near.join(", ")}?)` : " (see chatnode --help)";
        program.error(`error: unknown command '${extra}'${hint}`, {
          exitCode: EXIT_USAGE,
          code: "commander.unknownCommand",
        });
      }
      const options = await resolveChatOptions(flags, {
        env: process.env,
        stdin: process.stdin,
        stderr: process.stderr,
      });
      const code = options.json
        ? await runJson(options, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr })
        : await runRepl(options, { stdin: process.stdin, stdout: process.stdout, env: process.env });
      onChatExit(code);
    });

  addUserCommands(program);
  addScenarioCommand(program);
  addChaosCommand(program);
  return program;
}

/** One line for a person, and the exit code. Never a stack trace for a mistake the user can fix. */
export function describeError(error: unknown): { message: string; exitCode: number } {
  if (error instanceof UsageError) return { message: error.message, exitCode: error.exitCode };
  // login()'s messages name the command that fixes them (src/identity/advice.ts).
  if (error instanceof IdentityError) return { message: error.message, exitCode: EXIT_USAGE };
  if (error instanceof ChatNodeError && error.code === "PORT_IN_USE")
    return { message: `${error.message}; --port 0 picks a free one`, exitCode: EXIT_USAGE };
  // ALREADY_RUNNING among them: its message names the running node's pid and address.
  if (error instanceof KeyFileError || error instanceof ChatNodeError) {
    return { message: error.message, exitCode: EXIT_USAGE };
  }
  if (error instanceof CryptoLibraryError) return { message: error.message, exitCode: EXIT_FAILURE };
  if (error instanceof StoreError) {
    return { message: error.message, exitCode: error.code === "DB_LOCKED" ? EXIT_USAGE : EXIT_FAILURE };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { message: `internal error: ${message}`, exitCode: EXIT_FAILURE };
}

/** Exits once stdout and stderr have written what they hold (a pipe is asynchronous on some systems). */
function exitWhenFlushed(code: number): void {
  let waiting = 2;
  const flushed = () => {
    waiting--;
    if (waiting === 0) process.exit(code);
  };
  process.stdout.write("", flushed);
  process.stderr.write("", flushed);
}

async function main(): Promise<void> {
  let chatCode: number | undefined;
  const program = buildProgram((code) => {
    chatCode = code;
  });
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Already printed by commander. Help and --version exit 0; its usage errors exit 2 rather than 1. Exit rather
      // than return: a key unlock started ahead (src/cli/bin.ts) would hold the process until its scrypt ends.
      exitWhenFlushed(error.exitCode === 0 ? 0 : error.exitCode === 1 ? EXIT_USAGE : error.exitCode);
      return;
    }
    const { message, exitCode } = describeError(error);
    process.stderr.write(`chatnode: ${message}\n`);
    if (process.env.CHATNODE_DEBUG && error instanceof Error && error.stack)
      process.stderr.write(`${error.stack}\n`);
    // A failure after the chat started may leave stdin open: exit rather than wait for it.
    process.exit(exitCode);
  }
  // The chat is over (the node is closed): do not wait for stdin or a stray timer to let go.
  if (chatCode !== undefined) process.exit(chatCode);
}

await main();
