/**
 * What the CLI's entry point does before anything else loads: when the command line names the chat's user and
 * password (flags, or $CHATNODE_PASSWORD), it starts that user's key unlock, so that scrypt runs on libuv's thread
 * pool while the rest of the program loads and parses the same command line properly. This is a guess, kept
 * deliberately simple (node:util's parseArgs, not commander, which is part of what loads meanwhile): login() uses
 * the result only if it unlocked the same key file, user and password (src/identity/unlock-ahead.ts).
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { keyFilePathIn, resolveDataDir } from "../identity/directory.ts";
import { unlockAhead } from "../identity/unlock-ahead.ts";
import { readPasswordFile } from "./password-file.ts";

export const PASSWORD_ENV = "CHATNODE_PASSWORD";

/**
 * The chat's flags that take a value (test/cli/login-ahead.test.ts checks them against addChatOptions). Knowing
 * them keeps a value such as the IP in `--host 0.0.0.0` from being taken for a command name.
 */
export const CHAT_VALUE_FLAGS = [
  "username",
  "password",
  "password-file",
  "port",
  "host",
  "data-dir",
  "loss",
  "loss-in",
  "loss-out",
  "duplicate",
  "bad-signature",
  "wrong-key",
  "delay",
  "jitter",
] as const;

const SHORT: Partial<Record<(typeof CHAT_VALUE_FLAGS)[number], string>> = { username: "u", password: "p" };

export interface ChatLogin {
  keyPath: string;
  username: string;
  password: string;
}

/** The key file, user and password a `chatnode [chat] …` command line will log in with, when it says them plainly. */
export function chatLoginFromArgv(args: readonly string[], env: NodeJS.ProcessEnv): ChatLogin | undefined {
  const options = Object.fromEntries(
    CHAT_VALUE_FLAGS.map((flag) => {
      const short = SHORT[flag];
      return [flag, short ? { type: "string" as const, short } : { type: "string" as const }];
    }),
  );
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...args], options, strict: false, allowPositionals: true });
  } catch {
    return undefined;
  }
  const { values, positionals } = parsed;
  // Another command (or a mistake that commander will report): nothing to unlock.
  if (positionals.length > 0 && positionals[0] !== "chat") return undefined;
  const username = values.username;
  const password = values.password ?? passwordFileAhead(values["password-file"]) ?? env[PASSWORD_ENV];
  if (typeof username !== "string" || typeof password !== "string" || username === "" || password === "")
    return undefined;
  const dataDir = values["data-dir"];
  try {
    const name = username.toLowerCase();
    const keyPath = keyFilePathIn(
      resolveDataDir(typeof dataDir === "string" ? dataDir : undefined, env),
      name,
    );
    return { keyPath, username: name, password };
  } catch {
    return undefined; // not a valid user name: login() says so
  }
}

/** A --password-file's password, read quietly (the real read reports its problems); not stdin's, which is the client's. */
function passwordFileAhead(path: unknown): string | undefined {
  if (typeof path !== "string" || path === "-") return undefined;
  try {
    return readPasswordFile(path, () => {});
  } catch {
    return undefined;
  }
}

/** Starts the unlock chatLoginFromArgv finds, if its key file exists. */
export function startLoginAhead(args: readonly string[], env: NodeJS.ProcessEnv): void {
  const login = chatLoginFromArgv(args, env);
  if (login && existsSync(login.keyPath)) unlockAhead(login.keyPath, login.username, login.password);
}
