/**
 * What the user-management commands do once commander has parsed them (users.ts defines them): register,
 * bulk-register, users, contact export / import. Each prints its result on stdout; a failure throws.
 */
import { readFileSync } from "node:fs";
import { exportContact, exportContactCode, importContact } from "../identity/contact.ts";
import { looksLikeContactCode } from "../identity/contact-code.ts";
import { type Directory, openDirectory, resolveDataDir } from "../identity/directory.ts";
import { shortenFingerprint } from "../identity/fingerprint.ts";
import { parseHostPort, type UserRecord, validatePort, validateUsername } from "../identity/record.ts";
import { bulkRegister, DEFAULT_BASE_PORT, DEFAULT_HOST, registerUser } from "../identity/register.ts";
import { UsageError } from "./errors.ts";
import { Prompter } from "./prompt.ts";

export interface RegisterFlags {
  dataDir?: string;
  username?: string;
  password?: string;
  port?: string;
  host?: string;
  force?: boolean;
}

/** A value left out of the flags is asked for; the password without echo, twice. */
export async function registerCommand(flags: RegisterFlags): Promise<void> {
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

/** The first port from 12000 up that no user in the directory has: the default the register prompt offers. */
function suggestPort(directory: Directory): number {
  const taken = new Set(directory.listUsers().map((user) => user.port));
  let port = DEFAULT_BASE_PORT;
  while (taken.has(port) && port < 65535) port++;
  return port;
}

/** A table of what happened to each demo user on stdout; new keys and skipped users also said on stderr. */
export async function bulkRegisterCommand(flags: { basePort: string; dataDir?: string }): Promise<void> {
  const dataDir = resolveDataDir(flags.dataDir);
  const result = await bulkRegister({ dataDir, basePort: validatePort(flags.basePort) });
  const row = (outcome: string, r: UserRecord) => [
    outcome,
    r.name,
    address(r.host, r.port),
    shortenFingerprint(r.fingerprint),
  ];
  const rows = [
    ...result.created.map((r) => row("created", r)),
    ...result.existing.map((r) => row("exists", r)),
    ...result.recreated.map(({ record }) => row("new keys", record)),
  ];
  if (rows.length > 0) process.stdout.write(`${formatTable(rows)}\n`);
  for (const { record, previousFingerprint } of result.recreated)
    process.stderr.write(
      `chatnode: ${record.name}'s key file was missing: made new keys (fingerprint ` +
        `${shortenFingerprint(previousFingerprint)} is now ${shortenFingerprint(record.fingerprint)}); ` +
        `contacts on other machines need ${record.name}'s new contact code\n`,
    );
  for (const skip of result.skipped) process.stderr.write(`chatnode: skipped ${skip.name}: ${skip.reason}\n`);
  const renewed = result.recreated.length > 0 ? `, ${result.recreated.length} with new keys` : "";
  process.stdout.write(
    `${result.created.length} created, ${result.existing.length} already there${renewed}, in ${dataDir}\n`,
  );
}

export function listUsersCommand(flags: { dataDir?: string }): void {
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
}

export function exportContactCommand(
  name: string,
  flags: { dataDir?: string; card?: boolean; address?: string },
): void {
  const directory = openDirectory(resolveDataDir(flags.dataDir));
  if (flags.card) {
    if (flags.address !== undefined)
      throw new UsageError("--address is for contact codes: a card carries the registered address");
    process.stdout.write(exportContact(directory, name));
    return;
  }
  const hints = flags.address === undefined ? undefined : [parseHostPort(flags.address)];
  process.stdout.write(exportContactCode(directory, name, hints));
}

/** A code given on the command line, or the text of a file (a code or a JSON card), or of stdin for "-". */
function readContact(source: string): string {
  if (source !== "-" && looksLikeContactCode(source)) return source;
  try {
    return readFileSync(source === "-" ? 0 : source, "utf8");
  } catch (error) {
    throw new Error(`cannot read ${source}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function importContactCommand(source: string, flags: { force?: boolean; dataDir?: string }): void {
  const text = readContact(source);
  const directory = openDirectory(resolveDataDir(flags.dataDir));
  const { record, outcome } = importContact(directory, text, { force: flags.force === true });
  const verb = {
    added: "added",
    unchanged: "already known:",
    "address-updated": "updated address of",
    replaced: "replaced keys of",
  }[outcome];
  const at = address(record.host, record.port);
  // A loopback hint (the default, copied from another machine) finds the contact only if it runs here.
  const loopback = isLoopback(record.host)
    ? `note: ${at} is a loopback address, which reaches ${record.name} only on this machine; if ${record.name} ` +
      "is elsewhere, give them your code with an address they can reach (contact export --address): " +
      `your node learns ${record.name}'s from their first datagram\n`
    : "";
  process.stdout.write(
    `${verb} ${record.name} at ${at}\nfingerprint ${record.fingerprint}\n` +
      `compare it with ${record.name} through another channel before trusting it\n${loopback}`,
  );
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
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
