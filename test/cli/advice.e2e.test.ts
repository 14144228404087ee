/**
 * Every piece of advice an error gives is followed here, as printed, and must then work: the command in backticks
 * is run (with the answers it asks for on stdin), then the start that failed is tried again.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { registerUser } from "../../src/identity/register.ts";
import { freePorts } from "../helpers/loopback-nodes.ts";
import { TEST_SCRYPT_N, tempDataDir } from "../identity/temp.ts";
import { CliProcess, childEnv, killAll, MAIN, STARTUP_MS } from "./cli-process.ts";
import { chatArgs, DEMO_BASE_PORT, demoDataDir } from "./demo-dir.ts";

afterEach(killAll);

interface Done {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function run(args: readonly string[], input = ""): Promise<Done> {
  const p = new CliProcess(args);
  p.child.stdin.end(input);
  const exit = await p.waitExit(STARTUP_MS * 2);
  return { code: exit.code, stdout: p.stdout, stderr: p.stderr };
}

/** A start that must fail with one line and exit 2; returns that line. */
async function failsWith(args: readonly string[], pattern: RegExp): Promise<string> {
  const r = await run([...args, "--json"]);
  assert.equal(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.match(r.stderr, pattern);
  return r.stderr.trim();
}

/** The `chatnode …` command an error line suggests, as argv (the test paths need no quoting). */
function advised(line: string): string[] {
  const match = /`chatnode ([^`]+)`/.exec(line);
  assert.ok(match, `a command in backticks in: ${line}`);
  return (match[1] as string).split(" ");
}

/** The start works: ready, then a clean quit. */
async function starts(args: readonly string[]): Promise<void> {
  const p = new CliProcess([...args, "--json"]);
  await p.waitFor((e) => e.event === "ready", STARTUP_MS, "ready");
  p.endInput();
  assert.equal((await p.waitExit(STARTUP_MS)).code, 0, p.stderr);
}

describe("error advice, followed, works", () => {
  it("a demo user whose key file is gone: the suggested bulk-register gives it new keys", async () => {
    const dataDir = await demoDataDir("advice-key");
    rmSync(join(dataDir, "keys", "dave.key"));
    const line = await failsWith(chatArgs(dataDir, "dave", "pass4"), /dave is a contact, not a local user/);
    const command = advised(line);
    assert.deepEqual(command, [
      "bulk-register",
      "--base-port",
      String(DEMO_BASE_PORT),
      "--data-dir",
      dataDir,
    ]);
    const fix = await run(command);
    assert.equal(fix.code, 0, fix.stderr);
    assert.match(fix.stderr, /dave's key file was missing: made new keys/);
    assert.match(fix.stdout, /new keys\s+dave/);
    await starts(chatArgs(dataDir, "dave", "pass4"));
  });

  it("a user of one's own whose key file is gone: the suggested register --force", async () => {
    const dataDir = tempDataDir("advice-own-key");
    const [port] = await freePorts(1);
    await registerUser({
      dataDir,
      username: "mallory",
      password: "m-pw",
      port: port as number,
      scryptN: TEST_SCRYPT_N,
    });
    rmSync(join(dataDir, "keys", "mallory.key"));
    const line = await failsWith(chatArgs(dataDir, "mallory", "m-pw"), /mallory is a contact/);
    const command = advised(line);
    assert.ok(command.includes("--force"), line);
    const fix = await run(command, "new-pw\nnew-pw\n"); // the password, asked for and confirmed
    assert.equal(fix.code, 0, fix.stderr);
    await starts(chatArgs(dataDir, "mallory", "new-pw"));
  });

  it("an unknown user: the suggested register (answers on stdin), or bulk-register for a demo name", async () => {
    const dataDir = await demoDataDir("advice-unknown");
    const line = await failsWith(chatArgs(dataDir, "eve", "e-pw"), /unknown user eve in /);
    const command = advised(line);
    assert.deepEqual(command, ["register", "--username", "eve", "--data-dir", dataDir]);
    const [port] = await freePorts(1);
    const fix = await run(command, `${port}\n\ne-pw\ne-pw\n`); // port, host (the default), password twice
    assert.equal(fix.code, 0, fix.stderr);
    await starts(chatArgs(dataDir, "eve", "e-pw"));

    const empty = tempDataDir("advice-empty");
    const demo = await failsWith(chatArgs(empty, "alice", "pass1"), /unknown user alice in .*bulk-register/);
    const bulk = await run(advised(demo));
    assert.equal(bulk.code, 0, bulk.stderr);
    await starts(chatArgs(empty, "alice", "pass1"));

    const list = await failsWith(chatArgs(empty, "../x", "pw"), /not a valid user name/);
    const users = await run(advised(list));
    assert.equal(users.code, 0, users.stderr);
    assert.match(users.stdout, /^NAME/);
  });

  it("a wrong password: the right one works; a lost one is replaced by the suggested register --force", async () => {
    const dataDir = await demoDataDir("advice-password");
    const line = await failsWith(chatArgs(dataDir, "alice", "pass2"), /wrong password for alice/);
    await starts(chatArgs(dataDir, "alice", "pass1"));
    const fix = await run(advised(line), "fresh\nfresh\n");
    assert.equal(fix.code, 0, fix.stderr);
    await starts(chatArgs(dataDir, "alice", "fresh"));
  });

  it("a port in use: the suggested --port 0", async () => {
    const dataDir = await demoDataDir("advice-port");
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
    try {
      const busy = String(socket.address().port);
      const args = ["--username", "alice", "--password", "pass1", "--data-dir", dataDir];
      await failsWith([...args, "--port", busy], /already in use.*--port 0 picks a free one/);
      await starts([...args, "--port", "0"]);
    } finally {
      socket.close();
    }
  });

  it("no password without a terminal: the suggested --password-file and CHATNODE_PASSWORD", async () => {
    const dataDir = await demoDataDir("advice-nopass");
    const args = ["--username", "alice", "--port", "0", "--data-dir", dataDir];
    await failsWith(args, /no password for alice: pass --password-file, set CHATNODE_PASSWORD/);
    const file = join(dataDir, "..", "alice.pw");
    writeFileSync(file, "pass1\n", { mode: 0o600 });
    await starts([...args, "--password-file", file]);
    const p = new CliProcess([...args, "--json"], childEnv({ CHATNODE_PASSWORD: "pass1" }));
    await p.waitFor((e) => e.event === "ready", STARTUP_MS, "ready");
    p.endInput();
    assert.equal((await p.waitExit(STARTUP_MS)).code, 0, p.stderr);
  });

  it("busy scenario ports under npm start: the suggested `npm start -- --base-port 0` reaches the command", async () => {
    // A package whose start script is `chatnode scenarios`, as the repository's is (without needing a build).
    const dir = join(tempDataDir("advice-npm"), "..");
    const tsx = fileURLToPath(import.meta.resolve("tsx"));
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({
        name: "npm-start-advice",
        private: true,
        scripts: {
          start: `${JSON.stringify(process.execPath)} --import ${JSON.stringify(tsx)} ${JSON.stringify(MAIN)} scenarios --only 1`,
        },
      }),
    );
    const npm = (args: string[]) =>
      new Promise<Done>((resolve) => {
        const child = spawn("npm", args, { cwd: dir, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (c: Buffer) => {
          stdout += c;
        });
        child.stderr.on("data", (c: Buffer) => {
          stderr += c;
        });
        child.on("exit", (code) => resolve({ code, stdout, stderr }));
      });
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
    try {
      const busy = await npm(["start", "--silent", "--", "--base-port", String(socket.address().port)]);
      assert.equal(busy.code, 2, busy.stderr);
      const match = /`(npm start -- --base-port 0)`/.exec(busy.stderr);
      assert.ok(match, busy.stderr);
      // As printed, with npm's banner silenced and the results as JSON, to read them.
      const [, start, ...rest] = (match[1] as string).split(" ");
      const followed = await npm([start as string, "--silent", ...rest, "--json"]);
      assert.equal(followed.code, 0, followed.stderr);
      assert.equal((JSON.parse(followed.stdout) as { ok: boolean }).ok, true);
    } finally {
      socket.close();
    }
  });
});
