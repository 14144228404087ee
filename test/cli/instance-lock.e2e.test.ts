/**
 * One running node per user and data directory, over real processes: a second start of a running user is refused
 * at once (exit 2, one line naming the running one), in --json, interactive and --ephemeral alike; a lock left by
 * kill -9 does not block the next start; other users, and the same user in another data directory, run alongside.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { CliProcess, killAll, STARTUP_MS } from "./cli-process.ts";
import { chatArgs, demoDataDir } from "./demo-dir.ts";

afterEach(killAll);

async function startAlice(
  dataDir: string,
  extra: string[] = ["--json"],
): Promise<{ p: CliProcess; address: string }> {
  const p = new CliProcess(chatArgs(dataDir, "alice", "pass1", extra));
  const ready = await p.waitFor((e) => e.event === "ready", STARTUP_MS, "alice ready");
  return { p, address: ready.address as string };
}

/** Exit 2 and exactly one stderr line, no stack trace. */
async function refused(p: CliProcess): Promise<string> {
  p.endInput();
  const exit = await p.waitExit(STARTUP_MS);
  assert.equal(exit.code, 2, `stderr: ${p.stderr}`);
  const lines = p.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, p.stderr);
  assert.doesNotMatch(p.stderr, /\n\s+at /);
  assert.equal(p.stdout, "", "nothing on stdout");
  return lines[0] as string;
}

async function quit(p: CliProcess): Promise<void> {
  p.send("/q");
  p.endInput();
  assert.equal((await p.waitExit(STARTUP_MS)).code, 0, p.stderr);
}

describe("one running node per user and data directory", () => {
  it("a second start is refused with exit 2, naming the running one; after it quits, a start succeeds", async () => {
    const dataDir = await demoDataDir("lock-second");
    const { p: first, address } = await startAlice(dataDir);
    const expected = `chatnode: alice is already running (pid ${first.child.pid}, ${address}); quit it first, or use another --data-dir`;
    const attempts = [
      new CliProcess(chatArgs(dataDir, "alice", "pass1", ["--json"])),
      new CliProcess(chatArgs(dataDir, "alice", "pass1", ["--no-color"])),
      new CliProcess(chatArgs(dataDir, "alice", "pass1", ["--json", "--ephemeral"])),
      new CliProcess(chatArgs(dataDir, "Alice", "pass1", ["--ephemeral", "--port", "0"])),
    ];
    for (const line of await Promise.all(attempts.map(refused))) assert.equal(line, expected);
    // A wrong password is reported as such, not as a running node (which it does not get to learn about).
    const wrong = await refused(new CliProcess(chatArgs(dataDir, "alice", "nope", ["--json"])));
    assert.match(wrong, /wrong password for alice/);
    assert.equal(first.exit, undefined, "the running node is untouched");
    // The advice, followed: quit it first.
    await quit(first);
    assert.equal(existsSync(join(dataDir, "run", "alice.lock")), false, "a clean quit removes the lock");
    const { p: next } = await startAlice(dataDir);
    await quit(next);
  });

  it("a lock left by kill -9 does not block the next start", async () => {
    const dataDir = await demoDataDir("lock-kill");
    const { p: first } = await startAlice(dataDir);
    first.child.kill("SIGKILL");
    await first.waitExit(STARTUP_MS);
    assert.equal(existsSync(join(dataDir, "run", "alice.lock")), true, "kill -9 leaves the lock behind");
    const { p: second } = await startAlice(dataDir);
    await quit(second);
  });

  it("two users in one data directory, and one user in two data directories, all run at once", async () => {
    const one = await demoDataDir("lock-one");
    const two = await demoDataDir("lock-two");
    const nodes = [
      new CliProcess(chatArgs(one, "alice", "pass1", ["--json"])),
      new CliProcess(chatArgs(one, "bob", "pass2", ["--json"])),
      // The advice of the refusal, followed: another --data-dir.
      new CliProcess(chatArgs(two, "alice", "pass1", ["--json"])),
    ];
    await Promise.all(nodes.map((p) => p.waitFor((e) => e.event === "ready", STARTUP_MS, "ready")));
    await Promise.all(nodes.map(quit));
  });
});
