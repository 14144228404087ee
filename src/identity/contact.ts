import { fromBase64, toBase64 } from "../crypto/bytes.ts";
import {
  type AddressHint,
  decodeContactCode,
  encodeContactCode,
  looksLikeContactCode,
} from "./contact-code.ts";
import type { AddOutcome, Directory } from "./directory.ts";
import { IdentityError } from "./errors.ts";
import { parseUserRecord, type UserRecord } from "./record.ts";

/**
 * What one person hands another to become a contact, in either of two forms: a contact code, one line of text
 * (contact-code.ts), or a contact card, the JSON document that came before codes and still imports. Neither carries
 * a secret. Importing checks every field and the key binding signature, and pins the name to the keys: a later
 * card or code for the same name with other keys is refused unless forced (see Directory.addUser).
 */

export const CONTACT_FORMAT = "chatnode-contact/1";
/** A card is a few hundred bytes; refuse to parse anything much larger. */
const MAX_CARD_BYTES = 16 * 1024;

export interface ContactCard {
  readonly format: typeof CONTACT_FORMAT;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly publicKeys: { readonly ed25519: string; readonly x25519: string };
  readonly keyId: string;
  readonly fingerprint: string;
  readonly binding: string;
}

export function contactCard(record: UserRecord): ContactCard {
  return {
    format: CONTACT_FORMAT,
    name: record.name,
    host: record.host,
    port: record.port,
    publicKeys: { ed25519: record.ed25519, x25519: record.x25519 },
    keyId: record.keyId,
    fingerprint: record.fingerprint,
    binding: record.binding,
  };
}

/** The record's contact code; its address hints are the record's own address unless others are given. */
export function contactCode(record: UserRecord, hints?: readonly AddressHint[]): string {
  const keys = fromBase64(record.ed25519, 32);
  const x25519 = fromBase64(record.x25519, 32);
  const binding = fromBase64(record.binding, 64);
  if (!keys || !x25519 || !binding)
    throw new IdentityError("DAMAGED", `the keys of ${record.name} are damaged`);
  return encodeContactCode({
    name: record.name,
    ed25519: keys,
    x25519,
    binding,
    hints: hints ?? [{ host: record.host, port: record.port }],
  });
}

function exportedRecord(directory: Directory, name: string): UserRecord {
  const record = directory.getUser(name);
  if (!record) throw new IdentityError("UNKNOWN_USER", `unknown user ${name} in ${directory.dataDir}`);
  return record;
}

/** The card of `name` as JSON text. Throws IdentityError UNKNOWN_USER. */
export function exportContact(directory: Directory, name: string): string {
  return `${JSON.stringify(contactCard(exportedRecord(directory, name)), null, 2)}\n`;
}

/** The contact code of `name`, one line with its newline. Throws IdentityError UNKNOWN_USER. */
export function exportContactCode(
  directory: Directory,
  name: string,
  hints?: readonly AddressHint[],
): string {
  return `${contactCode(exportedRecord(directory, name), hints)}\n`;
}

/**
 * Validates a contact code or card without importing it. Throws IdentityError INVALID with the reason. A code's
 * first address hint becomes the record's address: the one the node starts from (it learns the current one).
 */
export function parseContact(text: string, now: Date = new Date()): UserRecord {
  if (looksLikeContactCode(text)) return parseCode(text, now);
  if (text.length > MAX_CARD_BYTES)
    throw new IdentityError("INVALID", "this is not a contact card (too large)");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new IdentityError(
      "INVALID",
      "this is neither a contact code (chatnode:…) nor a contact card (not JSON)",
    );
  }
  if (typeof json !== "object" || json === null || !("format" in json) || json.format !== CONTACT_FORMAT) {
    throw new IdentityError("INVALID", `this is not a contact card (format is not ${CONTACT_FORMAT})`);
  }
  const card = json as Partial<Record<keyof ContactCard, unknown>>;
  const keys = typeof card.publicKeys === "object" && card.publicKeys !== null ? card.publicKeys : {};
  return parseUserRecord(
    {
      name: card.name,
      host: card.host,
      port: card.port,
      ed25519: "ed25519" in keys ? keys.ed25519 : undefined,
      x25519: "x25519" in keys ? keys.x25519 : undefined,
      binding: card.binding,
      keyId: card.keyId,
      fingerprint: card.fingerprint,
    },
    now,
  );
}

function parseCode(text: string, now: Date): UserRecord {
  const decoded = decodeContactCode(text);
  if (!decoded.ok) throw new IdentityError("INVALID", decoded.reason);
  const { name, ed25519, x25519, binding, hints } = decoded.fields;
  const first = hints[0];
  if (!first)
    throw new IdentityError(
      "INVALID",
      `the contact code of ${name} has no address: ask ${name} for one made with \`chatnode contact export ${name} --address HOST:PORT\``,
    );
  return parseUserRecord(
    {
      name,
      host: first.host,
      port: first.port,
      ed25519: toBase64(ed25519),
      x25519: toBase64(x25519),
      binding: toBase64(binding),
    },
    now,
  );
}

export interface ImportResult {
  readonly record: UserRecord;
  readonly outcome: AddOutcome;
}

/**
 * Imports a code or card. Throws IdentityError INVALID (bad code or card), KEY_MISMATCH (name pinned to other keys,
 * unless force), DUPLICATE_KEY; and refuses, even with force, to overwrite a local user's keys with a card, which would
 * leave its key file and directory entry disagreeing (use `register --force` for that).
 */
export function importContact(
  directory: Directory,
  text: string,
  options: { readonly force?: boolean } = {},
): ImportResult {
  const record = parseContact(text);
  directory.reload();
  if (options.force) {
    // Forcing may replace the keys of the card's name, or move the card's keys away from another name. Neither may
    // touch a local user: its key file and directory entry would then disagree.
    const sameName = directory.getUser(record.name);
    const sameKey = directory.getByPeerId(record.keyId);
    for (const other of [sameName, sameKey]) {
      const changes =
        other &&
        (other.ed25519 !== record.ed25519 || other.x25519 !== record.x25519 || other.name !== record.name);
      if (other && changes && directory.hasKeyFile(other.name)) {
        throw new IdentityError(
          "USER_EXISTS",
          `${other.name} is a local user of this machine; a contact card cannot replace or take its keys (use register --force)`,
        );
      }
    }
  }
  // A code for one of our own users (with its own keys: any other is refused) may move it; its address is then one
  // this machine listens on, and must stay clear of the other local users'.
  const outcome = directory.addUser(record, { ...options, local: directory.hasKeyFile(record.name) });
  return { record: directory.getUser(record.name) ?? record, outcome };
}
