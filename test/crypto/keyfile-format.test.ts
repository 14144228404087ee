import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv, createHmac, randomBytes, scryptSync } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CryptoLibraryError, KeyFileError, type KeyFileErrorCode } from "../../src/crypto/errors.ts";
import {
  decryptKeyFile,
  encryptKeyFile,
  KEY_FILE_FORMAT,
  type KeyFileJson,
  readKeyFile,
  readKeyFilePublicKeys,
  readKeyFileScrypt,
} from "../../src/crypto/keyfile.ts";
import { type PublicKeys, publicKeysOf, type SecretKeys } from "../../src/crypto/keys.ts";

/**
 * The key file format checked against its description in docs/SECURITY.md, with node:crypto alone: files built here
 * must unlock, files written by encryptKeyFile must open here. A tiny scrypt cost keeps each derivation well under a
 * millisecond.
 */

const TINY = { N: 16, r: 1, p: 1 } as const;
const root = mkdtempSync(join(tmpdir(), "chatnode-keyfile-format-"));
after(() => rmSync(root, { recursive: true, force: true }));

const secrets: SecretKeys = {
  ed25519Seed: new Uint8Array(32).fill(0x11),
  x25519PrivateKey: new Uint8Array(32).fill(0x22),
};
const otherSecrets: SecretKeys = {
  ed25519Seed: new Uint8Array(32).fill(0x33),
  x25519PrivateKey: new Uint8Array(32).fill(0x44),
};
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const USER = "zoë";
/** The same password twice: precomposed é (NFC) and e followed by a combining acute accent (NFD). */
const COMPOSED = "caf\u00e9 au lait";
const DECOMPOSED = "cafe\u0301 au lait";

function aad(username: string, keys: PublicKeys): Buffer {
  return Buffer.concat([
    Buffer.from("chatnode-key/1"),
    Buffer.of(0),
    Buffer.from(username, "utf8"),
    Buffer.of(0),
    keys.ed25519,
    keys.x25519,
  ]);
}

/** A key file built step by step from docs/SECURITY.md; `claimed` are the public keys written into it. */
function craftKeyFile(options: {
  secrets: SecretKeys;
  claimed?: PublicKeys;
  username?: string;
  password?: string;
}): string {
  const username = options.username ?? USER;
  const claimed = options.claimed ?? publicKeysOf(options.secrets);
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const derived = scryptSync(Buffer.from((options.password ?? COMPOSED).normalize("NFC")), salt, 64, TINY);
  const check = createHmac("sha256", derived.subarray(32))
    .update("chatnode-key/1 password check")
    .digest()
    .subarray(0, 16);
  const cipher = createCipheriv("aes-256-gcm", derived.subarray(0, 32), nonce, { authTagLength: 16 });
  cipher.setAAD(aad(username, claimed));
  const ciphertext = Buffer.concat([
    cipher.update(Buffer.concat([options.secrets.ed25519Seed, options.secrets.x25519PrivateKey])),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  const file: KeyFileJson = {
    format: KEY_FILE_FORMAT,
    username,
    kdf: { name: "scrypt", ...TINY, salt: b64(salt) },
    cipher: "aes-256-gcm",
    nonce: b64(nonce),
    check: b64(check),
    ciphertext: b64(ciphertext),
    publicKeys: { ed25519: b64(claimed.ed25519), x25519: b64(claimed.x25519) },
  };
  return JSON.stringify(file);
}

async function rejects(
  promise: Promise<unknown>,
  code: KeyFileErrorCode,
  message: string | RegExp,
  path?: string,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KeyFileError, `expected a KeyFileError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (typeof message === "string") assert.equal(error.message, message);
    else assert.match(error.message, message);
    assert.equal(error.path, path);
    return true;
  });
}

const expected = { username: USER, password: COMPOSED };
let counter = 0;
function fileAt(text: string): string {
  const path = join(root, `file-${counter++}.key`);
  writeFileSync(path, text);
  return path;
}
async function validJson(): Promise<KeyFileJson> {
  return JSON.parse(await encryptKeyFile({ ...expected, secrets, scrypt: TINY })) as KeyFileJson;
}

describe("keyfile format: the documented construction, built and read with node:crypto", () => {
  it("a file built from the documentation unlocks to its keys, with the password in either Unicode form", async () => {
    const text = craftKeyFile({ secrets });
    for (const password of [COMPOSED, DECOMPOSED]) {
      const unlocked = await decryptKeyFile(text, { username: USER, password });
      assert.deepEqual(unlocked.secrets, secrets);
      assert.deepEqual(unlocked.publicKeys, publicKeysOf(secrets));
    }
  });

  it("a file written by encryptKeyFile opens by the documented construction", async () => {
    const text = await encryptKeyFile({ username: USER, password: DECOMPOSED, secrets, scrypt: TINY });
    assert.ok(text.endsWith("}\n"));
    const json = JSON.parse(text) as KeyFileJson;
    assert.deepEqual(json.kdf, { name: "scrypt", ...TINY, salt: json.kdf.salt });
    const salt = Buffer.from(json.kdf.salt, "base64");
    const derived = scryptSync(Buffer.from(COMPOSED), salt, 64, TINY);
    const check = createHmac("sha256", derived.subarray(32)).update("chatnode-key/1 password check").digest();
    assert.equal(json.check, b64(check.subarray(0, 16)));
    const ciphertext = Buffer.from(json.ciphertext, "base64");
    assert.equal(ciphertext.length, 80);
    const decipher = createDecipheriv(
      "aes-256-gcm",
      derived.subarray(0, 32),
      Buffer.from(json.nonce, "base64"),
      {
        authTagLength: 16,
      },
    );
    decipher.setAAD(aad(USER, publicKeysOf(secrets)));
    decipher.setAuthTag(ciphertext.subarray(64));
    const plaintext = Buffer.concat([decipher.update(ciphertext.subarray(0, 64)), decipher.final()]);
    assert.deepEqual(plaintext, Buffer.concat([secrets.ed25519Seed, secrets.x25519PrivateKey]));
    assert.deepEqual(json.publicKeys, {
      ed25519: b64(publicKeysOf(secrets).ed25519),
      x25519: b64(publicKeysOf(secrets).x25519),
    });
  });

  it("private keys that do not match the public keys the file claims: DAMAGED, for either key alone", async () => {
    const own = publicKeysOf(secrets);
    const other = publicKeysOf(otherSecrets);
    for (const claimed of [
      { ed25519: other.ed25519, x25519: own.x25519 },
      { ed25519: own.ed25519, x25519: other.x25519 },
    ]) {
      await rejects(
        decryptKeyFile(craftKeyFile({ secrets, claimed }), expected),
        "DAMAGED",
        `the key file of ${USER} is damaged: its private keys do not match its public keys`,
      );
    }
  });

  it("a wrong password is WRONG_PASSWORD, named after the user, with the path when there is one", async () => {
    const text = craftKeyFile({ secrets });
    await rejects(
      decryptKeyFile(text, { username: USER, password: "cafe au lait" }),
      "WRONG_PASSWORD",
      `wrong password for ${USER}`,
    );
    const path = fileAt(text);
    await rejects(
      readKeyFile(path, { username: USER, password: "x" }),
      "WRONG_PASSWORD",
      `wrong password for ${USER}`,
      path,
    );
  });

  it("a file of another user is DAMAGED before any key derivation, naming both users", async () => {
    const text = craftKeyFile({ secrets, username: "bob" });
    await rejects(
      decryptKeyFile(text, expected),
      "DAMAGED",
      `the key file of ${USER} is damaged: it belongs to "bob", not "${USER}"`,
    );
  });

  it("the right password but an altered ciphertext: DAMAGED (authentication failed), with the path", async () => {
    const json = JSON.parse(craftKeyFile({ secrets })) as KeyFileJson;
    const ciphertext = Buffer.from(json.ciphertext, "base64");
    ciphertext[10] = (ciphertext[10] ?? 0) ^ 0x80;
    json.ciphertext = b64(ciphertext);
    const path = fileAt(JSON.stringify(json));
    await rejects(
      readKeyFile(path, expected),
      "DAMAGED",
      `${path} is damaged: the encrypted keys or the public keys were altered (authentication failed)`,
      path,
    );
  });
});

describe("keyfile format: each malformed field is DAMAGED with its own reason, before any key derivation", () => {
  type Edit = (json: Record<string, unknown> & KeyFileJson) => unknown;
  const cases: Array<[string, Edit, string]> = [
    [
      "a format of another version",
      (j) => Object.assign(j, { format: "chatnode-key/2" }),
      "its format is not chatnode-key/1",
    ],
    ["no format", (j) => Object.assign(j, { format: undefined }), "its format is not chatnode-key/1"],
    ["a username that is not a string", (j) => Object.assign(j, { username: 42 }), "username is missing"],
    ["no username", (j) => Object.assign(j, { username: undefined }), "username is missing"],
    ["a kdf other than scrypt", (j) => Object.assign(j.kdf, { name: "pbkdf2" }), "kdf is not scrypt"],
    ["a null kdf", (j) => Object.assign(j, { kdf: null }), "kdf is not scrypt"],
    ["a kdf that is an array", (j) => Object.assign(j, { kdf: ["scrypt"] }), "kdf is not scrypt"],
    ["N as a string", (j) => Object.assign(j.kdf, { N: "16" }), "kdf.N, r and p are not numbers"],
    ["r as a string", (j) => Object.assign(j.kdf, { r: "1" }), "kdf.N, r and p are not numbers"],
    ["p as a string", (j) => Object.assign(j.kdf, { p: "1" }), "kdf.N, r and p are not numbers"],
    ["no p", (j) => Object.assign(j.kdf, { p: undefined }), "kdf.N, r and p are not numbers"],
    [
      "N not a power of two",
      (j) => Object.assign(j.kdf, { N: 24 }),
      "its scrypt parameters are out of range",
    ],
    [
      "a cipher other than AES-256-GCM",
      (j) => Object.assign(j, { cipher: "aes-256-cbc" }),
      "cipher is not aes-256-gcm",
    ],
    [
      "a salt of 15 bytes",
      (j) => Object.assign(j.kdf, { salt: b64(new Uint8Array(15)) }),
      "kdf.salt is not 16 bytes of base64",
    ],
    [
      "a salt that is a number",
      (j) => Object.assign(j.kdf, { salt: 16 }),
      "kdf.salt is not 16 bytes of base64",
    ],
    [
      "a nonce of 16 bytes",
      (j) => Object.assign(j, { nonce: b64(new Uint8Array(16)) }),
      "nonce is not 12 bytes of base64",
    ],
    [
      "a nonce with junk in it",
      (j) => Object.assign(j, { nonce: `${j.nonce.slice(0, 8)}*${j.nonce.slice(9)}` }),
      "nonce is not 12 bytes of base64",
    ],
    [
      "a check of 32 bytes",
      (j) => Object.assign(j, { check: b64(new Uint8Array(32)) }),
      "check is not 16 bytes of base64",
    ],
    ["no check", (j) => Object.assign(j, { check: undefined }), "check is not 16 bytes of base64"],
    [
      "a ciphertext of 79 bytes",
      (j) => Object.assign(j, { ciphertext: b64(new Uint8Array(79)) }),
      "ciphertext is not 80 bytes of base64",
    ],
    [
      "a ciphertext of 81 bytes",
      (j) => Object.assign(j, { ciphertext: b64(new Uint8Array(81)) }),
      "ciphertext is not 80 bytes of base64",
    ],
    [
      "null publicKeys",
      (j) => Object.assign(j, { publicKeys: null }),
      "publicKeys are not two 32-byte base64 keys",
    ],
    [
      "publicKeys as an array",
      (j) => Object.assign(j, { publicKeys: [j.publicKeys.ed25519, j.publicKeys.x25519] }),
      "publicKeys are not two 32-byte base64 keys",
    ],
    [
      "an Ed25519 key of 31 bytes",
      (j) => Object.assign(j.publicKeys, { ed25519: b64(new Uint8Array(31)) }),
      "publicKeys are not two 32-byte base64 keys",
    ],
    [
      "no X25519 key",
      (j) => Object.assign(j.publicKeys, { x25519: undefined }),
      "publicKeys are not two 32-byte base64 keys",
    ],
  ];
  for (const [name, edit, reason] of cases) {
    it(`${name}: "${reason}"`, async () => {
      const json = (await validJson()) as Record<string, unknown> & KeyFileJson;
      edit(json);
      const text = JSON.stringify(json);
      await rejects(
        decryptKeyFile(text, expected),
        "DAMAGED",
        `the key file of ${USER} is damaged: ${reason}`,
      );
      const path = fileAt(text);
      await rejects(readKeyFile(path, expected), "DAMAGED", `${path} is damaged: ${reason}`, path);
      assert.throws(() => readKeyFilePublicKeys(path), {
        code: "DAMAGED",
        message: `${path} is damaged: ${reason}`,
      });
      assert.throws(() => readKeyFileScrypt(path), {
        code: "DAMAGED",
        message: `${path} is damaged: ${reason}`,
      });
    });
  }

  it("text that is JSON but not an object: null, an array, a number, a string", async () => {
    for (const text of ["null", "[]", '[{"format":"chatnode-key/1"}]', "42", '"chatnode-key/1"']) {
      await rejects(
        decryptKeyFile(text, expected),
        "DAMAGED",
        `the key file of ${USER} is damaged: it is not a JSON object`,
      );
    }
  });

  it("every truncation of a valid file is not JSON", async () => {
    const text = await encryptKeyFile({ ...expected, secrets, scrypt: TINY });
    // The last character is the newline after the closing brace: without it the text is still the whole object.
    for (let length = 0; length < text.length - 1; length++) {
      await rejects(
        decryptKeyFile(text.slice(0, length), expected),
        "DAMAGED",
        `the key file of ${USER} is damaged: it is not JSON`,
      );
    }
  });

  it("a path that cannot be read as a file (a directory): DAMAGED, not NOT_FOUND", async () => {
    const directory = join(root, "a-directory.key");
    mkdirSync(directory);
    await rejects(
      readKeyFile(directory, expected),
      "DAMAGED",
      new RegExp(`^cannot read key file ${directory}: `),
      directory,
    );
    assert.throws(() => readKeyFilePublicKeys(directory), { code: "DAMAGED" });
    const missing = join(root, "missing.key");
    assert.throws(() => readKeyFileScrypt(missing), {
      code: "NOT_FOUND",
      message: `no key file at ${missing}`,
    });
  });
});

describe("keyfile format: scrypt parameters", () => {
  async function scryptOf(kdf: Partial<Record<"N" | "r" | "p", number>>): Promise<unknown> {
    const json = await validJson();
    Object.assign(json.kdf, kdf);
    const path = fileAt(JSON.stringify(json));
    try {
      return readKeyFileScrypt(path);
    } catch (error) {
      assert.ok(error instanceof KeyFileError && error.code === "DAMAGED", String(error));
      assert.equal(error.message, `${path} is damaged: its scrypt parameters are out of range`);
      return "refused";
    }
  }

  it("readKeyFileScrypt gives the parameters the file was written with, without the password", async () => {
    const json = await validJson();
    const path = fileAt(JSON.stringify(json));
    assert.deepEqual(readKeyFileScrypt(path), TINY);
  });

  it("on reading: accepts the smallest and largest values in range, refuses the first values outside it", async () => {
    const accepted: Array<Record<"N" | "r" | "p", number>> = [
      { N: 2, r: 1, p: 1 },
      { N: 2 ** 15, r: 8, p: 16 },
      // 128·r·(N + p) = 128 · 2^17 · 16 = 256 MiB exactly: the largest memory allowed.
      { N: 8, r: 2 ** 17, p: 8 },
      { N: 2 ** 20, r: 1, p: 16 },
    ];
    for (const kdf of accepted) assert.deepEqual(await scryptOf(kdf), kdf, JSON.stringify(kdf));
    const refused: Array<Partial<Record<"N" | "r" | "p", number>>> = [
      { N: 1 },
      { N: 0 },
      { N: -16 },
      { N: 3 },
      { N: 1000 },
      { N: 2.5 },
      { r: 0 },
      { r: 1.5 },
      { p: 0 },
      { p: 17 },
      { p: 1.5 },
      // One more byte of memory than the largest allowed, by p and by r.
      { N: 8, r: 2 ** 17, p: 9 },
      { N: 2 ** 20, r: 2, p: 1 },
      { N: 2 ** 21, r: 1, p: 1 },
      { N: 2 ** 53, r: 1, p: 1 },
    ];
    for (const kdf of refused) assert.equal(await scryptOf(kdf), "refused", JSON.stringify(kdf));
  });

  it("on writing: the smallest and largest values in range work, and others are a RangeError naming them", async () => {
    for (const scrypt of [
      { N: 2, r: 1, p: 1 },
      { N: 2, r: 1, p: 16 },
    ]) {
      const text = await encryptKeyFile({ ...expected, secrets, scrypt });
      assert.deepEqual((await decryptKeyFile(text, expected)).secrets, secrets);
    }
    for (const scrypt of [{ N: 1 }, { N: 1000 }, { r: 0 }, { p: 0 }, { p: 17 }, { N: 2 ** 22 }]) {
      const params = { N: 2 ** 15, r: 8, p: 1, ...scrypt };
      await assert.rejects(encryptKeyFile({ ...expected, secrets, scrypt }), {
        name: "RangeError",
        message: `invalid scrypt parameters N=${params.N} r=${params.r} p=${params.p}`,
      });
    }
  });
});

describe("errors: names", () => {
  it("KeyFileError and CryptoLibraryError carry their own names, code, path and message", () => {
    const error = new KeyFileError("NOT_FOUND", "no key file at /x", "/x");
    assert.equal(error.name, "KeyFileError");
    assert.equal(error.code, "NOT_FOUND");
    assert.equal(error.path, "/x");
    assert.equal(error.message, "no key file at /x");
    assert.ok(error instanceof Error);
    assert.equal(new CryptoLibraryError("gone").name, "CryptoLibraryError");
    assert.match(String(new KeyFileError("DAMAGED", "why")), /^KeyFileError: why$/);
  });
});
