import { createCipheriv, createDecipheriv, randomBytes, scrypt } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { ensurePrivateDirectory, writeFileAtomic } from "./atomic-file.ts";
import { bytesEqual, concatBytes, constantTimeEqual, fromBase64, toBase64, toBytes, utf8 } from "./bytes.ts";
import { KeyFileError } from "./errors.ts";
import { hmacSha256 } from "./hkdf.ts";
import { type PublicKeys, publicKeysOf, type SecretKeys } from "./keys.ts";

/**
 * Password-protected private keys (format "chatnode-key/1", described field by field in docs/SECURITY.md).
 *
 * scrypt(password, salt) gives 64 bytes: the first 32 are the AES-256-GCM key, the last 32 key a short password
 * check. The check is what lets a wrong password (WRONG_PASSWORD) be told apart from an altered file (DAMAGED): with
 * GCM alone both are the same tag failure. It gives an offline guesser nothing the GCM tag does not already give,
 * and each guess still costs a full scrypt.
 */

export const KEY_FILE_FORMAT = "chatnode-key/1";

export interface ScryptParams {
  /** CPU/memory cost, a power of two. 2^15 with r = 8 takes 32 MiB (128·N·r bytes); its time: bench/README.md. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** RFC 7914 / OWASP interactive-login parameters. Tests may pass a lower N; files record what they used. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };

const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const CHECK_BYTES = 16;
const AES_KEY_BYTES = 32;
const SECRET_BYTES = 64;
const KEY_BYTES = 32;
const CHECK_LABEL = utf8(`${KEY_FILE_FORMAT} password check`);
/** A file may not ask for more than 256 MiB of scrypt memory: a tampered file must not be a memory bomb. */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

export interface KeyFileJson {
  format: typeof KEY_FILE_FORMAT;
  username: string;
  kdf: { name: "scrypt"; N: number; r: number; p: number; salt: string };
  cipher: "aes-256-gcm";
  nonce: string;
  check: string;
  ciphertext: string;
  publicKeys: { ed25519: string; x25519: string };
}

export interface UnlockedKeyFile {
  readonly secrets: SecretKeys;
  readonly publicKeys: PublicKeys;
}

export interface EncryptKeyFileOptions {
  readonly username: string;
  readonly password: string;
  readonly secrets: SecretKeys;
  /** Overrides of DEFAULT_SCRYPT (tests use a small N for speed). */
  readonly scrypt?: Partial<ScryptParams>;
}

function scryptMemory(params: ScryptParams): number {
  return 128 * params.N * params.r + 128 * params.r * params.p;
}

function validScrypt(params: ScryptParams): boolean {
  const { N, r, p } = params;
  return (
    Number.isSafeInteger(N) &&
    Number.isSafeInteger(r) &&
    Number.isSafeInteger(p) &&
    N >= 2 &&
    (N & (N - 1)) === 0 &&
    r >= 1 &&
    p >= 1 &&
    p <= 16 &&
    scryptMemory(params) <= MAX_SCRYPT_MEMORY
  );
}

/** Derives the AES key and the check key. maxmem is set from the parameters: node's 32 MiB default refuses N = 2^15. */
function deriveKeys(password: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  // NFC, so that the same password typed on systems that compose accents differently derives the same key.
  const secret = Buffer.from(password.normalize("NFC"), "utf8");
  return new Promise((resolve, reject) => {
    scrypt(
      secret,
      salt,
      AES_KEY_BYTES + KEY_BYTES,
      { ...params, maxmem: scryptMemory(params) + 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(toBytes(key))),
    );
  });
}

/** The AAD ties the ciphertext to its format, owner and public keys: none can be swapped without failing the tag. */
function additionalData(username: string, publicKeys: PublicKeys): Uint8Array {
  return concatBytes(
    utf8(KEY_FILE_FORMAT),
    Uint8Array.of(0),
    utf8(username),
    Uint8Array.of(0),
    publicKeys.ed25519,
    publicKeys.x25519,
  );
}

function passwordCheck(derived: Uint8Array): Uint8Array {
  return hmacSha256(derived.subarray(AES_KEY_BYTES), CHECK_LABEL).slice(0, CHECK_BYTES);
}

/** The key file's JSON text for `secrets`, encrypted under `password`. */
export async function encryptKeyFile(options: EncryptKeyFileOptions): Promise<string> {
  const params: ScryptParams = { ...DEFAULT_SCRYPT, ...options.scrypt };
  if (!validScrypt(params))
    throw new RangeError(`invalid scrypt parameters N=${params.N} r=${params.r} p=${params.p}`);
  const publicKeys = publicKeysOf(options.secrets);
  const salt = toBytes(randomBytes(SALT_BYTES));
  const nonce = toBytes(randomBytes(NONCE_BYTES));
  const derived = await deriveKeys(options.password, salt, params);
  const cipher = createCipheriv("aes-256-gcm", derived.subarray(0, AES_KEY_BYTES), nonce, {
    authTagLength: TAG_BYTES,
  });
  cipher.setAAD(additionalData(options.username, publicKeys));
  const plaintext = concatBytes(options.secrets.ed25519Seed, options.secrets.x25519PrivateKey);
  const ciphertext = concatBytes(cipher.update(plaintext), cipher.final(), cipher.getAuthTag());
  const check = passwordCheck(derived);
  derived.fill(0);
  plaintext.fill(0);
  const file: KeyFileJson = {
    format: KEY_FILE_FORMAT,
    username: options.username,
    kdf: { name: "scrypt", N: params.N, r: params.r, p: params.p, salt: toBase64(salt) },
    cipher: "aes-256-gcm",
    nonce: toBase64(nonce),
    check: toBase64(check),
    ciphertext: toBase64(ciphertext),
    publicKeys: { ed25519: toBase64(publicKeys.ed25519), x25519: toBase64(publicKeys.x25519) },
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

interface ParsedKeyFile {
  readonly username: string;
  readonly params: ScryptParams;
  readonly salt: Uint8Array;
  readonly nonce: Uint8Array;
  readonly check: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly publicKeys: PublicKeys;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Structural validation; every failure names the field, so that "damaged" comes with a reason. */
function parseKeyFile(text: string): ParsedKeyFile | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return "it is not JSON";
  }
  if (!isRecord(json)) return "it is not a JSON object";
  if (json.format !== KEY_FILE_FORMAT) return `its format is not ${KEY_FILE_FORMAT}`;
  if (typeof json.username !== "string") return "username is missing";
  const kdf = json.kdf;
  if (!isRecord(kdf) || kdf.name !== "scrypt") return "kdf is not scrypt";
  const { N, r, p } = kdf;
  if (typeof N !== "number" || typeof r !== "number" || typeof p !== "number")
    return "kdf.N, r and p are not numbers";
  const params = { N, r, p };
  if (!validScrypt(params)) return "its scrypt parameters are out of range";
  if (json.cipher !== "aes-256-gcm") return "cipher is not aes-256-gcm";
  const salt = fromBase64(kdf.salt, SALT_BYTES);
  const nonce = fromBase64(json.nonce, NONCE_BYTES);
  const check = fromBase64(json.check, CHECK_BYTES);
  const ciphertext = fromBase64(json.ciphertext, SECRET_BYTES + TAG_BYTES);
  const keys = isRecord(json.publicKeys) ? json.publicKeys : {};
  const ed25519 = fromBase64(keys.ed25519, KEY_BYTES);
  const x25519 = fromBase64(keys.x25519, KEY_BYTES);
  if (!salt) return "kdf.salt is not 16 bytes of base64";
  if (!nonce) return "nonce is not 12 bytes of base64";
  if (!check) return "check is not 16 bytes of base64";
  if (!ciphertext) return "ciphertext is not 80 bytes of base64";
  if (!ed25519 || !x25519) return "publicKeys are not two 32-byte base64 keys";
  return { username: json.username, params, salt, nonce, check, ciphertext, publicKeys: { ed25519, x25519 } };
}

/** Decrypts key-file text. Throws KeyFileError WRONG_PASSWORD or DAMAGED (with the reason in the message). */
export async function decryptKeyFile(
  text: string,
  expected: { readonly username: string; readonly password: string },
  path?: string,
): Promise<UnlockedKeyFile> {
  const where = path ?? `the key file of ${expected.username}`;
  const damaged = (reason: string) => new KeyFileError("DAMAGED", `${where} is damaged: ${reason}`, path);
  const file = parseKeyFile(text);
  if (typeof file === "string") throw damaged(file);
  if (file.username !== expected.username)
    throw damaged(`it belongs to "${file.username}", not "${expected.username}"`);
  const derived = await deriveKeys(expected.password, file.salt, file.params);
  try {
    if (!constantTimeEqual(passwordCheck(derived), file.check)) {
      throw new KeyFileError("WRONG_PASSWORD", `wrong password for ${expected.username}`, path);
    }
    let plaintext: Uint8Array;
    try {
      const decipher = createDecipheriv("aes-256-gcm", derived.subarray(0, AES_KEY_BYTES), file.nonce, {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(additionalData(file.username, file.publicKeys));
      decipher.setAuthTag(file.ciphertext.subarray(SECRET_BYTES));
      plaintext = concatBytes(decipher.update(file.ciphertext.subarray(0, SECRET_BYTES)), decipher.final());
    } catch {
      throw damaged("the encrypted keys or the public keys were altered (authentication failed)");
    }
    const secrets: SecretKeys = {
      ed25519Seed: plaintext.slice(0, KEY_BYTES),
      x25519PrivateKey: plaintext.slice(KEY_BYTES, SECRET_BYTES),
    };
    plaintext.fill(0);
    const publicKeys = publicKeysOf(secrets);
    if (
      !bytesEqual(publicKeys.ed25519, file.publicKeys.ed25519) ||
      !bytesEqual(publicKeys.x25519, file.publicKeys.x25519)
    ) {
      throw damaged("its private keys do not match its public keys");
    }
    return { secrets, publicKeys };
  } finally {
    derived.fill(0);
  }
}

/** Encrypts `secrets` and writes them to `path` (mode 0600, atomically) inside a 0700 directory. */
export async function writeKeyFile(path: string, options: EncryptKeyFileOptions): Promise<void> {
  const text = await encryptKeyFile(options);
  ensurePrivateDirectory(dirname(path));
  writeFileAtomic(path, text);
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new KeyFileError("NOT_FOUND", `no key file at ${path}`, path);
    }
    throw new KeyFileError("DAMAGED", `cannot read key file ${path}: ${(error as Error).message}`, path);
  }
}

/** Reads and decrypts the key file at `path`. Throws KeyFileError NOT_FOUND, WRONG_PASSWORD or DAMAGED. */
export async function readKeyFile(
  path: string,
  expected: { readonly username: string; readonly password: string },
): Promise<UnlockedKeyFile> {
  return decryptKeyFile(readText(path), expected, path);
}

function parseKeyFileAt(path: string): ParsedKeyFile {
  const file = parseKeyFile(readText(path));
  if (typeof file === "string") throw new KeyFileError("DAMAGED", `${path} is damaged: ${file}`, path);
  return file;
}

/** The public keys a key file claims, without the password (they are not secret). Throws KeyFileError. */
export function readKeyFilePublicKeys(path: string): PublicKeys {
  return parseKeyFileAt(path).publicKeys;
}

/** The scrypt parameters a key file was written with (what an unlock will cost). Throws KeyFileError. */
export function readKeyFileScrypt(path: string): ScryptParams {
  return parseKeyFileAt(path).params;
}
