import { isIP } from "node:net";
import { crc32 } from "./crc32.ts";
import { parseHostPort, USERNAME_PATTERN } from "./record.ts";

/**
 * Contact codes: a user's public identity as one line of text to paste into any chat, mail or note, the way Tox
 * IDs and Keet links are passed around. Pure: no I/O, and decoding never throws; a bad code gives a reason.
 *
 *     chatnode:1/alice@192.0.2.7:12001/<171 base64url characters>/<8 hex digits>
 *
 * The parts (docs/PROTOCOL.md, "Contact codes", has them byte by byte): the scheme and version; the user name,
 * percent-encoded, then "@" and up to MAX_HINTS address hints separated by ","; the Ed25519 public key, the X25519
 * public key and the key binding signature (32 + 32 + 64 bytes) in base64url; a CRC-32 of everything before it.
 *
 * The keys are what gets pinned; the addresses are only hints, where to send the first datagram: the node learns a
 * contact's current address from its authenticated packets. Exactly four "/"-separated parts, and a checksum of a
 * fixed length, make every truncation detectable by its shape alone; the CRC catches every single mistyped
 * character (crc32.ts says why a CRC); and only the canonical spelling of a contact decodes, so two different
 * texts never stand for the same contact (the scheme's case aside: RFC 3986 says schemes are case-insensitive,
 * and a phone may capitalise the first letter).
 */

export const CODE_SCHEME = "chatnode:";
export const CODE_VERSION = 1;
/** More would make the line long; a user has a home address, perhaps a LAN and a public one. */
export const MAX_HINTS = 4;
/** Far above the longest valid code (32-character name, four 21-character hints: about 300): refuse junk early. */
const MAX_CODE_CHARS = 1024;
const KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
const KEYS_BYTES = 2 * KEY_BYTES + SIGNATURE_BYTES;
const KEYS_CHARS = Math.ceil((KEYS_BYTES * 8) / 6);
const CHECK_DIGITS = 8;

export interface AddressHint {
  readonly host: string;
  readonly port: number;
}

export interface ContactCodeFields {
  readonly name: string;
  readonly ed25519: Uint8Array;
  readonly x25519: Uint8Array;
  /** The owner's Ed25519 signature over both public keys (record.ts): it ties the X25519 key to the fingerprint. */
  readonly binding: Uint8Array;
  readonly hints: readonly AddressHint[];
}

export type DecodedContactCode =
  | { readonly ok: true; readonly fields: ContactCodeFields }
  | { readonly ok: false; readonly reason: string };

/** Whether `text` is meant as a contact code (rather than a file name or a JSON card): it has the scheme. */
export function looksLikeContactCode(text: string): boolean {
  return text.trimStart().slice(0, CODE_SCHEME.length).toLowerCase() === CODE_SCHEME;
}

/** The code of a validated record's fields. Throws RangeError for fields no record can have (a caller's bug). */
export function encodeContactCode(fields: ContactCodeFields): string {
  const { ed25519, x25519, binding, hints } = fields;
  if (ed25519.length !== KEY_BYTES || x25519.length !== KEY_BYTES || binding.length !== SIGNATURE_BYTES)
    throw new RangeError("a contact code holds two 32-byte keys and a 64-byte signature");
  if (hints.length > MAX_HINTS)
    throw new RangeError(`a contact code holds at most ${MAX_HINTS} address hints`);
  const at = hints.length === 0 ? "" : `@${hints.map(formatHint).join(",")}`;
  const keys = Buffer.concat([ed25519, x25519, binding]).toString("base64url");
  const body = `${CODE_SCHEME}${CODE_VERSION}/${percentEncode(fields.name)}${at}/${keys}`;
  return `${body}/${checksum(body)}`;
}

export function decodeContactCode(input: string): DecodedContactCode {
  const text = input.trim();
  if (text === "") return refuse("the contact code is empty");
  if (text.length > MAX_CODE_CHARS) return refuse(`too long for a contact code (${text.length} characters)`);
  if (!looksLikeContactCode(text)) return refuse(`not a contact code: it does not start with ${CODE_SCHEME}`);
  const stray = /[^A-Za-z0-9\-._~:/@,%]/.exec(text);
  if (stray)
    return refuse(
      `a contact code has no ${JSON.stringify(stray[0])} (at character ${stray.index + 1}): copy it again, exactly`,
    );
  const canonical = CODE_SCHEME + text.slice(CODE_SCHEME.length);
  const parts = canonical.slice(CODE_SCHEME.length).split("/");
  if (parts.length < 4) return refuse("the contact code is cut short: copy all of it (it is one line)");
  if (parts.length > 4) return refuse('the contact code has a "/" too many: copy it again, exactly');
  const [version, who, keys, check] = parts as [string, string, string, string];
  if (version !== String(CODE_VERSION)) return refuseVersion(version);
  if (!/^[0-9a-f]*$/.test(check) || check.length > CHECK_DIGITS)
    return refuse(
      `the checksum (the last part) is not ${CHECK_DIGITS} hex digits: copy the code again, exactly`,
    );
  if (check.length < CHECK_DIGITS)
    return refuse(
      `the contact code is cut short: its checksum has ${check.length} of ${CHECK_DIGITS} digits`,
    );
  if (checksum(canonical.slice(0, canonical.lastIndexOf("/"))) !== check)
    return refuse("the checksum does not match: the code was mistyped or altered (copy it again, exactly)");
  const fields = parseFields(who, keys);
  if (typeof fields === "string") return refuse(fields);
  // A checksum only proves the text is what its author wrote; another spelling of the same contact (a leading
  // zero in a port, an upper-case host) is refused so that each contact has exactly one code.
  if (encodeContactCode(fields) !== canonical) return refuse("the contact code is not in its canonical form");
  return { ok: true, fields };
}

function refuse(reason: string): DecodedContactCode {
  return { ok: false, reason };
}

function refuseVersion(version: string): DecodedContactCode {
  if (/^[1-9][0-9]{0,5}$/.test(version))
    return refuse(
      `this is a version ${version} contact code; this chatnode reads version ${CODE_VERSION} (upgrade chatnode, or check the code was copied exactly)`,
    );
  return refuse(`not a contact code: its version ${JSON.stringify(version)} is not a number`);
}

function checksum(body: string): string {
  return crc32(Buffer.from(body, "utf8")).toString(16).padStart(CHECK_DIGITS, "0");
}

/** The fields of a code whose checksum matched, or why they are not a contact. */
function parseFields(who: string, keys: string): ContactCodeFields | string {
  const at = who.indexOf("@");
  const name = percentDecode(at < 0 ? who : who.slice(0, at));
  if (name === undefined) return "the name in the contact code is not correctly percent-encoded";
  if (!USERNAME_PATTERN.test(name))
    return `the name in the contact code, ${JSON.stringify(name)}, is not a valid user name`;
  const hints: AddressHint[] = [];
  if (at >= 0) {
    const list = who.slice(at + 1).split(",");
    if (list.length > MAX_HINTS) return `a contact code has at most ${MAX_HINTS} address hints`;
    for (const item of list) {
      const hint = parseHint(item);
      if (typeof hint === "string") return hint;
      hints.push(hint);
    }
  }
  if (!new RegExp(`^[A-Za-z0-9_-]{${KEYS_CHARS}}$`).test(keys))
    return `the keys part of the contact code is not ${KEYS_CHARS} base64url characters`;
  const bytes = new Uint8Array(Buffer.from(keys, "base64url"));
  return {
    name,
    ed25519: bytes.slice(0, KEY_BYTES),
    x25519: bytes.slice(KEY_BYTES, 2 * KEY_BYTES),
    binding: bytes.slice(2 * KEY_BYTES),
    hints,
  };
}

function formatHint(hint: AddressHint): string {
  const host = isIP(hint.host) === 6 ? `[${hint.host}]` : hint.host;
  return percentEncode(`${host}:${hint.port}`);
}

/** "host:port" or "[v6]:port", percent-encoded; the reason when it is not one. */
function parseHint(item: string): AddressHint | string {
  const text = percentDecode(item);
  if (text === undefined) return "an address hint in the contact code is not correctly percent-encoded";
  try {
    return parseHostPort(text);
  } catch (error) {
    return `the contact code's address hint: ${(error as Error).message}`;
  }
}

/** RFC 3986 percent-encoding of UTF-8, leaving the unreserved characters and ":" as they are. */
function percentEncode(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~:]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The inverse of percentEncode; undefined for a stray "%" or bytes that are not UTF-8. */
function percentDecode(text: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== "%") {
      bytes.push(text.charCodeAt(i));
      continue;
    }
    const hex = text.slice(i + 1, i + 3);
    if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
    bytes.push(Number.parseInt(hex, 16));
    i += 2;
  }
  try {
    return UTF8.decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}
