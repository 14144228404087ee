import { existsSync } from "node:fs";
import { KeyFileError } from "../crypto/errors.ts";
import { readKeyFile, writeKeyFile } from "../crypto/keyfile.ts";
import { generateSecretKeys, type PublicKeys, type SecretKeys } from "../crypto/keys.ts";
import type { PeerId } from "../engine/types.ts";
import {
  bulkRegisterCommand,
  dataDirFlag,
  demoBasePort,
  isDemoName,
  missingKeyAdvice,
  registerCommand,
} from "./advice.ts";
import { DEFAULT_BASE_PORT, DEFAULT_HOST, DEFAULT_USERS } from "./demo-users.ts";
import { type Directory, keyFilePathIn, openDirectory, resolveDataDir } from "./directory.ts";
import { IdentityError } from "./errors.ts";
import {
  createUserRecord,
  recordPublicKeys,
  sameKeys,
  USERNAME_PATTERN,
  type UserRecord,
  validateHost,
  validatePort,
  validateUsername,
} from "./record.ts";
import { takeUnlockAhead } from "./unlock-ahead.ts";

/**
 * Creating local users (keys + key file + directory entry) and unlocking them. Key files are written before the
 * directory entry, so a crash in between leaves an orphan key file (which bulk-register repairs), never a directory
 * entry that claims to be local but has no keys.
 */

export { DEFAULT_BASE_PORT, DEFAULT_HOST, DEFAULT_USERS } from "./demo-users.ts";

/** A user whose secret keys are unlocked: pass it as `identity` to createCryptoPort. */
export interface UnlockedIdentity extends SecretKeys {
  readonly username: string;
  readonly peerId: PeerId;
  readonly host: string;
  readonly port: number;
  readonly publicKeys: PublicKeys;
  readonly record: UserRecord;
  readonly dataDir: string;
}

export interface RegisterOptions {
  /** Defaults to resolveDataDir(): $CHATNODE_HOME, an existing ~/.chatnode, or the XDG data directory. */
  readonly dataDir?: string;
  readonly username: string;
  readonly password: string;
  readonly port: number | string;
  readonly host?: string;
  /** Replace an existing user of that name (new keys), or take an address another user has. */
  readonly force?: boolean;
  /** scrypt cost; default 2^15. Tests pass a small value. */
  readonly scryptN?: number;
}

function validatePassword(password: unknown): string {
  if (typeof password !== "string" || password.length === 0) {
    throw new IdentityError("INVALID", "the password must not be empty");
  }
  return password;
}

/** Registers one local user. Throws IdentityError (INVALID, USER_EXISTS, ADDRESS_TAKEN, DAMAGED). */
export async function registerUser(options: RegisterOptions): Promise<UserRecord> {
  const username = validateUsername(options.username);
  const password = validatePassword(options.password);
  const port = validatePort(options.port);
  const host = validateHost(options.host ?? DEFAULT_HOST);
  const directory = openDirectory(resolveDataDir(options.dataDir));
  const force = options.force === true;
  const existing = directory.getUser(username);
  if (!force && (existing || directory.hasKeyFile(username))) {
    const what = existing ? `already exists (fingerprint ${existing.fingerprint})` : "already has a key file";
    throw new IdentityError("USER_EXISTS", `${username} ${what}; pass --force to replace it with new keys`);
  }
  const secrets = generateSecretKeys();
  const record = createUserRecord({ name: username, host, port, secrets });
  directory.planAdd(record, { force, local: true });
  await writeKeyFile(directory.keyFilePath(username), {
    username,
    password,
    secrets,
    scrypt: scryptOverride(options.scryptN),
  });
  directory.addUser(record, { force, local: true });
  return record;
}

function scryptOverride(scryptN: number | undefined): { N: number } | undefined {
  return scryptN === undefined ? undefined : { N: scryptN };
}

export interface BulkRegisterOptions {
  readonly dataDir?: string;
  readonly basePort?: number;
  readonly host?: string;
  readonly scryptN?: number;
}

export interface BulkRegisterResult {
  /** Users created by this call. */
  readonly created: readonly UserRecord[];
  /** Users that already existed with their keys: left untouched. */
  readonly existing: readonly UserRecord[];
  /** Demo users whose key file was missing: new keys, replacing the entry (the old fingerprint is given). */
  readonly recreated: readonly { readonly record: UserRecord; readonly previousFingerprint: string }[];
  /** Users that could not be created, with the reason (e.g. a contact already has the name). */
  readonly skipped: readonly { readonly name: string; readonly reason: string }[];
}

/**
 * Creates the ten DEFAULT_USERS on basePort + i. Idempotent: a user that already has a directory entry and a key
 * file is left exactly as it is. A demo user whose key file is missing gets new keys (see `recreated`). The ten scrypt derivations run concurrently on libuv's thread pool.
 */
export async function bulkRegister(options: BulkRegisterOptions = {}): Promise<BulkRegisterResult> {
  const basePort = validatePort(options.basePort ?? DEFAULT_BASE_PORT);
  const lastPort = basePort + DEFAULT_USERS.length - 1;
  if (lastPort > 65535) {
    throw new IdentityError(
      "INVALID",
      `base port ${basePort} leaves no room for ${DEFAULT_USERS.length} users (at most ${65536 - DEFAULT_USERS.length})`,
    );
  }
  const host = validateHost(options.host ?? DEFAULT_HOST);
  const directory = openDirectory(resolveDataDir(options.dataDir));
  const existing: UserRecord[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const recreated: { record: UserRecord; previousFingerprint: string }[] = [];
  const jobs = DEFAULT_USERS.map(async ({ name, password }, index): Promise<UserRecord | undefined> => {
    const entry = directory.getUser(name);
    const hasKey = directory.hasKeyFile(name);
    if (entry && hasKey) {
      existing.push(entry);
      return undefined;
    }
    // A demo user's entry, at its demo address, whose key file is gone (deleted, or a copy of users.json without
    // keys/): its secret keys are lost for good, so it gets new ones; its password is public anyway. Any other
    // entry without a key file may be an imported contact, whose pinned keys must not be replaced behind its back.
    const lostKey = entry !== undefined && entry.host === host && demoBasePort(entry) === basePort;
    if (entry && !lostKey) {
      skipped.push({
        name,
        reason: `${name} is already a contact (no key file here) at ${entry.host}:${entry.port}, not the demo address; not replacing it`,
      });
      return undefined;
    }
    try {
      if (hasKey) return await repairOrphan(directory, name, password, host, basePort + index);
      const secrets = generateSecretKeys();
      const record = createUserRecord({ name, host, port: basePort + index, secrets });
      directory.planAdd(record, { force: lostKey, local: true });
      await writeKeyFile(directory.keyFilePath(name), {
        username: name,
        password,
        secrets,
        scrypt: scryptOverride(options.scryptN),
      });
      if (lostKey) {
        recreated.push({ record, previousFingerprint: entry.fingerprint });
        return undefined;
      }
      return record;
    } catch (error) {
      if (!(error instanceof IdentityError || error instanceof KeyFileError)) throw error;
      skipped.push({ name, reason: error.message });
      return undefined;
    }
  });
  const created = (await Promise.all(jobs)).filter((record): record is UserRecord => record !== undefined);
  directory.addUsers(created, { local: true });
  directory.addUsers(
    recreated.map((r) => r.record),
    { force: true, local: true },
  );
  return { created, existing, skipped, recreated };
}

/** A key file without a directory entry (a crash between the two writes): re-create the entry from the keys. */
async function repairOrphan(
  directory: Directory,
  name: string,
  password: string,
  host: string,
  port: number,
) {
  const unlocked = await readKeyFile(directory.keyFilePath(name), { username: name, password });
  const record = createUserRecord({ name, host, port, secrets: unlocked.secrets });
  directory.planAdd(record, { local: true });
  return record;
}

export interface LoginOptions {
  readonly dataDir?: string;
  readonly username: string;
  readonly password: string;
  /**
   * The data directory's users, if the caller has them open already (parsing them checks every user's
   * signature); or a function that opens `dataDir`'s, called once the key derivation is under way, so that the
   * two overlap.
   */
  readonly directory?: Directory | (() => Directory);
}

/**
 * Unlocks a local user's keys. Reads only: never creates or changes a file.
 * Throws IdentityError UNKNOWN_USER, WRONG_PASSWORD or DAMAGED.
 */
export async function login(options: LoginOptions): Promise<UnlockedIdentity> {
  const dataDir = resolveDataDir(options.dataDir);
  const name = options.username.toLowerCase();
  if (!USERNAME_PATTERN.test(name)) {
    throw new IdentityError(
      "UNKNOWN_USER",
      `unknown user ${JSON.stringify(options.username)} in ${dataDir}: not a valid user name ` +
        `(\`chatnode users${dataDirFlag(dataDir)}\` lists the users)`,
    );
  }
  // scrypt is most of a login (on libuv's thread pool) and needs only the key file: it starts first, and the
  // directory is read and checked meanwhile. Its answer is awaited only after the directory's checks, so a name
  // that is not a local user is still reported as such, whatever the password.
  const given = options.directory;
  // A Directory handed over names its own key folder; a function to open one must be for `dataDir`.
  const keyPath = typeof given === "object" ? given.keyFilePath(name) : keyFilePathIn(dataDir, name);
  const unlocking = existsSync(keyPath)
    ? (takeUnlockAhead(keyPath, name, options.password) ??
      readKeyFile(keyPath, { username: name, password: options.password }))
    : undefined;
  unlocking?.catch(() => {}); // not awaited when a directory check below throws first
  const directory = typeof given === "function" ? given() : (given ?? openDirectory(dataDir));
  const record = directory.getUser(name);
  if (!record && !unlocking) {
    const demo = isDemoName(name) ? `\`${bulkRegisterCommand(dataDir)}\` for the demo users, or ` : "";
    throw new IdentityError(
      "UNKNOWN_USER",
      `unknown user ${name} in ${dataDir} (run ${demo}\`${registerCommand(dataDir, name)}\` to create it; ` +
        `\`chatnode users${dataDirFlag(dataDir)}\` lists the users)`,
    );
  }
  if (!record) {
    throw new IdentityError("DAMAGED", `${name} has a key file but no entry in ${directory.usersPath}`);
  }
  if (!unlocking) {
    throw new IdentityError(
      "UNKNOWN_USER",
      `${name} is a contact, not a local user: there is no key file for ${name} in ${directory.keysDir} ` +
        `(${missingKeyAdvice(dataDir, record)})`,
    );
  }
  let unlocked: Awaited<ReturnType<typeof readKeyFile>>;
  try {
    unlocked = await unlocking;
  } catch (error) {
    if (!(error instanceof KeyFileError)) throw error;
    // A lost password cannot be recovered (it encrypts the keys): the way out is new keys under the same name.
    const advice =
      error.code === "WRONG_PASSWORD"
        ? ` (passwords are case-sensitive; if it is lost, \`${registerCommand(dataDir, name, record)}\` makes ${name} new keys)`
        : "";
    throw new IdentityError(
      error.code === "NOT_FOUND" ? "UNKNOWN_USER" : error.code,
      `${error.message}${advice}`,
    );
  }
  if (!sameKeys(unlocked.publicKeys, recordPublicKeys(record))) {
    throw new IdentityError(
      "DAMAGED",
      `the key file of ${name} and ${directory.usersPath} disagree on ${name}'s keys`,
    );
  }
  return {
    ...unlocked.secrets,
    username: name,
    peerId: record.keyId,
    host: record.host,
    port: record.port,
    publicKeys: unlocked.publicKeys,
    record,
    dataDir,
  };
}
