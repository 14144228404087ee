import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { generateSecretKeys } from "../../src/crypto/keys.ts";
import { openDirectory, resolveDataDir } from "../../src/identity/directory.ts";
import { IdentityError, type IdentityErrorCode, KeyMismatchError } from "../../src/identity/errors.ts";
import { createUserRecord, validateHost, validatePort, validateUsername } from "../../src/identity/record.ts";
import { mode, tempDataDir } from "./temp.ts";

function throwsCode(fn: () => unknown, code: IdentityErrorCode, pattern?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof IdentityError, String(error));
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

function record(name: string, port: number, secrets = generateSecretKeys(), host = "127.0.0.1") {
  return createUserRecord({ name, host, port, secrets });
}

describe("directory: data dir resolution", () => {
  it("explicit argument, then CHATNODE_HOME, then an existing ~/.chatnode, then the XDG data directory", () => {
    const home = mkdtempSync(join(tmpdir(), "chatnode-home-"));
    try {
      assert.equal(resolveDataDir("rel/dir", { CHATNODE_HOME: "/env", HOME: home }), resolve("rel/dir"));
      assert.equal(resolveDataDir(undefined, { CHATNODE_HOME: "/env/home", HOME: home }), "/env/home");
      // A new install: the XDG default, or $XDG_DATA_HOME when it is absolute (a relative one is ignored).
      assert.equal(resolveDataDir(undefined, { HOME: home }), join(home, ".local", "share", "chatnode"));
      assert.equal(resolveDataDir(undefined, { HOME: home, XDG_DATA_HOME: "/xdg" }), "/xdg/chatnode");
      assert.equal(
        resolveDataDir(undefined, { HOME: home, XDG_DATA_HOME: "rel" }),
        join(home, ".local", "share", "chatnode"),
      );
      // An older install keeps its directory, whatever XDG says.
      mkdirSync(join(home, ".chatnode"));
      assert.equal(resolveDataDir(undefined, { HOME: home, XDG_DATA_HOME: "/xdg" }), join(home, ".chatnode"));
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("directory: validation", () => {
  it("names: lowercase, starts with a letter, up to 32 of [a-z0-9_-]", () => {
    for (const ok of ["a", "alice", "bob_2", "x-y", "a".repeat(32)]) assert.equal(validateUsername(ok), ok);
    for (const bad of ["", "Alice", "1bob", "_x", "a".repeat(33), "al ice", "ålice", "a/b", "../x"]) {
      throwsCode(() => validateUsername(bad), "INVALID", /username/);
    }
  });

  it("ports: 1..65535, no 0", () => {
    assert.equal(validatePort(1), 1);
    assert.equal(validatePort("65535"), 65535);
    for (const bad of [0, 65536, -1, 1.5, "12a", "", Number.NaN])
      throwsCode(() => validatePort(bad), "INVALID", /port/);
  });

  it("hosts: IPv4, IPv6 (brackets optional) or host names", () => {
    assert.equal(validateHost("127.0.0.1"), "127.0.0.1");
    assert.equal(validateHost("::1"), "::1");
    assert.equal(validateHost("[FE80::1]"), "fe80::1");
    assert.equal(validateHost("Chat.Example.org"), "chat.example.org");
    for (const bad of ["", "999.1.1.1", "a..b", "-x.org", "x_y.org", "1.2.3", "[::1", "a b"]) {
      throwsCode(() => validateHost(bad), "INVALID", /host/);
    }
  });
});

describe("directory: users.json", () => {
  it("reading a missing directory creates nothing; the first write creates it 0700 with users.json 0600", () => {
    const dataDir = tempDataDir("dir");
    const directory = openDirectory(dataDir);
    assert.deepEqual(directory.listUsers(), []);
    assert.equal(existsSync(dataDir), false);
    const alice = record("alice", 12001);
    assert.equal(directory.addUser(alice), "added");
    assert.equal(mode(dataDir), 0o700);
    assert.equal(mode(directory.usersPath), 0o600);
    const again = openDirectory(dataDir);
    assert.deepEqual(again.getUser("alice"), alice);
    assert.deepEqual(again.getUser(12001), alice);
    assert.deepEqual(again.getUser("12001"), alice);
    assert.deepEqual(again.getUser("ALICE"), alice);
    assert.deepEqual(again.getByPeerId(alice.keyId), alice);
    assert.ok(again.publicKeysOf(alice.keyId));
  });

  it("pins a name to its keys: other keys are refused with both fingerprints unless forced", () => {
    const directory = openDirectory(tempDataDir("pin"));
    const first = record("bob", 12002);
    directory.addUser(first);
    const impostor = record("bob", 12002);
    assert.throws(
      () => directory.addUser(impostor),
      (error: unknown) =>
        error instanceof KeyMismatchError &&
        error.code === "KEY_MISMATCH" &&
        error.message.includes(first.fingerprint) &&
        error.message.includes(impostor.fingerprint),
    );
    assert.equal(directory.getUser("bob")?.keyId, first.keyId);
    assert.equal(directory.addUser(impostor, { force: true }), "replaced");
    assert.equal(openDirectory(directory.dataDir).getUser("bob")?.keyId, impostor.keyId);
  });

  it("same keys with a new address only update the address", () => {
    const directory = openDirectory(tempDataDir("addr"));
    const secrets = generateSecretKeys();
    const first = record("carol", 12003, secrets);
    directory.addUser(first);
    assert.equal(directory.addUser(record("carol", 12003, secrets)), "unchanged");
    assert.equal(directory.addUser(record("carol", 13003, secrets, "10.0.0.7")), "address-updated");
    const moved = directory.getUser("carol");
    assert.equal(moved?.port, 13003);
    assert.equal(moved?.addedAt, first.addedAt, "the pin keeps its original date");
  });

  it("an address is a hint: contacts may share one with each other and with a local user, local users may not", () => {
    const directory = openDirectory(tempDataDir("shared-address"));
    const dave = record("dave", 12004);
    directory.addUser(dave, { local: true });
    // dave is local: he has a key file (its content does not matter here).
    mkdirSync(directory.keysDir, { recursive: true });
    writeFileSync(directory.keyFilePath("dave"), "{}");
    // Two people elsewhere who both kept the default address, and one with ours: all contacts, no conflict.
    assert.equal(directory.addUser(record("erin", 12004)), "added");
    assert.equal(directory.addUser(record("frank", 12004)), "added");
    assert.deepEqual(
      openDirectory(directory.dataDir)
        .listUsers()
        .map((u) => `${u.name} ${u.host}:${u.port}`),
      ["dave 127.0.0.1:12004", "erin 127.0.0.1:12004", "frank 127.0.0.1:12004"],
    );
    // A second local user on dave's address could not listen there: refused, with who has it.
    throwsCode(
      () => directory.addUser(record("grace", 12004), { local: true }),
      "ADDRESS_TAKEN",
      /127\.0\.0\.1:12004 is already the address of dave, another user of this machine/,
    );
    // A contact's address does not stop a local user from registering it.
    directory.addUser(record("ivan", 12005));
    assert.equal(directory.addUser(record("heidi", 12005), { local: true }), "added");
  });

  it("refuses the same keys under a second name, unless forced", () => {
    const directory = openDirectory(tempDataDir("conflict"));
    const secrets = generateSecretKeys();
    directory.addUser(record("dave", 12004, secrets));
    throwsCode(() => directory.addUser(record("dave2", 12999, secrets)), "DUPLICATE_KEY", /dave/);
    directory.addUser(record("dave2", 12999, secrets), { force: true });
    assert.equal(directory.getUser("dave"), undefined);
    assert.equal(directory.getUser("dave2")?.port, 12999);
  });

  it("a damaged users.json is reported as DAMAGED, with the reason", () => {
    const dataDir = tempDataDir("damaged");
    mkdirSync(dataDir, { recursive: true });
    const usersPath = join(dataDir, "users.json");
    writeFileSync(usersPath, "{not json");
    throwsCode(() => openDirectory(dataDir), "DAMAGED", /not JSON/);
    const good = record("frank", 12006);
    const altered = { ...good, x25519: record("other", 1).x25519 };
    writeFileSync(usersPath, JSON.stringify({ format: "chatnode-users/1", users: [altered] }));
    throwsCode(() => openDirectory(dataDir), "DAMAGED", /binding/);
    writeFileSync(
      usersPath,
      JSON.stringify({ format: "chatnode-users/1", users: [good, { ...good, name: "frank2" }] }),
    );
    throwsCode(() => openDirectory(dataDir), "DAMAGED", /appear twice/);
  });
});
