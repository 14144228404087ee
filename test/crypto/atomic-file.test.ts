import assert from "node:assert/strict";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  ensurePrivateDirectory,
  PRIVATE_DIRECTORY_MODE,
  PRIVATE_FILE_MODE,
  writeFileAtomic,
} from "../../src/crypto/atomic-file.ts";

const root = mkdtempSync(join(tmpdir(), "chatnode-atomic-"));
after(() => rmSync(root, { recursive: true, force: true }));

const modeOf = (path: string) => statSync(path).mode & 0o777;

/** Runs `body` under `mask`, restoring the process umask afterwards (node:test runs one test at a time per file). */
function withUmask<T>(mask: number, body: () => T): T {
  const previous = process.umask(mask);
  try {
    return body();
  } finally {
    process.umask(previous);
  }
}

let fresh = 0;
function freshDirectory(): string {
  const directory = join(root, `case-${fresh++}`);
  mkdirSync(directory);
  return directory;
}

describe("atomic-file: ensurePrivateDirectory", () => {
  it("the modes are owner-only: 0700 for directories, 0600 for files", () => {
    assert.equal(PRIVATE_DIRECTORY_MODE, 0o700);
    assert.equal(PRIVATE_FILE_MODE, 0o600);
  });

  it("creates missing parents and leaves the directory 0700", () => {
    const directory = join(freshDirectory(), "a", "b", "c");
    ensurePrivateDirectory(directory);
    assert.ok(statSync(directory).isDirectory());
    assert.equal(modeOf(directory), 0o700);
  });

  it("tightens a directory that already existed with wider permissions, and keeps its content", () => {
    const directory = freshDirectory();
    writeFileSync(join(directory, "kept"), "x");
    chmodSync(directory, 0o755);
    ensurePrivateDirectory(directory);
    assert.equal(modeOf(directory), 0o700);
    assert.deepEqual(readdirSync(directory), ["kept"]);
  });
});

describe("atomic-file: writeFileAtomic", () => {
  it("writes a string as UTF-8, mode 0600 by default, and leaves no temporary file", () => {
    const directory = freshDirectory();
    const path = join(directory, "users.json");
    const text = "héllo → wörld ✓\n";
    writeFileAtomic(path, text);
    assert.equal(readFileSync(path, "utf8"), text);
    assert.equal(modeOf(path), 0o600);
    assert.deepEqual(readdirSync(directory), ["users.json"]);
  });

  it("writes bytes exactly, including a view into a larger buffer", () => {
    const directory = freshDirectory();
    const path = join(directory, "blob");
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) & 0xff);
    writeFileAtomic(path, bytes);
    assert.deepEqual(new Uint8Array(readFileSync(path)), bytes);
    writeFileAtomic(path, bytes.subarray(5, 9));
    assert.deepEqual(new Uint8Array(readFileSync(path)), bytes.subarray(5, 9));
    writeFileAtomic(path, new Uint8Array(0));
    assert.equal(readFileSync(path).length, 0);
    assert.deepEqual(readdirSync(directory), ["blob"]);
  });

  it("replaces an existing file whole, and tightens the mode of the replaced file", () => {
    const directory = freshDirectory();
    const path = join(directory, "key");
    writeFileSync(path, "an older and much longer content than the new one");
    chmodSync(path, 0o644);
    writeFileAtomic(path, "new");
    assert.equal(readFileSync(path, "utf8"), "new");
    assert.equal(modeOf(path), 0o600);
    assert.deepEqual(readdirSync(directory), ["key"]);
  });

  it("gives the file exactly the mode asked for, even bits the umask would clear", () => {
    const directory = freshDirectory();
    const path = join(directory, "public");
    withUmask(0o077, () => writeFileAtomic(path, "shared", 0o644));
    assert.equal(modeOf(path), 0o644);
    withUmask(0o022, () => writeFileAtomic(path, "private", 0o600));
    assert.equal(modeOf(path), 0o600);
  });

  it("when the rename fails (the target is a directory): throws, and leaves no temporary file", () => {
    const directory = freshDirectory();
    const target = join(directory, "taken");
    mkdirSync(target);
    writeFileSync(join(target, "inside"), "x");
    assert.throws(() => writeFileAtomic(target, "data"));
    assert.deepEqual(readdirSync(directory), ["taken"]);
    assert.deepEqual(readdirSync(target), ["inside"]);
  });

  it("when the write fails: throws the error, and creates neither the target nor a temporary file", () => {
    const directory = freshDirectory();
    const path = join(directory, "never");
    const notBytes = { length: 4 } as unknown as Uint8Array;
    assert.throws(() => writeFileAtomic(path, notBytes), TypeError);
    assert.deepEqual(readdirSync(directory), []);
  });

  it("when the directory does not exist: throws (it does not create it), and writes nothing", () => {
    const missing = join(freshDirectory(), "missing");
    assert.throws(() => writeFileAtomic(join(missing, "file"), "x"), { code: "ENOENT" });
  });
});
