import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { ensurePrivateDirectory, writeFileAtomic } from "../crypto/atomic-file.ts";
import { CryptoLibraryError } from "../crypto/errors.ts";
import type { PublicKeys } from "../crypto/keys.ts";
import type { PeerKeyDirectory } from "../crypto/port.ts";
import type { PeerId } from "../engine/types.ts";
import { IdentityError, KeyMismatchError } from "./errors.ts";
import { shortenFingerprint } from "./fingerprint.ts";
import {
  parseUserRecord,
  type RecordFields,
  recordPublicKeys,
  sameKeys,
  type UserRecord,
  validateUsername,
} from "./record.ts";

/**
 * The data directory: `users.json` (every known user's public record: local users and imported contacts) and
 * `keys/<name>.key` (password-protected secret keys of the users registered on this machine).
 *
 * Reading never creates or changes anything (login relies on that). Writes create the directory 0700 and files 0600,
 * and replace users.json atomically. Each write re-reads users.json first, so two commands run one after the other
 * never lose each other's entries; two run at the very same moment could (there is no lock).
 */

export const USERS_FORMAT = "chatnode-users/1";
export const DATA_DIR_ENV = "CHATNODE_HOME";

/**
 * Where the data lives: an explicit directory, else $CHATNODE_HOME, else ~/.chatnode where an older install made
 * it (moving a user's keys and messages behind their back would be worse than the old name), else the XDG data
 * directory: $XDG_DATA_HOME/chatnode, or ~/.local/share/chatnode (the XDG Base Directory default; a relative
 * $XDG_DATA_HOME is ignored, as the specification says). Always an absolute path. `env.HOME` stands for the home
 * directory when given, so tests can point it elsewhere.
 */
export function resolveDataDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return resolve(explicit);
  const fromEnv = env[DATA_DIR_ENV];
  if (fromEnv) return resolve(fromEnv);
  const home = env.HOME || homedir();
  const legacy = join(home, ".chatnode");
  if (existsSync(legacy)) return legacy;
  const xdg = env.XDG_DATA_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(home, ".local", "share"), "chatnode");
}

/** What `--data-dir`'s help says about the default, kept next to the rule it describes. */
export const DATA_DIR_DEFAULT_HELP =
  "$CHATNODE_HOME, else ~/.chatnode if it exists, else $XDG_DATA_HOME/chatnode (~/.local/share/chatnode)";

export interface AddOptions {
  /** Replace pinned keys, take another local user's address, or move keys filed under another name. */
  readonly force?: boolean;
  /**
   * The record is a user of this machine (register, bulk-register), who will listen on its address: it may not be
   * another local user's. A contact's address is only a hint of where to find it, and two contacts, or a contact
   * and a local user, may share one: two people on two machines may both have kept the default 127.0.0.1:12001.
   */
  readonly local?: boolean;
}

export type AddOutcome = "added" | "unchanged" | "address-updated" | "replaced";

interface UsersFile {
  format: typeof USERS_FORMAT;
  users: UserRecord[];
}

interface Entry {
  readonly record: UserRecord;
  readonly keys: PublicKeys;
}

export class Directory implements PeerKeyDirectory {
  readonly usersPath: string;
  readonly keysDir: string;
  private entries: Entry[] = [];
  private byId = new Map<PeerId, Entry>();

  constructor(readonly dataDir: string) {
    this.usersPath = join(dataDir, "users.json");
    this.keysDir = join(dataDir, "keys");
    this.reload();
  }

  /** Re-reads users.json (another process may have added users). Throws IdentityError DAMAGED. */
  reload(): void {
    this.setEntries(this.readUsers());
  }

  listUsers(): readonly UserRecord[] {
    return this.entries.map((entry) => entry.record);
  }

  /**
   * By name (case-insensitive), or by port when given a number or a string of digits: the first user with that port
   * (contacts may share one; see AddOptions.local).
   */
  getUser(nameOrPort: string | number): UserRecord | undefined {
    if (typeof nameOrPort === "number" || /^\d+$/.test(nameOrPort)) {
      const port = Number(nameOrPort);
      return this.entries.find((entry) => entry.record.port === port)?.record;
    }
    const name = nameOrPort.toLowerCase();
    return this.entries.find((entry) => entry.record.name === name)?.record;
  }

  getByPeerId(peer: PeerId): UserRecord | undefined {
    return this.byId.get(peer)?.record;
  }

  /** For the crypto port: the keys filed under `peer`, decoded once at load. */
  publicKeysOf(peer: PeerId): PublicKeys | undefined {
    return this.byId.get(peer)?.keys;
  }

  keyFilePath(name: string): string {
    return keyFilePathIn(this.dataDir, name);
  }

  /** Whether this machine holds `name`'s secret keys (a local user), as opposed to a contact. */
  hasKeyFile(name: string): boolean {
    return existsSync(this.keyFilePath(name));
  }

  /** Checks what adding `record` would do, without writing. Throws the typed conflict errors. */
  planAdd(record: UserRecord, options: AddOptions = {}): AddOutcome {
    return planAdd(this.readUsers(), record, options, (name) => this.hasKeyFile(name)).outcome;
  }

  /** Adds or updates one record; see addUsers. */
  addUser(record: UserRecord, options: AddOptions = {}): AddOutcome {
    const [outcome] = this.addUsers([record], options);
    return outcome ?? "unchanged";
  }

  /**
   * Adds records in one atomic write. Pinning: a name already known with other keys is refused (KeyMismatchError,
   * showing both fingerprints) unless `force`; the same name with the same keys only updates host and port. Only
   * a local user's address must be free, and only among the local users (AddOptions.local).
   */
  addUsers(records: readonly UserRecord[], options: AddOptions = {}): AddOutcome[] {
    let users = this.readUsers();
    const outcomes: AddOutcome[] = [];
    for (const record of records) {
      const plan = planAdd(users, record, options, (name) => this.hasKeyFile(name));
      users = plan.users;
      outcomes.push(plan.outcome);
    }
    if (outcomes.some((outcome) => outcome !== "unchanged")) {
      ensurePrivateDirectory(this.dataDir);
      const file: UsersFile = { format: USERS_FORMAT, users };
      writeFileAtomic(this.usersPath, `${JSON.stringify(file, null, 2)}\n`);
    }
    this.setEntries(users);
    return outcomes;
  }

  private setEntries(users: readonly UserRecord[]): void {
    this.entries = users.map((record) => ({ record, keys: recordPublicKeys(record) }));
    this.byId = new Map(this.entries.map((entry) => [entry.record.keyId, entry]));
  }

  private readUsers(): UserRecord[] {
    let text: string;
    try {
      text = readFileSync(this.usersPath, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw new IdentityError("DAMAGED", `cannot read ${this.usersPath}: ${(error as Error).message}`);
    }
    const damaged = (reason: string) =>
      new IdentityError("DAMAGED", `${this.usersPath} is damaged: ${reason}`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw damaged("it is not JSON");
    }
    if (typeof json !== "object" || json === null || !("format" in json) || json.format !== USERS_FORMAT) {
      throw damaged(`its format is not ${USERS_FORMAT}`);
    }
    const list = "users" in json ? json.users : undefined;
    if (!Array.isArray(list)) throw damaged("users is not a list");
    const users: UserRecord[] = [];
    const names = new Set<string>();
    const ids = new Set<string>();
    for (const [index, item] of list.entries()) {
      try {
        if (typeof item !== "object" || item === null) throw new IdentityError("INVALID", "not an object");
        const record = parseUserRecord(item as RecordFields);
        if (names.has(record.name)) throw new IdentityError("INVALID", `${record.name} appears twice`);
        if (ids.has(record.keyId))
          throw new IdentityError("INVALID", `the keys of ${record.name} appear twice`);
        names.add(record.name);
        ids.add(record.keyId);
        users.push(record);
      } catch (error) {
        // Without libsodium no entry can be checked: that is not the file's fault.
        if (error instanceof CryptoLibraryError) throw error;
        throw damaged(`entry ${index + 1}: ${(error as Error).message}`);
      }
    }
    return users;
  }
}

/** Where a local user's key file lives in a data directory (without reading the directory). */
export function keyFilePathIn(dataDir: string, name: string): string {
  return join(dataDir, "keys", `${validateUsername(name)}.key`);
}

export function openDirectory(dataDir: string): Directory {
  return new Directory(resolve(dataDir));
}

function planAdd(
  users: readonly UserRecord[],
  record: UserRecord,
  options: AddOptions,
  isLocal: (name: string) => boolean,
): { users: UserRecord[]; outcome: AddOutcome } {
  const force = options.force === true;
  const keys = recordPublicKeys(record);
  const sameName = users.find((user) => user.name === record.name);
  let outcome: AddOutcome = "added";
  if (sameName) {
    if (sameKeys(recordPublicKeys(sameName), keys)) {
      if (sameName.host === record.host && sameName.port === record.port)
        return { users: [...users], outcome: "unchanged" };
      outcome = "address-updated";
    } else if (!force) {
      throw new KeyMismatchError(record.name, sameName.fingerprint, record.fingerprint);
    } else {
      outcome = "replaced";
    }
  }
  const sameKey = users.find((user) => user.name !== record.name && user.keyId === record.keyId);
  if (sameKey && !force) {
    throw new IdentityError(
      "DUPLICATE_KEY",
      `these keys (fingerprint ${shortenFingerprint(record.fingerprint)}) already belong to ${sameKey.name}; ` +
        "pass --force to move them to the new name",
    );
  }
  // Two users of this machine on one address could not both listen; any other shared address is harmless, since
  // datagrams name their sender's key and the node learns each contact's real address from its packets.
  const sameAddress =
    options.local === true
      ? users.find(
          (user) =>
            user.name !== record.name &&
            user.host === record.host &&
            user.port === record.port &&
            isLocal(user.name),
        )
      : undefined;
  if (sameAddress && !force) {
    throw new IdentityError(
      "ADDRESS_TAKEN",
      `${record.host}:${record.port} is already the address of ${sameAddress.name}, another user of this machine ` +
        "(two users here cannot listen on one port); choose another port or pass --force",
    );
  }
  // Keep the original addedAt when only the address changes: the pin dates from the first time we saw the keys.
  const stored =
    outcome === "address-updated" && sameName ? { ...record, addedAt: sameName.addedAt } : record;
  // Forced: the keys leave whatever other name held them. The record keeps its place in the list if it had one.
  const kept = users.filter((user) => user.name === record.name || user.keyId !== record.keyId);
  const index = kept.findIndex((user) => user.name === record.name);
  if (index >= 0) kept[index] = stored;
  else kept.push(stored);
  return { users: kept, outcome };
}
