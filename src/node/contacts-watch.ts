/**
 * Live contacts: the data directory's users.json is watched while a node runs, so a contact imported, replaced
 * or removed by another command (`chatnode import-contact`, `register`) takes effect at once, without a restart.
 * users.json is replaced by rename (writeFileAtomic), so the directory is watched, not the file: a watch on the
 * file would follow the old inode.
 */
import { type FSWatcher, watch } from "node:fs";
import { basename } from "node:path";
import type { Directory } from "../identity/directory.ts";
import type { ChatNode } from "./chat-node.ts";
import type { Contact } from "./types.ts";

/** Writes of one command come as several events: they are taken as one after this quiet time. */
const SETTLE_MS = 50;

/** Every user of the directory as a contact. */
export function contactsOf(directory: Directory): Contact[] {
  return directory.listUsers().map((u) => ({
    id: u.keyId,
    name: u.name,
    host: u.host,
    port: u.port,
    fingerprint: u.fingerprint,
  }));
}

/**
 * Re-reads the directory whenever users.json changes and hands the contacts to the node; stops when the node
 * closes. A users.json that cannot be read or parsed mid-change is skipped: the next change is read again.
 */
export function watchContacts(directory: Directory, node: ChatNode): void {
  const file = basename(directory.usersPath);
  let watcher: FSWatcher;
  try {
    watcher = watch(directory.dataDir, { persistent: false }, (_event, name) => {
      if (name === null || name === file) schedule();
    });
  } catch {
    return; // no inotify watch left (ENOSPC) or no directory: contacts are read at the next start, as before
  }
  watcher.on("error", () => watcher.close());
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(apply, SETTLE_MS);
    timer.unref();
  };
  const apply = () => {
    timer = undefined;
    try {
      directory.reload();
      node.updateContacts(contactsOf(directory));
    } catch {
      // Half-written or damaged, or the node is closing: nothing to apply now.
    }
  };
  node.once("closed", () => {
    if (timer) clearTimeout(timer);
    watcher.close();
  });
}
