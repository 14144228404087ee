import type { Command } from "commander";
import { DATA_DIR_DEFAULT_HELP } from "../identity/directory.ts";
import { DEFAULT_BASE_PORT, DEFAULT_HOST, login, type UnlockedIdentity } from "../identity/register.ts";
import { UsageError } from "./errors.ts";
import {
  bulkRegisterCommand,
  exportContactCommand,
  importContactCommand,
  listUsersCommand,
  registerCommand,
} from "./user-actions.ts";

/**
 * The user-management commands: register, bulk-register, users, contact export / import (what each does is in
 * user-actions.ts). Every command takes --data-dir. Any failure is one line on stderr and exit code 2, never a
 * stack trace.
 */

const EXIT_ERROR = 2;
const DATA_DIR_HELP = `data directory (default: ${DATA_DIR_DEFAULT_HELP})`;

/** Prints `chatnode: <message>` as one line on stderr and exits 2 (or the code given). */
export function fail(message: string, exitCode = EXIT_ERROR): never {
  process.stderr.write(`chatnode: ${message.replace(/\s*\n\s*/g, " ")}\n`);
  process.exit(exitCode);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs a command body; any error becomes fail(message). */
function action<A extends unknown[]>(
  body: (...args: A) => Promise<void> | void,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await body(...args);
    } catch (error) {
      fail(messageOf(error), error instanceof UsageError ? error.exitCode : EXIT_ERROR);
    }
  };
}

/** Commander's own usage errors (unknown option, missing argument) also exit 2 instead of 1. */
function exitTwoOnUsageError(command: Command): Command {
  return command.exitOverride((error) => {
    process.exit(error.exitCode === 0 ? 0 : EXIT_ERROR);
  });
}

/**
 * Unlocks `username` for a command that needs its keys (chat, send...). On failure prints one line (login's message
 * says what to run when the name is unknown) and exits 2, so callers can use the result without checks.
 */
export async function unlockUser(options: {
  readonly dataDir?: string;
  readonly username: string;
  readonly password: string;
}): Promise<UnlockedIdentity> {
  try {
    return await login(options);
  } catch (error) {
    fail(messageOf(error));
  }
}

export function addUserCommands(program: Command): void {
  addRegister(program);
  addBulkRegister(program);
  addUsers(program);
  addContact(program);
}

function addRegister(program: Command): void {
  exitTwoOnUsageError(
    program
      .command("register")
      .description("create a local user: new keys, a password-protected key file and a directory entry")
      .option("--username <name>", "user name: 1-32 of a-z 0-9 _ -, starting with a letter")
      .option(
        "--password <password>",
        "password for the key file (visible to other local users in `ps`; omit to be asked)",
      )
      .option("--port <port>", "UDP port this user listens on, 1-65535")
      .option("--host <host>", `address peers reach this user at (default ${DEFAULT_HOST})`)
      .option("--force", "replace an existing user of that name with new keys")
      .option("--data-dir <dir>", DATA_DIR_HELP)
      .addHelpText(
        "after",
        `
Missing values are asked for; the password is typed without echo and confirmed.

Examples:
  $ chatnode register
  $ chatnode register --username dave --port 12010
  $ chatnode register --username dave --password 'correct horse' --port 12010 --host 192.0.2.7 --data-dir ./demo`,
      )
      .action(action(registerCommand)),
  );
}

function addBulkRegister(program: Command): void {
  exitTwoOnUsageError(
    program
      .command("bulk-register")
      .description(
        "create the 10 demo users zoe, alice, ... ivan (passwords pass0 ... pass9) on base-port + 0..9",
      )
      .option("--base-port <port>", "port of the first user", String(DEFAULT_BASE_PORT))
      .option("--data-dir <dir>", DATA_DIR_HELP)
      .addHelpText(
        "after",
        `
Idempotent: users that already exist keep their keys. A demo user whose key file is missing (at its demo
address) gets new keys, and the line says so: the old ones cannot be recovered. The demo passwords are public: use them for trying
ChatNode out, and \`chatnode register\` for real users.

Examples:
  $ chatnode bulk-register
  $ chatnode bulk-register --base-port 13000 --data-dir ./demo`,
      )
      .action(action(bulkRegisterCommand)),
  );
}

function addUsers(program: Command): void {
  exitTwoOnUsageError(
    program
      .command("users")
      .description("list the users in the directory: name, address, short fingerprint, local or contact")
      .option("--data-dir <dir>", DATA_DIR_HELP)
      .addHelpText(
        "after",
        `
"local" users have a key file on this machine (you can log in as them); "contact" users were imported.

Examples:
  $ chatnode users
  $ chatnode users --data-dir ./demo`,
      )
      .action(action(listUsersCommand)),
  );
}

function addContact(program: Command): void {
  const contact = exitTwoOnUsageError(
    program
      .command("contact")
      .description("exchange contact codes (public keys and an address hint) with other people")
      .addHelpText(
        "after",
        `
A contact code is one line of text: send yours to a friend (chat, mail, a note), and import theirs.

Examples:
  $ chatnode contact export alice
  $ chatnode contact import 'chatnode:1/bob@192.0.2.8:12002/…'
  $ chatnode contact export alice --card > alice.contact.json`,
      ),
  );

  exitTwoOnUsageError(
    contact
      .command("export")
      .argument("<name>", "user to export")
      .description("print NAME's contact code (one line, no secrets) on stdout; --card for the JSON card")
      .option(
        "--address <host:port>",
        "the address hint the code carries (default: NAME's registered address), e.g. your LAN or public one",
      )
      .option("--card", "print the JSON contact card instead (the format before codes; still imported)")
      .option("--data-dir <dir>", DATA_DIR_HELP)
      .addHelpText(
        "after",
        `
The keys in the code are what the importer pins; the address is a hint of where to find NAME first (the node
then follows NAME's address from its authenticated datagrams).

Examples:
  $ chatnode contact export alice
  $ chatnode contact export alice --address 192.0.2.7:12001 > alice.code
  $ chatnode contact export alice --card > alice.contact.json
  $ chatnode contact export alice --data-dir ./demo`,
      )
      .action(action(exportContactCommand)),
  );

  exitTwoOnUsageError(
    contact
      .command("import")
      .argument(
        "<code-or-file>",
        'a contact code (chatnode:…), a file holding a code or a JSON card, or "-" for stdin',
      )
      .description("add a contact code or card to the directory, pinning its name to its keys")
      .option("--force", "replace the keys already pinned to that name")
      .option("--data-dir <dir>", DATA_DIR_HELP)
      .addHelpText(
        "after",
        `
Compare the printed fingerprint with the contact through another channel (in person, by phone).
A code or card for a known name with different keys is refused unless --force. Quote a code in the shell.

Examples:
  $ chatnode contact import 'chatnode:1/bob@192.0.2.8:12002/…'
  $ chatnode contact import bob.code
  $ chatnode contact import - < alice.contact.json
  $ chatnode contact import new-alice.code --force`,
      )
      .action(action(importContactCommand)),
  );
}
