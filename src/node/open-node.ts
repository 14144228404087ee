/**
 * Builds a ChatNode for a local user from the data directory: unlocks the user's keys, loads the directory of
 * users as contacts, opens the user's SQLite database (or a memory store when ephemeral). Does not start it.
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { createCryptoPort } from "../crypto/port.ts";
import type { EngineConfig } from "../engine/config.ts";
import type { FaultConfig } from "../faults/plan.ts";
import { type Directory, openDirectory, resolveDataDir } from "../identity/directory.ts";
import { login, type UnlockedIdentity } from "../identity/register.ts";
import { keySourceOf } from "../session/key-source.ts";
import { createMemoryStore } from "../storage/memory.ts";
import { openSqliteStore } from "../storage/sqlite.ts";
import type { Store } from "../storage/store.ts";
import { ChatNode } from "./chat-node.ts";
import { contactsOf, watchContacts } from "./contacts-watch.ts";
import { acquireInstanceLock, type InstanceLock } from "./instance-lock.ts";
import type { Contact } from "./types.ts";

export { resolveDataDir };

export interface OpenNodeOptions {
  dataDir?: string;
  username: string;
  password: string;
  host?: string;
  port?: number;
  ephemeral?: boolean;
  /** LAN discovery (ChatNodeOptions.lan). */
  lan?: boolean;
  faults?: Partial<FaultConfig>;
  config?: Partial<EngineConfig>;
  closeGraceMs?: number;
}

/** Where a user's message database lives inside the data directory. */
export function databasePath(dataDir: string, username: string): string {
  return join(dataDir, "db", `${username}.sqlite`);
}

/**
 * Throws IdentityError (UNKNOWN_USER, WRONG_PASSWORD, DAMAGED), ChatNodeError ALREADY_RUNNING (the user runs in
 * another process on this data directory), StoreError (DB_DAMAGED, DB_LOCKED, …) with messages a user can read.
 * The node holds the user's run lock until it is closed.
 */
export async function openNode(options: OpenNodeOptions): Promise<ChatNode> {
  const dataDir = resolveDataDir(options.dataDir);
  let opened: Directory | undefined;
  // login() starts scrypt on libuv's thread pool (the most expensive step of a start, ~175 ms), then reads the
  // directory through this function while scrypt runs, and returns once it waits for scrypt alone.
  const unlocking = login({
    dataDir,
    username: options.username,
    password: options.password,
    directory: () => {
      opened = openDirectory(dataDir);
      return opened;
    },
  });
  // login() refuses a malformed name before it opens the directory: then this await throws that refusal.
  if (opened === undefined) await unlocking;
  const directory = opened ?? openDirectory(dataDir);
  // While scrypt runs, this thread takes the user's run lock (one node per user and data directory) and opens the
  // user's database, if the user is a local one and the database exists. A new database is created only once the
  // password is accepted, so a mistyped name or password leaves no file behind, and a name that is not in the
  // directory never reaches the file system. A wrong password is reported before a running node: it is the first
  // thing to fix, and the lock's pid and address are not told to someone who does not have the password.
  const name = options.username.toLowerCase();
  const localUser = directory.getUser(name) !== undefined && directory.hasKeyFile(name);
  const dbPath = databasePath(dataDir, name);
  let lock: InstanceLock | undefined;
  let lockError: unknown;
  let store: Store | undefined;
  let storeError: unknown;
  if (localUser) {
    try {
      lock = acquireInstanceLock(dataDir, name);
    } catch (error) {
      lockError = error;
    }
  }
  // The database of a user that runs elsewhere is not touched at all.
  if (lock && !options.ephemeral && existsSync(dbPath)) {
    try {
      store = openSqliteStore(dbPath);
    } catch (error) {
      storeError = error;
    }
  }
  try {
    const identity = await unlocking; // a wrong password or name is the first thing to report
    if (lockError !== undefined) throw lockError;
    if (storeError !== undefined) throw storeError;
    lock ??= acquireInstanceLock(dataDir, identity.username);
    store ??= options.ephemeral
      ? createMemoryStore()
      : openSqliteStore(databasePath(dataDir, identity.username));
    return buildNode(options, directory, identity, store, lock);
  } catch (error) {
    store?.close();
    lock?.release();
    throw error;
  }
}

function buildNode(
  options: OpenNodeOptions,
  directory: Directory,
  identity: UnlockedIdentity,
  store: Store,
  lock: InstanceLock,
): ChatNode {
  const contacts = contactsOf(directory);
  const self = contacts.find((c) => c.id === identity.peerId) as Contact;
  const node = new ChatNode({
    self,
    contacts,
    crypto: createCryptoPort({ identity, directory }),
    sessionKeys: keySourceOf(identity, directory),
    store,
    ephemeral: options.ephemeral ?? false,
    lan: options.lan ?? false,
    ...(options.host !== undefined && { host: options.host }),
    ...(options.port !== undefined && { port: options.port }),
    ...(options.faults && { faults: options.faults }),
    ...(options.config && { config: options.config }),
    ...(options.closeGraceMs !== undefined && { closeGraceMs: options.closeGraceMs }),
  });
  node.once("closed", () => lock.release());
  // The address is known once the socket is bound: a second start names it.
  node.on("ready", (e) => {
    lock.setAddress(e.address);
    watchContacts(directory, node);
  });
  return node;
}
