/**
 * The commands that login errors suggest, spelled so that they work when typed as printed: with `--data-dir` when
 * the data directory is not the default one (else the command would act on another directory), with the user's
 * own port and host, and with `--base-port` when the demo users were made on another base. test/cli/advice.test.ts
 * runs each of them.
 */

// A cycle (register.ts uses this module), harmless: these constants are read only when a function runs.
import { DEFAULT_BASE_PORT, DEFAULT_HOST, DEFAULT_USERS } from "./demo-users.ts";
import { resolveDataDir } from "./directory.ts";
import type { UserRecord } from "./record.ts";

/** ` --data-dir DIR` unless `dataDir` is where chatnode looks without the flag. */
export function dataDirFlag(dataDir: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolveDataDir(undefined, env) === dataDir ? "" : ` --data-dir ${shellWord(dataDir)}`;
}

/** A word as a POSIX shell reads it back: quoted only when it has to be. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function isDemoName(name: string): boolean {
  return DEFAULT_USERS.some((user) => user.name === name);
}

/**
 * The base port `chatnode bulk-register` would have used to give `record` its address, if it is a demo user's
 * (its name, on DEFAULT_HOST at base + its index); undefined otherwise.
 */
export function demoBasePort(record: UserRecord): number | undefined {
  const index = DEFAULT_USERS.findIndex((user) => user.name === record.name);
  if (index < 0 || record.host !== DEFAULT_HOST) return undefined;
  const base = record.port - index;
  return base >= 1 && base + DEFAULT_USERS.length - 1 <= 65535 ? base : undefined;
}

/** `chatnode bulk-register`, with the flags that make it act on this directory and base port. */
export function bulkRegisterCommand(dataDir: string, basePort = DEFAULT_BASE_PORT): string {
  const base = basePort === DEFAULT_BASE_PORT ? "" : ` --base-port ${basePort}`;
  return `chatnode bulk-register${base}${dataDirFlag(dataDir)}`;
}

/** `chatnode register …` for `name`; with a record, at its address and with --force (new keys, same name). */
export function registerCommand(dataDir: string, name: string, record?: UserRecord): string {
  if (!record) return `chatnode register --username ${name}${dataDirFlag(dataDir)}`;
  const host = record.host === DEFAULT_HOST ? "" : ` --host ${shellWord(record.host)}`;
  return `chatnode register --username ${name} --port ${record.port}${host} --force${dataDirFlag(dataDir)}`;
}

/** What to run for a name that is in the directory as a contact only (its key file is gone, or it was imported). */
export function missingKeyAdvice(dataDir: string, record: UserRecord): string {
  const base = demoBasePort(record);
  if (base !== undefined)
    return `if it is the demo user and its key file was lost, \`${bulkRegisterCommand(dataDir, base)}\` makes it new keys`;
  return (
    `if ${record.name} was yours and its key file was lost, \`${registerCommand(dataDir, record.name, record)}\` ` +
    "makes it new keys (its peers then need its new contact code)"
  );
}
