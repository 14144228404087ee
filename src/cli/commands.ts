/**
 * The one parser of what a user types, shared by the interactive client (repl.ts) and `--json` mode
 * (json-mode.ts). A line that starts with "/" is a command; any other non-blank line is a broadcast, and "//text"
 * broadcasts "/text". Parsing never throws: a malformed line is an `invalid` command carrying the message to show.
 */
import { parseFault } from "../faults/parse.ts";
import { type FaultConfig, NO_FAULTS } from "../faults/plan.ts";

export type Command =
  | { type: "empty" }
  | { type: "broadcast"; text: string }
  | { type: "private"; peer: string; text: string }
  | { type: "quit" }
  | { type: "peers" }
  | { type: "history"; limit: number }
  | { type: "stats" }
  /** `change` absent: show the current faults. */
  | { type: "fault"; change?: Partial<FaultConfig> }
  | { type: "retry"; peer?: string }
  /** `peer` absent: our own fingerprint. */
  | { type: "verify"; peer?: string }
  | { type: "whoami" }
  | { type: "help" }
  | { type: "invalid"; message: string };

export type CommandName =
  | "b"
  | "p"
  | "q"
  | "peers"
  | "history"
  | "stats"
  | "fault"
  | "retry"
  | "verify"
  | "whoami"
  | "help";

export interface CommandHelp {
  name: CommandName;
  aliases: readonly string[];
  usage: string;
  summary: string;
}

export const DEFAULT_HISTORY = 20;
export const MAX_HISTORY = 1000;

/** Every command, in the order /help lists them. Aliases are accepted wherever the name is. */
export const COMMANDS: readonly CommandHelp[] = [
  {
    name: "b",
    aliases: ["broadcast"],
    usage: "/b <message>",
    summary: "send to everyone (same as a line without /)",
  },
  {
    name: "p",
    aliases: ["msg", "private"],
    usage: "/p <name|port> <message>",
    summary: "private message to one user",
  },
  {
    name: "peers",
    aliases: ["who"],
    usage: "/peers",
    summary: "who is online, last seen, round-trip time, fingerprint",
  },
  {
    name: "history",
    aliases: [],
    usage: "/history [n]",
    summary: `the last n messages (default ${DEFAULT_HISTORY})`,
  },
  { name: "stats", aliases: [], usage: "/stats", summary: "datagram, retransmission and fault counters" },
  {
    name: "fault",
    aliases: ["faults"],
    usage: "/fault [<kind> <value> | off]",
    summary: "show or change fault injection live, e.g. /fault loss 0.3",
  },
  {
    name: "retry",
    aliases: [],
    usage: "/retry [name]",
    summary: "ask now whether the recipients of waiting messages are back",
  },
  {
    name: "verify",
    aliases: [],
    usage: "/verify [name]",
    summary: "show a user's safety fingerprint (yours without a name) to compare out of band",
  },
  {
    name: "whoami",
    aliases: [],
    usage: "/whoami",
    summary: "your contact code, to give to others (chatnode contact import <code>), and your fingerprint",
  },
  { name: "help", aliases: ["h", "?"], usage: "/help", summary: "this list" },
  { name: "q", aliases: ["quit", "exit"], usage: "/q", summary: "quit (also Ctrl-C, Ctrl-D)" },
];

/** Every spelling that names a command, without the slash: for tab completion. */
export const COMMAND_WORDS: readonly string[] = COMMANDS.flatMap((c) => [c.name, ...c.aliases]);

function lookup(word: string): CommandName | undefined {
  const w = word.toLowerCase();
  return COMMANDS.find((c) => c.name === w || c.aliases.includes(w))?.name;
}

function usage(name: CommandName): { type: "invalid"; message: string } {
  const help = COMMANDS.find((c) => c.name === name);
  return { type: "invalid", message: `usage: ${help?.usage ?? `/${name}`}` };
}

/** Splits off the first whitespace-separated word. */
function firstWord(s: string): [string, string] {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(s.trimStart());
  return m ? [m[1] as string, m[2] as string] : ["", ""];
}

export function parseCommand(input: string): Command {
  const line = input.replace(/\r?\n$/, "");
  if (line.trim() === "") return { type: "empty" };
  if (!line.startsWith("/")) return { type: "broadcast", text: line };
  if (line.startsWith("//")) return { type: "broadcast", text: line.slice(1) };
  const [word, rest] = firstWord(line.slice(1));
  const name = lookup(word);
  if (!name) {
    return { type: "invalid", message: `unknown command /${word} (see /help)` };
  }
  switch (name) {
    case "b":
      return rest.trim() === "" ? usage("b") : { type: "broadcast", text: rest };
    case "p": {
      const [peer, text] = firstWord(rest);
      if (peer === "" || text.trim() === "") return usage("p");
      return { type: "private", peer, text };
    }
    case "q":
      return { type: "quit" };
    case "peers":
      return { type: "peers" };
    case "stats":
      return { type: "stats" };
    case "help":
      return { type: "help" };
    case "whoami":
      return rest.trim() === "" ? { type: "whoami" } : usage("whoami");
    case "history": {
      const arg = rest.trim();
      if (arg === "") return { type: "history", limit: DEFAULT_HISTORY };
      const n = Number(arg);
      if (!/^\d+$/.test(arg) || n < 1 || n > MAX_HISTORY) {
        return { type: "invalid", message: `usage: /history [n], n from 1 to ${MAX_HISTORY}` };
      }
      return { type: "history", limit: n };
    }
    case "retry": {
      const [peer, extra] = firstWord(rest);
      if (extra !== "") return usage("retry");
      return peer === "" ? { type: "retry" } : { type: "retry", peer };
    }
    case "verify": {
      const [peer, extra] = firstWord(rest);
      if (extra !== "") return usage("verify");
      return peer === "" ? { type: "verify" } : { type: "verify", peer };
    }
    case "fault":
      return parseFaultArgs(rest);
  }
}

const OFF_WORDS = ["off", "none", "reset", "clear"];

function parseFaultArgs(rest: string): Command {
  const words = rest.trim() === "" ? [] : rest.trim().split(/\s+/);
  if (words.length === 0) return { type: "fault" };
  const kind = (words[0] as string).toLowerCase();
  if (words.length === 1 && OFF_WORDS.includes(kind)) return { type: "fault", change: { ...NO_FAULTS } };
  // "/fault blackhole" alone switches it on.
  const value = words.length === 1 && kind === "blackhole" ? "on" : words[1];
  if (value === undefined || words.length > 2) {
    return { type: "invalid", message: "usage: /fault <kind> <value>, e.g. /fault loss 0.3 (or /fault off)" };
  }
  try {
    return { type: "fault", change: parseFault(kind, value.toLowerCase()) };
  } catch (error) {
    return { type: "invalid", message: (error as Error).message };
  }
}

/** Tab completion: command words after "/", then peer names (or fault kinds) for the argument. */
export function complete(
  line: string,
  peerNames: readonly string[],
  faultNames: readonly string[],
): [string[], string] {
  if (!line.startsWith("/")) return [[], line];
  const m = /^\/(\S*)$/.exec(line);
  if (m) {
    const partial = (m[1] as string).toLowerCase();
    const hits = COMMAND_WORDS.filter((w) => w.startsWith(partial)).map((w) => `/${w}`);
    return [hits, line];
  }
  const arg = /^\/(\S+)\s+(\S*)$/.exec(line);
  if (!arg) return [[], line];
  const name = lookup(arg[1] as string);
  const partial = arg[2] as string;
  const pool =
    name === "p" || name === "verify" || name === "retry" ? peerNames : name === "fault" ? faultNames : [];
  const lower = partial.toLowerCase();
  return [pool.filter((w) => w.toLowerCase().startsWith(lower)).map((w) => `${w} `), partial];
}
