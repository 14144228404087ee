/**
 * How the directory read now differs from the contacts a running node holds (ChatNode.updateContacts applies
 * it). Pure, so that what counts as a change is decided in one place: a contact whose keys were replaced is one
 * change under its name, not a removal and an addition.
 */
import type { PeerId } from "../engine/types.ts";
import type { Contact, ContactChanges } from "./types.ts";

export interface ContactDiff {
  /** Key ids new to the node (a re-keyed contact's new id among them). */
  added: Contact[];
  /** Key ids the directory no longer holds (a re-keyed contact's old id among them). */
  removed: Contact[];
  /** Same key id with a new address or name. */
  readdressed: Contact[];
}

export function diffContacts(
  current: ReadonlyMap<PeerId, Contact>,
  next: ReadonlyMap<PeerId, Contact>,
): ContactDiff {
  const diff: ContactDiff = { added: [], removed: [], readdressed: [] };
  for (const [id, old] of current) if (!next.has(id)) diff.removed.push(old);
  for (const [id, c] of next) {
    const old = current.get(id);
    if (!old) diff.added.push(c);
    else if (old.host !== c.host || old.port !== c.port || old.name !== c.name) diff.readdressed.push(c);
  }
  return diff;
}

/** The diff as the user sees it, by name. */
export function describeChanges(diff: ContactDiff): ContactChanges {
  const addedNames = new Set(diff.added.map((c) => c.name));
  return {
    added: diff.added.filter((c) => !diff.removed.some((r) => r.name === c.name)).map((c) => c.name),
    removed: diff.removed.filter((c) => !addedNames.has(c.name)).map((c) => c.name),
    changed: [
      ...diff.readdressed.map((c) => c.name),
      ...diff.removed.filter((c) => addedNames.has(c.name)).map((c) => c.name),
    ],
  };
}

export function isEmpty(changes: ContactChanges): boolean {
  return changes.added.length + changes.removed.length + changes.changed.length === 0;
}
