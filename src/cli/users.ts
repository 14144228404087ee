import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { exportContact, importContact } from "../identity/contact.ts";
import {
  DATA_DIR_DEFAULT_HELP,
  type Directory,
  openDirectory,
  resolveDataDir,
} from "../identity/directory.ts";
import { shortenFingerprint } from "../identity/fingerprint.ts";
import { validatePort, validateUsername } from "../identity/record.ts";
import {
  bulkRegister,
  DEFAULT_BASE_PORT,
  DEFAULT_HOST,
  login,
  registerUser,
  type UnlockedIdentity,
} from "../identity/register.ts";
import { UsageError } from "./errors.ts";
import { Prompter } from "./prompt.ts";

/**
 * The user-management commands: register, bulk-register, users, contact export / import. Every command takes
 * --data-dir. Any failure is one line on stderr and exit code 2, never a stack trace.
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

/** The first port from 12000 up that no user in the directory has: the default the register prompt offers. */
function suggestPort(directory: Directory): number {
  const taken = new Set(directory.listUsers().map((user) => user.port));
  let port = DEFAULT_BASE_PORT;
  while (taken.has(port) && port < 65535) port++;
  return port;
}

interface RegisterFlags {
  dataDir?: string;
  username?: string;
  password?: string;
  port?: string;
  host?: string;
  force?: boolean;
}

async function registerCommand(flags: RegisterFlags): Promise<void> {
  const dataDir = resolveDataDir(flags.dataDir);
  let prompter: Prompter | undefined;
  const prompt = () => {
    prompter ??= new Prompter();
    return prompter;
  };
  let username: string;
  let port: number;
  let host = flags.host ?? DEFAULT_HOST;
  let password: string;
  try {
    const askAddress = flags.username === undefined || flags.port === undefined;
    username = validateUsername(flags.username ?? (await prompt().ask("Username: ")));
    if (flags.port !== undefined) {
      port = validatePort(flags.port);
    } else {
      const suggested = suggestPort(openDirectory(dataDir));
      port = validatePort((await prompt().ask(`Port [${suggested}]: `)) || String(suggested));
    }
    if (flags.host === undefined && askAddress)
      host = (await prompt().ask(`Host [${DEFAULT_HOST}]: `)) || DEFAULT_HOST;
    if (flags.password !== undefined) {
      password = flags.password;
    } else {
      password = await prompt().askHidden("Password: ");
      if ((await prompt().askHidden("Confirm password: ")) !== password)
        throw new Error("the passwords do not match");
    }
  } finally {
    prompter?.close();
  }
  const record = await registerUser({ dataDir, username, password, port, host, force: flags.force === true });
  process.stdout.write(
    `registered ${record.name} at ${address(record.host, record.port)} in ${dataDir}\nfingerprint ${record.fingerprint}\n`,
  );
}

function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function address(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export function addUserCommands(program: Command): void {
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
      .action(
        action(async (flags: { basePort: string; dataDir?: string }) => {
          const dataDir = resolveDataDir(flags.dataDir);
          const result = await bulkRegister({ dataDir, basePort: validatePort(flags.basePort) });
          const rows = [
            ...result.created.map((r) => [
              "created",
              r.name,
              address(r.host, r.port),
              shortenFingerprint(r.fingerprint),
            ]),
            ...result.existing.map((r) => [
              "exists",
              r.name,
              address(r.host, r.port),
              shortenFingerprint(r.fingerprint),
            ]),
            ...result.recreated.map(({ record: r }) => [
              "new keys",
              r.name,
              address(r.host, r.port),
              shortenFingerprint(r.fingerprint),
            ]),
          ];
          if (rows.length > 0) process.stdout.write(`${formatTable(rows)}\n`);
          for (const { record, previousFingerprint } of result.recreated)
            process.stderr.write(
              `chatnode: ${record.name}'s key file was missing: made new keys (fingerprint ` +
                `${shortenFingerprint(previousFingerprint)} is now ${shortenFingerprint(record.fingerprint)}); ` +
                `contacts on other machines need ${record.name}'s new contact card\n`,
            );
          for (const skip of result.skipped)
            process.stderr.write(`chatnode: skipped ${skip.name}: ${skip.reason}\n`);
          const renewed = result.recreated.length > 0 ? `, ${result.recreated.length} with new keys` : "";
          process.stdout.write(
            `${result.created.length} created, ${result.existing.length} already there${renewed}, in ${dataDir}\n`,
          );
        }),
      ),
  );

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
      .action(
        action((flags: { dataDir?: string }) => {
          const directory = openDirectory(resolveDataDir(flags.dataDir));
          const users = directory.listUsers();
          if (users.length === 0) {
            process.stdout.write(
              `no users in ${directory.dataDir}: run \`chatnode bulk-register\` or \`chatnode register\`\n`,
            );
            return;
          }
          const rows = users.map((user) => [
            user.name,
            address(user.host, user.port),
            shortenFingerprint(user.fingerprint),
            directory.hasKeyFile(user.name) ? "local" : "contact",
          ]);
          process.stdout.write(`${formatTable([["NAME", "ADDRESS", "FINGERPRINT", "KIND"], ...rows])}\n`);
        }),
      ),
  );

  const contact = exitTwoOnUsageError(
    program
      .command("contact")
      .description("exchange contact cards (public keys and address) with other people")
      .addHelpText(
        "after",
        `
Examples:
  $ chatnode contact export alice > alice.contact.json
  $ chatnode contact import alice.contact.json`,
      ),
  );

  exitTwoOnUsageError(
    contact
      .command("export")
      .argument("<name>", "user to export")
      .description("print NAME's contact card (JSON, no secrets) on stdout")
      .option("--data-dir <dir>", DATA_DIR_HELP)
      .addHelpText(
        "after",
        `
Examples:
  $ chatnode contact export alice > alice.contact.json
  $ chatnode contact export alice --data-dir ./demo`,
      )
      .action(
        action((name: string, flags: { dataDir?: string }) => {
          process.stdout.write(exportContact(openDirectory(resolveDataDir(flags.dataDir)), name));
        }),
      ),
  );

  exitTwoOnUsageError(
    contact
      .command("import")
      .argument("<file>", 'contact card file, or "-" for stdin')
      .description("add the contact card in FILE to the directory, pinning its name to its keys")
      .option("--force", "replace the keys already pinned to that name")
      .option("--data-dir <dir>", DATA_DIR_HELP)
      .addHelpText(
        "after",
        `
Compare the printed fingerprint with the contact through another channel (in person, by phone).
A card for a known name with different keys is refused unless --force.

Examples:
  $ chatnode contact import alice.contact.json
  $ chatnode contact import - < alice.contact.json
  $ chatnode contact import new-alice.contact.json --force`,
      )
      .action(
        action((file: string, flags: { force?: boolean; dataDir?: string }) => {
          let text: string;
          try {
            text = readFileSync(file === "-" ? 0 : file, "utf8");
          } catch (error) {
            throw new Error(`cannot read ${file}: ${messageOf(error)}`);
          }
          const directory = openDirectory(resolveDataDir(flags.dataDir));
          const { record, outcome } = importContact(directory, text, { force: flags.force === true });
          const verb = {
            added: "added",
            unchanged: "already known:",
            "address-updated": "updated address of",
            replaced: "replaced keys of",
          }[outcome];
          process.stdout.write(
            `${verb} ${record.name} at ${address(record.host, record.port)}\nfingerprint ${record.fingerprint}\n` +
              `compare it with ${record.name} through another channel before trusting it\n`,
          );
        }),
      ),
  );
}
