/**
 * The flags of `chatnode chat` (and of the short form `chatnode --username alice ...`): declared on a commander
 * command, checked as they are parsed (a bad value is a usage error, exit 2), then completed: the user name and the
 * password are asked for on a terminal when they are not given.
 */
import { isIP } from "node:net";
import { type Command, InvalidArgumentError, Option } from "commander";
import { parseFault } from "../faults/parse.ts";
import type { FaultConfig } from "../faults/plan.ts";
import { DATA_DIR_DEFAULT_HELP } from "../identity/directory.ts";
import type { ChatNode } from "../node/chat-node.ts";
import type { OpenNodeOptions } from "../node/open-node.ts";
import { UsageError } from "./errors.ts";
import { PASSWORD_ENV } from "./login-ahead.ts";
import { readPasswordFile, readPasswordLine } from "./password-file.ts";
import { promptHidden, promptLine } from "./prompt.ts";

/** What commander hands the action, before completion. */
export interface ChatFlags {
  username?: string;
  password?: string;
  passwordFile?: string;
  port?: number;
  host?: string;
  dataDir?: string;
  ephemeral?: boolean;
  /** False with --no-lan. */
  lan?: boolean;
  json?: boolean;
  color?: boolean;
  loss?: Partial<FaultConfig>;
  lossIn?: Partial<FaultConfig>;
  lossOut?: Partial<FaultConfig>;
  duplicate?: Partial<FaultConfig>;
  badSignature?: Partial<FaultConfig>;
  wrongKey?: Partial<FaultConfig>;
  delay?: Partial<FaultConfig>;
  jitter?: Partial<FaultConfig>;
  blackhole?: boolean;
}

/** Everything the chat client needs, complete and valid. */
export interface ChatOptions {
  username: string;
  password: string;
  port?: number;
  host?: string;
  dataDir?: string;
  ephemeral: boolean;
  /** Find contacts on the LAN by multicast DNS; false with --no-lan. */
  lan: boolean;
  json: boolean;
  /** False with --no-color; NO_COLOR and a non-terminal stdout are checked by the renderer. */
  color: boolean;
  faults: Partial<FaultConfig>;
}

export function parsePortFlag(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError("use an integer from 0 to 65535 (0 picks a free port)");
  }
  return Number(value);
}

export function parseHostFlag(value: string): string {
  const bare = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  if (isIP(bare) === 0) {
    throw new InvalidArgumentError(
      "use an IP address: 127.0.0.1 (this machine), 0.0.0.0 (every interface) or ::1",
    );
  }
  return bare;
}

function faultFlag(name: string): (value: string) => Partial<FaultConfig> {
  return (value) => {
    try {
      return parseFault(name, value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

/** Declares the chat flags on `cmd`. */
export function addChatOptions(cmd: Command): Command {
  return cmd
    .option("-u, --username <name>", "who you are (asked for on a terminal when missing)")
    .addOption(
      new Option(
        "-p, --password <password>",
        "your password: visible to every local user in `ps`; prefer --password-file or the prompt",
      ),
    )
    .option(
      "--password-file <path>",
      'read the password from a file (mode 600; one trailing newline is dropped), or "-": the first line of stdin',
    )
    .addOption(
      new Option("--port <port>", "UDP port to listen on (default: the port you registered)").argParser(
        parsePortFlag,
      ),
    )
    .addOption(
      new Option(
        "--host <ip>",
        "address to listen on (default: the registered host; 0.0.0.0 for a LAN)",
      ).argParser(parseHostFlag),
    )
    .option("--data-dir <dir>", `where users, keys and messages live (default: ${DATA_DIR_DEFAULT_HELP})`)
    .option("--ephemeral", "keep messages in memory only (nothing written to disk but the run lock)")
    .option(
      "--no-lan",
      "no LAN discovery: neither announce this node by multicast DNS nor look for contacts (it runs when --host is 0.0.0.0 or a LAN address)",
    )
    .option("--json", "machine mode: commands on stdin, one JSON event per line on stdout")
    .option(
      "--no-color",
      "no colours (also: NO_COLOR=1, or when stdout is not a terminal unless FORCE_COLOR=1)",
    )
    .addOption(
      new Option(
        "--loss <rate>",
        "fault: drop this share of datagrams both ways (0..1 or 0%..100%)",
      ).argParser(faultFlag("loss")),
    )
    .addOption(
      new Option("--loss-in <rate>", "fault: drop incoming datagrams").argParser(faultFlag("loss-in")),
    )
    .addOption(
      new Option("--loss-out <rate>", "fault: drop outgoing datagrams").argParser(faultFlag("loss-out")),
    )
    .addOption(
      new Option("--duplicate <rate>", "fault: send DATA datagrams twice").argParser(faultFlag("duplicate")),
    )
    .addOption(
      new Option("--bad-signature <rate>", "fault: corrupt the signature of DATA datagrams").argParser(
        faultFlag("bad-signature"),
      ),
    )
    .addOption(
      new Option("--wrong-key <rate>", "fault: encrypt private messages to the wrong key").argParser(
        faultFlag("wrong-key"),
      ),
    )
    .addOption(
      new Option("--delay <ms>", "fault: hold every outgoing datagram this long").argParser(
        faultFlag("delay"),
      ),
    )
    .addOption(
      new Option("--jitter <ms>", "fault: plus a random extra delay up to this (reorders)").argParser(
        faultFlag("jitter"),
      ),
    )
    .option("--blackhole", "fault: drop everything, both ways");
}

/** The fault flags merged; --loss first, so --loss-in/--loss-out refine it. */
export function faultsFromFlags(flags: ChatFlags): Partial<FaultConfig> {
  return {
    ...flags.loss,
    ...flags.lossIn,
    ...flags.lossOut,
    ...flags.duplicate,
    ...flags.badSignature,
    ...flags.wrongKey,
    ...flags.delay,
    ...flags.jitter,
    ...(flags.blackhole === true && { blackhole: true }),
  };
}

export interface PromptIO {
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadStream;
  /** Prompts go to stderr, so stdout stays clean in --json mode. */
  stderr: NodeJS.WriteStream;
}

/**
 * Fills in the user name and the password: --password, --password-file, $CHATNODE_PASSWORD, or a prompt on a
 * terminal, in that order (the two flags together are a mistake).
 */
export async function resolveChatOptions(flags: ChatFlags, io: PromptIO): Promise<ChatOptions> {
  const tty = io.stdin.isTTY === true;
  if (flags.password !== undefined && flags.passwordFile !== undefined)
    throw new UsageError("give --password or --password-file, not both");
  let username = flags.username?.trim();
  if (!username) {
    if (!tty) throw new UsageError("--username is required (no terminal to ask on)");
    username = (await promptLine("username: ", io.stdin, io.stderr)).trim();
    if (!username) throw new UsageError("no user name given");
  }
  let password = flags.password ?? (await passwordFromFile(flags.passwordFile, io)) ?? io.env[PASSWORD_ENV];
  if (password === undefined || password === "") {
    if (!tty) {
      throw new UsageError(
        `no password for ${username}: pass --password-file, set ${PASSWORD_ENV}, or run in a terminal to be asked`,
      );
    }
    password = await promptHidden(`password for ${username}: `, io.stdin, io.stderr);
    if (password === "") throw new UsageError("no password given");
  }
  return {
    username,
    password,
    ...(flags.port !== undefined && { port: flags.port }),
    ...(flags.host !== undefined && { host: flags.host }),
    ...(flags.dataDir !== undefined && { dataDir: flags.dataDir }),
    ephemeral: flags.ephemeral === true,
    lan: flags.lan !== false,
    json: flags.json === true,
    color: flags.color !== false,
    faults: faultsFromFlags(flags),
  };
}

/** The password of --password-file, if given; `-` on a terminal is the prompt (a typed line is not echoed). */
async function passwordFromFile(path: string | undefined, io: PromptIO): Promise<string | undefined> {
  if (path === undefined) return undefined;
  if (path !== "-") return readPasswordFile(path, (line) => io.stderr.write(`chatnode: ${line}\n`));
  if (io.stdin.isTTY === true) {
    const typed = await promptHidden("password: ", io.stdin, io.stderr);
    if (typed === "") throw new UsageError("no password given");
    return typed;
  }
  return readPasswordLine(io.stdin);
}

/** How long quitting waits for ACKs of messages in flight before closing anyway. */
export const CLOSE_GRACE_MS = 1000;
/** Quitting never takes longer than this, whatever the node is waiting for. */
export const QUIT_DEADLINE_MS = 1700;

export function nodeOptions(o: ChatOptions): OpenNodeOptions {
  return {
    username: o.username,
    password: o.password,
    ephemeral: o.ephemeral,
    lan: o.lan,
    faults: o.faults,
    closeGraceMs: CLOSE_GRACE_MS,
    ...(o.dataDir !== undefined && { dataDir: o.dataDir }),
    ...(o.host !== undefined && { host: o.host }),
    ...(o.port !== undefined && { port: o.port }),
  };
}

/** Starts the node; if it cannot start, closes it (within QUIT_DEADLINE_MS) and rethrows the start error. */
export async function startOrClose(node: ChatNode): Promise<void> {
  try {
    await node.start();
  } catch (error) {
    await closeWithin(node);
    throw error;
  }
}

/** Closes the node, giving up waiting after QUIT_DEADLINE_MS (the outbox keeps what was not acknowledged). */
export async function closeWithin(node: ChatNode, ms = QUIT_DEADLINE_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    node.close().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
