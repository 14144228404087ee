import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ed25519Signer } from "../../src/crypto/ed25519.ts";
import { generateSecretKeys } from "../../src/crypto/keys.ts";
import {
  CONTACT_FORMAT,
  contactCode,
  exportContact,
  exportContactCode,
  importContact,
  parseContact,
} from "../../src/identity/contact.ts";
import { decodeContactCode, encodeContactCode } from "../../src/identity/contact-code.ts";
import { openDirectory } from "../../src/identity/directory.ts";
import { IdentityError, type IdentityErrorCode } from "../../src/identity/errors.ts";
import { createUserRecord } from "../../src/identity/record.ts";
import { registerUser } from "../../src/identity/register.ts";
import { TEST_SCRYPT_N, tempDataDir } from "./temp.ts";

function throwsCode(fn: () => unknown, code: IdentityErrorCode, pattern?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof IdentityError, String(error));
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

function card(name: string, port: number, secrets = generateSecretKeys()): string {
  const record = createUserRecord({ name, host: "192.0.2.10", port, secrets });
  return JSON.stringify({
    format: CONTACT_FORMAT,
    name,
    host: record.host,
    port,
    publicKeys: { ed25519: record.ed25519, x25519: record.x25519 },
    keyId: record.keyId,
    fingerprint: record.fingerprint,
    binding: record.binding,
  });
}

describe("contact cards", () => {
  it("export from one directory, import into another: same record, no secret in the card", async () => {
    const aliceHome = tempDataDir("contact-a");
    const bobHome = tempDataDir("contact-b");
    const alice = await registerUser({
      dataDir: aliceHome,
      username: "alice",
      password: "pw",
      port: 12001,
      scryptN: TEST_SCRYPT_N,
    });
    const text = exportContact(openDirectory(aliceHome), "alice");
    const json = JSON.parse(text) as Record<string, unknown>;
    assert.equal(json.format, CONTACT_FORMAT);
    assert.equal(json.fingerprint, alice.fingerprint);
    assert.deepEqual(Object.keys(json).sort(), [
      "binding",
      "fingerprint",
      "format",
      "host",
      "keyId",
      "name",
      "port",
      "publicKeys",
    ]);
    const bobDirectory = openDirectory(bobHome);
    const imported = importContact(bobDirectory, text);
    assert.equal(imported.outcome, "added");
    assert.equal(imported.record.keyId, alice.keyId);
    assert.equal(openDirectory(bobHome).getUser("alice")?.fingerprint, alice.fingerprint);
    assert.equal(bobDirectory.hasKeyFile("alice"), false);
    assert.equal(importContact(bobDirectory, text).outcome, "unchanged");
    throwsCode(() => exportContact(bobDirectory, "nobody"), "UNKNOWN_USER");
  });

  it("pinning: a card for a known name with other keys is refused with both fingerprints, unless forced", () => {
    const directory = openDirectory(tempDataDir("contact-pin"));
    const original = importContact(directory, card("carol", 12003)).record;
    const impostorCard = card("carol", 12003);
    const impostor = parseContact(impostorCard);
    throwsCode(
      () => importContact(directory, impostorCard),
      "KEY_MISMATCH",
      new RegExp(original.fingerprint),
    );
    throwsCode(
      () => importContact(directory, impostorCard),
      "KEY_MISMATCH",
      new RegExp(impostor.fingerprint),
    );
    assert.equal(importContact(directory, impostorCard, { force: true }).outcome, "replaced");
    assert.equal(directory.getUser("carol")?.keyId, impostor.keyId);
  });

  it("a card cannot replace a local user's keys, even forced", async () => {
    const dataDir = tempDataDir("contact-local");
    await registerUser({ dataDir, username: "dave", password: "pw", port: 12004, scryptN: TEST_SCRYPT_N });
    const directory = openDirectory(dataDir);
    throwsCode(
      () => importContact(directory, card("dave", 12004), { force: true }),
      "USER_EXISTS",
      /local user/,
    );
  });

  it("rejects altered or malformed cards with a reason", () => {
    const secrets = generateSecretKeys();
    const good = JSON.parse(card("erin", 12005, secrets)) as Record<string, unknown> & {
      publicKeys: Record<string, string>;
    };
    const other = JSON.parse(card("erin", 12005)) as { publicKeys: Record<string, string> };
    const cases: [unknown, RegExp][] = [
      [{ ...good, publicKeys: { ...good.publicKeys, x25519: other.publicKeys.x25519 } }, /binding/],
      [{ ...good, fingerprint: "0000 1111" }, /fingerprint/],
      [{ ...good, keyId: "0011223344556677" }, /keyId/],
      [{ ...good, name: "Erin" }, /username/],
      [{ ...good, port: 0 }, /port/],
      [{ ...good, host: "bad host" }, /host/],
      [{ ...good, format: "vcard" }, /not a contact card/],
      [{ ...good, publicKeys: undefined }, /Ed25519/],
    ];
    for (const [value, reason] of cases) {
      throwsCode(() => parseContact(JSON.stringify(value)), "INVALID", reason);
    }
    // A low-order X25519 key, correctly bound by its owner's signature, is still refused: it can never be used.
    const lowOrder = new Uint8Array(32);
    const signer = ed25519Signer(secrets.ed25519Seed);
    const binding = signer.sign(
      Buffer.concat([Buffer.from("chatnode v1 key binding"), signer.publicKey, lowOrder]),
    );
    const lowOrderCard = {
      ...good,
      publicKeys: { ...good.publicKeys, x25519: Buffer.from(lowOrder).toString("base64") },
      binding: Buffer.from(binding).toString("base64"),
    };
    throwsCode(() => parseContact(JSON.stringify(lowOrderCard)), "INVALID", /low-order/);
    throwsCode(() => parseContact("hello"), "INVALID", /not JSON/);
    throwsCode(() => parseContact(" ".repeat(20000)), "INVALID", /too large/);
  });

  it("a contact code imports like a card: same record, the first hint as the address", async () => {
    const aliceHome = tempDataDir("code-a");
    const alice = await registerUser({
      dataDir: aliceHome,
      username: "alice",
      password: "pw",
      port: 12001,
      scryptN: TEST_SCRYPT_N,
    });
    const code = exportContactCode(openDirectory(aliceHome), "alice", [
      { host: "192.0.2.7", port: 4000 },
      { host: "10.0.0.7", port: 12001 },
    ]);
    assert.equal(code.split("\n").length, 2, "one line");
    const fromCode = parseContact(code);
    const fromCard = parseContact(exportContact(openDirectory(aliceHome), "alice"));
    assert.deepEqual(
      { ...fromCode, addedAt: "" },
      { ...fromCard, host: "192.0.2.7", port: 4000, addedAt: "" },
    );
    assert.equal(fromCode.fingerprint, alice.fingerprint);
    const directory = openDirectory(tempDataDir("code-b"));
    assert.equal(importContact(directory, code).outcome, "added");
    assert.equal(importContact(directory, contactCode(alice)).outcome, "address-updated");
    assert.equal(directory.getUser("alice")?.port, 12001);
  });

  it("a local user's own code may move it, but not onto another local user's address", async () => {
    const dataDir = tempDataDir("code-local");
    const base = { dataDir, password: "pw", scryptN: TEST_SCRYPT_N };
    const alice = await registerUser({ ...base, username: "alice", port: 12001 });
    await registerUser({ ...base, username: "bob", port: 12002 });
    const directory = openDirectory(dataDir);
    const onto = (port: number) => contactCode(alice, [{ host: "127.0.0.1", port }]);
    throwsCode(() => importContact(directory, onto(12002)), "ADDRESS_TAKEN", /address of bob/);
    assert.equal(importContact(directory, onto(12003)).outcome, "address-updated");
  });

  it("a code with a well-formed checksum but swapped keys, or no address, is refused with a reason", () => {
    const good = decodeContactCode(contactCode(parseContact(card("erin", 12005))));
    const other = decodeContactCode(contactCode(parseContact(card("erin", 12005))));
    assert.ok(good.ok && other.ok);
    const swapped = encodeContactCode({ ...good.fields, x25519: other.fields.x25519 });
    throwsCode(() => parseContact(swapped), "INVALID", /binding signature does not verify/);
    const nowhere = encodeContactCode({ ...good.fields, hints: [] });
    throwsCode(() => parseContact(nowhere), "INVALID", /has no address.*--address HOST:PORT/);
    const typo = `${swapped.slice(0, -1)}${swapped.endsWith("0") ? "1" : "0"}`;
    throwsCode(() => parseContact(typo), "INVALID", /checksum does not match/);
  });
});
