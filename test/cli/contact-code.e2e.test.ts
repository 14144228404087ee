/**
 * "Two friends" end to end, with the real `chatnode` in child processes and real UDP on 127.0.0.1: alice and bob
 * each have their own data directory (their own machine), both registered at the same address and port, the way
 * two people who kept the defaults would be. Each exports a contact code, the other imports it, and they chat.
 * The live codes come from /whoami in --json mode, which carries the port the running node really has.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, describe, it } from "node:test";
import { registerUser } from "../../src/identity/register.ts";
import { TEST_SCRYPT_N, tempDataDir } from "../identity/temp.ts";
import { CliProcess, type JsonEvent, killAll, runCli, STARTUP_MS } from "./cli-process.ts";

const SHARED_PORT = 12001;

async function machine(name: string, password: string): Promise<string> {
  const dataDir = tempDataDir(`code-${name}`);
  await registerUser({ dataDir, username: name, password, port: SHARED_PORT, scryptN: TEST_SCRYPT_N });
  return dataDir;
}

function startJson(name: string, password: string, dataDir: string): CliProcess {
  return new CliProcess([
    "--username",
    name,
    "--password",
    password,
    "--port",
    "0",
    "--data-dir",
    dataDir,
    "--json",
    "--ephemeral",
  ]);
}

async function whoami(p: CliProcess, from: number): Promise<JsonEvent> {
  p.send("/whoami");
  return p.waitFor((e) => e.event === "whoami", 5000, "the reply to /whoami", from);
}

describe("contact codes end to end", { timeout: 120_000 }, () => {
  afterEach(() => killAll());
  after(() => killAll());

  it("export → import on another data directory: the contact shows in `chatnode users`, beside a local user on the same address", async () => {
    const aliceHome = await machine("alice", "pw-a");
    const bobHome = await machine("bob", "pw-b");
    const exported = await runCli(["contact", "export", "alice", "--data-dir", aliceHome]);
    assert.equal(exported.code, 0, exported.stderr);
    const code = exported.stdout.trim();
    assert.equal(exported.stdout.split("\n").length, 2, "one line");
    assert.match(code, /^chatnode:1\/alice@127\.0\.0\.1:12001\//);
    const imported = await runCli(["contact", "import", code, "--data-dir", bobHome]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(
      imported.stdout,
      /^added alice at 127\.0\.0\.1:12001\nfingerprint ([0-9a-f]{4} ){15}[0-9a-f]{4}\n/,
    );
    const users = await runCli(["users", "--data-dir", bobHome]);
    assert.match(users.stdout, /alice\s+127\.0\.0\.1:12001\s+\S+ \S+ \S+ \S+\s+contact/);
    assert.match(users.stdout, /bob\s+127\.0\.0\.1:12001\s+\S+ \S+ \S+ \S+\s+local/);
    const truncated = await runCli(["contact", "import", code.slice(0, -3), "--data-dir", bobHome]);
    assert.equal(truncated.code, 2);
    assert.match(
      truncated.stderr,
      /^chatnode: the contact code is cut short: its checksum has 5 of 8 digits\n$/,
    );
  });

  it("/whoami over --json gives each running node's code; imported both ways, alice and bob chat", async (t) => {
    const aliceHome = await machine("alice", "pw-a");
    const bobHome = await machine("bob", "pw-b");
    const alice = startJson("alice", "pw-a", aliceHome);
    const bob = startJson("bob", "pw-b", bobHome);
    const aliceReady = await alice.waitFor((e) => e.event === "ready", STARTUP_MS, "alice ready");
    const bobReady = await bob.waitFor((e) => e.event === "ready", STARTUP_MS, "bob ready");
    const t0 = performance.now();

    const aliceCode = await whoami(alice, 0);
    assert.equal(aliceCode.username, "alice");
    assert.match(aliceCode.fingerprint as string, /^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);
    assert.ok((aliceCode.code as string).startsWith(`chatnode:1/alice@${aliceReady.address}/`));
    const bobCode = await whoami(bob, 0);
    assert.ok((bobCode.code as string).startsWith(`chatnode:1/bob@${bobReady.address}/`));

    // Each imports the other's code while running: the node takes the contact at once.
    const intoBob = await runCli(["contact", "import", aliceCode.code as string, "--data-dir", bobHome]);
    assert.equal(intoBob.code, 0, intoBob.stderr);
    assert.ok(intoBob.stdout.includes(aliceCode.fingerprint as string), "the fingerprint to compare");
    const empty = await runCli(["contact", "import", "-", "--data-dir", aliceHome]);
    assert.equal(empty.code, 2, "stdin was empty: nothing to import");
    assert.match(empty.stderr, /^chatnode: this is neither a contact code \(chatnode:…\) nor a contact card/);
    const bobFile = join(aliceHome, "..", "bob.code");
    writeFileSync(bobFile, `${bobCode.code as string}\n`);
    const intoAlice = await runCli(["contact", "import", bobFile, "--data-dir", aliceHome]);
    assert.equal(intoAlice.code, 0, intoAlice.stderr);
    await alice.waitFor(
      (e) => e.event === "contacts" && (e.added as string[]).includes("bob"),
      5000,
      "bob added",
    );
    await bob.waitFor((e) => e.event === "contacts", 5000, "alice's contact changed");

    bob.send("/p alice hello from bob");
    const m = await alice.waitFor(
      (e) => e.event === "message" && e.text === "hello from bob",
      5000,
      "bob's message",
    );
    assert.equal(m.from, "bob");
    assert.equal(m.kind, "private");
    alice.send("hi bob");
    await bob.waitFor(
      (e) => e.event === "message" && e.text === "hi bob" && e.from === "alice",
      5000,
      "alice's broadcast",
    );
    t.diagnostic(`codes exchanged and a message each way in ${Math.round(performance.now() - t0)} ms`);

    alice.send("/help");
    const help = await alice.waitFor((e) => e.event === "help", 2000, "help");
    assert.ok((help.commands as { usage: string }[]).some((c) => c.usage === "/whoami"));
    for (const p of [alice, bob]) {
      p.send("/q");
      assert.equal((await p.waitExit(5000)).code, 0);
      assert.deepEqual(p.junk, [], "nothing but JSON on stdout");
    }
  });
});
