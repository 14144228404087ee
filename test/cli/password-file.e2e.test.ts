/**
 * `--password-file <path>` and `--password-file -` over real processes: the password comes from the file (one
 * trailing newline stripped, no more), or from stdin's first line without eating what follows (the interactive
 * client's lines, --json's commands); every bad file is one line and exit 2; a file others can read is a warning.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { CliProcess, killAll, STARTUP_MS } from "./cli-process.ts";
import { demoUsersIn } from "./demo-dir.ts";

afterEach(killAll);

// One data directory for the file (a hook's tempDataDir would be removed when the hook ends).
const root = mkdtempSync(join(tmpdir(), "chatnode-password-file-"));
const dataDir = join(root, "home");
before(() => demoUsersIn(dataDir));
after(() => rmSync(root, { recursive: true, force: true }));

function args(passwordFile: string, extra: string[] = ["--json"]): string[] {
  return [
    "--username",
    "alice",
    "--password-file",
    passwordFile,
    "--port",
    "0",
    "--data-dir",
    dataDir,
    ...extra,
  ];
}

let files = 0;
function passwordFile(content: string | Buffer, mode = 0o600): string {
  const path = join(dataDir, "..", `pw-${++files}`);
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  return path;
}

async function readyThenQuit(p: CliProcess): Promise<void> {
  await p.waitFor((e) => e.event === "ready", STARTUP_MS, "ready");
  p.endInput();
  assert.equal((await p.waitExit(STARTUP_MS)).code, 0, p.stderr);
}

async function refused(p: CliProcess, pattern: RegExp): Promise<void> {
  p.endInput();
  const exit = await p.waitExit(STARTUP_MS);
  assert.equal(exit.code, 2, `stderr: ${p.stderr}`);
  assert.equal(p.stderr.trimEnd().split("\n").length, 1, p.stderr);
  assert.doesNotMatch(p.stderr, /\n\s+at /);
  assert.match(p.stderr, pattern);
}

describe("--password-file", () => {
  it("reads the password from a file, stripping one \\n or \\r\\n; quiet when the file is private", async () => {
    for (const content of ["pass1\n", "pass1\r\n", "pass1"]) {
      const p = new CliProcess(args(passwordFile(content)));
      await readyThenQuit(p);
      assert.equal(p.stderr, "", `no warning for a private file (${JSON.stringify(content)})`);
    }
  });

  it("strips one newline only: the rest is part of the password", async () => {
    await refused(new CliProcess(args(passwordFile("pass1\n\n"))), /wrong password for alice/);
    await refused(new CliProcess(args(passwordFile(" pass1\n"))), /wrong password for alice/);
  });

  it("warns, in one line, when group or others can read the file, and still starts", async () => {
    const path = passwordFile("pass1\n", 0o644);
    const p = new CliProcess(args(path));
    await readyThenQuit(p);
    assert.equal(p.stderr.trimEnd().split("\n").length, 1, p.stderr);
    assert.match(
      p.stderr,
      new RegExp(
        `^chatnode: warning: --password-file ${path} can be read by other users \\(mode 644\\); chmod 600`,
      ),
    );
  });

  it("a missing, unreadable, empty or too large file is one line and exit 2", async () => {
    const dir = join(dataDir, "..", "a-directory");
    mkdirSync(dir, { recursive: true });
    const cases: [string, RegExp][] = [
      [join(dataDir, "..", "nowhere"), /cannot read --password-file .*nowhere: no such file/],
      [dir, /--password-file .*a-directory is not a file/],
      [passwordFile(""), /--password-file .* is empty/],
      [passwordFile("\n"), /--password-file .* is empty/],
      [passwordFile("x".repeat(1025)), /is 1025 bytes; a password file holds one line of at most 1024 bytes/],
    ];
    // Root reads a file of mode 000 anyway: the case is real only for other users.
    if (process.getuid?.() !== 0) cases.push([passwordFile("pass1\n", 0o000), /permission denied/]);
    await Promise.all(cases.map(([path, pattern]) => refused(new CliProcess(args(path)), pattern)));
    await refused(
      new CliProcess([...args(passwordFile("pass1\n")), "--password", "pass1"]),
      /give --password or --password-file, not both/,
    );
  });

  it("- with --json: the first line of stdin is the password, the rest are commands", async () => {
    const p = new CliProcess(args("-"));
    p.child.stdin.write("pass1\n/verify\n/peers\n"); // one write: the password and the commands arrive together
    p.endInput();
    const exit = await p.waitExit(STARTUP_MS);
    assert.equal(exit.code, 0, p.stderr);
    assert.deepEqual(
      p.events.map((e) => e.event),
      ["ready", "fingerprint", "peers", "closed"],
    );
    assert.deepEqual(p.junk, []);
  });

  it("- in the interactive client: only the first line is taken, the next ones are typed commands", async () => {
    const p = new CliProcess(args("-", ["--no-color"]));
    p.child.stdin.write("pass1\r\n/verify\n/q\n");
    p.endInput();
    const exit = await p.waitExit(STARTUP_MS);
    assert.equal(exit.code, 0, p.stderr);
    assert.match(p.stdout, /alice's safety fingerprint/);
    assert.doesNotMatch(p.stdout, /pass1/, "the password is not sent as a message");
    // Only the password, without a newline: stdin ends there, and so does the client.
    const alone = new CliProcess(args("-", ["--no-color"]));
    alone.child.stdin.end("pass1");
    assert.equal((await alone.waitExit(STARTUP_MS)).code, 0, alone.stderr);
    assert.match(alone.stdout, /listening on/);
  });

  it("- with an empty or too long first line, or no input, is one line and exit 2", async () => {
    const cases: [string, RegExp][] = [
      ["\n/q\n", /the first line of stdin is empty/],
      ["", /the first line of stdin is empty/],
      [`${"x".repeat(2000)}\n`, /longer than 1024 bytes/],
    ];
    await Promise.all(
      cases.map(([input, pattern]) => {
        const p = new CliProcess(args("-"));
        p.child.stdin.write(input);
        return refused(p, pattern);
      }),
    );
  });
});
