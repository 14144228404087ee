import { isIP } from "node:net";
import { bytesEqual, concatBytes, fromBase64, toBase64, utf8 } from "../crypto/bytes.ts";
import { ed25519Signer, ed25519Verifier, keyId } from "../crypto/ed25519.ts";
import { type PublicKeys, publicKeysOf, type SecretKeys } from "../crypto/keys.ts";
import { X25519PrivateKey, X25519PublicKey } from "../crypto/x25519.ts";
import type { PeerId } from "../engine/types.ts";
import { IdentityError } from "./errors.ts";
import { fingerprint } from "./fingerprint.ts";

/**
 * One user's public record, as stored in users.json and carried by contact cards, and the validation of every field.
 * `binding` is the user's own Ed25519 signature over both public keys: it ties the X25519 key (which receives private
 * messages) to the identity the fingerprint names, so a card with a swapped X25519 key is refused.
 */

export interface UserRecord {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Raw Ed25519 public key, base64. */
  readonly ed25519: string;
  /** Raw X25519 public key, base64. */
  readonly x25519: string;
  /** The engine's PeerId for this user (derived from ed25519; stored for people and grep). */
  readonly keyId: PeerId;
  /** The full safety fingerprint (derived from ed25519). */
  readonly fingerprint: string;
  /** Ed25519 signature, base64, over BINDING_CONTEXT || ed25519 || x25519. */
  readonly binding: string;
  /** ISO-8601 time the record entered this directory. */
  readonly addedAt: string;
}

export const USERNAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
const BINDING_CONTEXT = utf8("chatnode v1 key binding");
const HOSTNAME_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

function invalid(message: string): IdentityError {
  return new IdentityError("INVALID", message);
}

export function validateUsername(name: unknown): string {
  if (typeof name !== "string" || !USERNAME_PATTERN.test(name)) {
    throw invalid(
      `invalid username ${JSON.stringify(name)}: use 1-32 lowercase letters, digits, "_" or "-", starting with a letter`,
    );
  }
  return name;
}

/** A port a registered user listens on: an integer 1..65535 (0, "any port", means nothing to a peer). */
export function validatePort(port: unknown): number {
  const value = typeof port === "string" && /^\d{1,5}$/.test(port) ? Number(port) : port;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw invalid(`invalid port ${JSON.stringify(port)}: use an integer from 1 to 65535`);
  }
  return value;
}

/** An IPv4 or IPv6 literal (brackets allowed and removed) or an RFC 1123 host name, lowercased. */
export function validateHost(host: unknown): string {
  if (typeof host === "string") {
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    if (isIP(bare) !== 0) return bare.toLowerCase();
    const labels = bare.split(".");
    const numeric = /^[0-9.]+$/.test(bare);
    if (!numeric && bare.length <= 253 && labels.every((label) => HOSTNAME_LABEL.test(label))) {
      return bare.toLowerCase();
    }
  }
  throw invalid(`invalid host ${JSON.stringify(host)}: use an IPv4 or IPv6 address or a host name`);
}

/** "host:port", "[v6]:port" or a bare IPv6 address, as users write an address: validated, host lowercased. */
export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^\[([^\]]+)\]:([^:]*)$/.exec(text) ?? /^([^:[\]]+):([^:]*)$/.exec(text);
  if (!match) throw invalid(`invalid address ${JSON.stringify(text)}: use HOST:PORT, or [IPv6]:PORT`);
  const [, host, port] = match as unknown as [string, string, string];
  if (text.startsWith("[") && isIP(host) !== 6)
    throw invalid(`invalid address ${JSON.stringify(text)}: only an IPv6 address goes in brackets`);
  return { host: validateHost(host), port: validatePort(port) };
}

/** Any fixed scalar will do: a low-order point gives an all-zero X25519 result for every (clamped) scalar. */
let probe: X25519PrivateKey | undefined;

/** Whether a key can ever give a shared secret: refusing low-order keys at import is clearer than failing later. */
function usableX25519(raw: Uint8Array): boolean {
  const key = X25519PublicKey.fromRaw(raw);
  probe ??= X25519PrivateKey.fromRaw(new Uint8Array(32).fill(0x42));
  return key !== undefined && probe.dh(key) !== undefined;
}

function bindingMessage(keys: PublicKeys): Uint8Array {
  return concatBytes(BINDING_CONTEXT, keys.ed25519, keys.x25519);
}

/** A record for a user whose secret keys we hold (registration). */
export function createUserRecord(options: {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly secrets: SecretKeys;
  readonly addedAt?: Date;
}): UserRecord {
  const keys = publicKeysOf(options.secrets);
  const binding = ed25519Signer(options.secrets.ed25519Seed).sign(bindingMessage(keys));
  return {
    name: validateUsername(options.name),
    host: validateHost(options.host),
    port: validatePort(options.port),
    ed25519: toBase64(keys.ed25519),
    x25519: toBase64(keys.x25519),
    keyId: keyId(keys.ed25519),
    fingerprint: fingerprint(keys.ed25519),
    binding: toBase64(binding),
    addedAt: (options.addedAt ?? new Date()).toISOString(),
  };
}

/** Decoded public keys of a record that parseUserRecord accepted. */
export function recordPublicKeys(record: UserRecord): PublicKeys {
  const ed25519 = fromBase64(record.ed25519, 32);
  const x25519 = fromBase64(record.x25519, 32);
  if (!ed25519 || !x25519)
    throw new IdentityError("DAMAGED", `the keys of ${record.name} are not valid base64`);
  return { ed25519, x25519 };
}

export function sameKeys(a: PublicKeys, b: PublicKeys): boolean {
  return bytesEqual(a.ed25519, b.ed25519) && bytesEqual(a.x25519, b.x25519);
}

export interface RecordFields {
  readonly name: unknown;
  readonly host: unknown;
  readonly port: unknown;
  readonly ed25519: unknown;
  readonly x25519: unknown;
  readonly binding: unknown;
  readonly keyId?: unknown;
  readonly fingerprint?: unknown;
  readonly addedAt?: unknown;
}

/**
 * Validates every field and the binding signature, and recomputes the derived ones. A stated keyId or fingerprint
 * that disagrees with the key is refused: it would show people a fingerprint that is not the key's.
 * Throws IdentityError INVALID with the reason.
 */
export function parseUserRecord(fields: RecordFields, now: Date = new Date()): UserRecord {
  const name = validateUsername(fields.name);
  const host = validateHost(fields.host);
  const port = validatePort(fields.port);
  const ed25519 = fromBase64(fields.ed25519, 32);
  const x25519 = fromBase64(fields.x25519, 32);
  const binding = fromBase64(fields.binding, 64);
  if (!ed25519) throw invalid(`${name}: the Ed25519 public key is not 32 bytes of base64`);
  if (!x25519) throw invalid(`${name}: the X25519 public key is not 32 bytes of base64`);
  if (!binding) throw invalid(`${name}: the key binding signature is not 64 bytes of base64`);
  if (!usableX25519(x25519))
    throw invalid(`${name}: the X25519 public key is a low-order point (no shared secret)`);
  const verifier = ed25519Verifier(ed25519);
  if (!verifier?.verify(bindingMessage({ ed25519, x25519 }), binding)) {
    throw invalid(
      `${name}: the key binding signature does not verify (the keys were altered or do not belong together)`,
    );
  }
  const id = keyId(ed25519);
  const print = fingerprint(ed25519);
  if (fields.keyId !== undefined && fields.keyId !== id)
    throw invalid(`${name}: keyId does not match the key`);
  if (fields.fingerprint !== undefined && fields.fingerprint !== print) {
    throw invalid(`${name}: the stated fingerprint does not match the key`);
  }
  const addedAt =
    typeof fields.addedAt === "string" && !Number.isNaN(Date.parse(fields.addedAt))
      ? fields.addedAt
      : now.toISOString();
  return {
    name,
    host,
    port,
    ed25519: toBase64(ed25519),
    x25519: toBase64(x25519),
    keyId: id,
    fingerprint: print,
    binding: toBase64(binding),
    addedAt,
  };
}
