/**
 * `chatnode --json` end to end: real processes, real UDP on 127.0.0.1, users registered through the CLI.
 * Timings are measured from the moment of the command, not from process start (tsx compiles at start-up, which
 * takes seconds on a busy machine); start-up itself is measured and printed.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, afterEach, before, describe, it } from "node:test";
import {
  CliProcess,
  type JsonEvent,
  killAll,
  registerUsers,
  runCli,
  STARTUP_MS,
  type TestDirectory,
  USERS,
} from "./cli-process.ts";

let dir: TestDirectory | undefined;

function registered(): TestDirectory {
  if (!dir) throw new Error("the users were not registered (see the before hook)");
  return dir;
}

function startJson(name: string, password?: string, extra: string[] = []): CliProcess {
  const user = USERS.find((u) => u.name === name);
  return new CliProcess([
    "--username",
    name,
    "--password",
    password ?? user?.password ?? "",
    "--data-dir",
    registered().dataDir,
    "--json",
    "--ephemeral",
    ...extra,
  ]);
}

const isMessage = (text: string) => (e: JsonEvent) => e.event === "message" && e.text === text;

describe("chatnode --json", { timeout: 240_000 }, () => {
  before(async () => {
    const t0 = performance.now();
    dir = await registerUsers();
    const version = await runCli(["--version"]);
    process.stderr.write(
      `registered 3 users via the CLI in ${Math.round(performance.now() - t0)} ms; ` +
        `\`chatnode --version\` start-up ${Math.round(version.ms)} ms\n`,
    );
  });
  afterEach(() => killAll());
  after(() => {
    killAll();
    if (dir) rmSync(dir.dataDir, { recursive: true, force: true });
  });

  it("delivers a broadcast to every peer exactly once, a private message only to its recipient; /q and end of stdin exit 0 within 2 s", {
    timeout: STARTUP_MS + 15_000,
  }, async (t) => {
    const nodes = { alice: startJson("alice"), bob: startJson("bob"), carol: startJson("carol") };
    const { alice, bob, carol } = nodes;
    const t0 = performance.now();
    for (const [name, p] of Object.entries(nodes)) {
      const ready = await p.waitFor((e) => e.event === "ready", STARTUP_MS, `${name} ready`);
      assert.equal(ready.username, name);
      assert.equal(ready.port, registered().ports[name]);
    }
    t.diagnostic(`three --json nodes ready in ${Math.round(performance.now() - t0)} ms`);

    const hello = `hello everyone ${Math.random()}`;
    alice.send(hello);
    const queued = await alice.waitFor((e) => e.event === "queued" && e.kind === "broadcast", 2000, "queued");
    assert.deepEqual([...(queued.to as string[])].sort(), ["bob", "carol"]);
    for (const p of [bob, carol]) {
      const m = await p.waitFor(isMessage(hello), 5000, "the broadcast");
      assert.equal(m.from, "alice");
      assert.equal(m.kind, "broadcast");
      assert.equal(m.id, queued.id);
      assert.equal(typeof m.sentAt, "number");
    }
    for (const to of ["bob", "carol"]) {
      await alice.waitFor(
        (e) => e.event === "delivered" && e.id === queued.id && e.to === to,
        5000,
        `delivered to ${to}`,
      );
    }

    const secret = `psst carol ${Math.random()}`;
    bob.send(`/p carol ${secret}`);
    const pq = await bob.waitFor((e) => e.event === "queued" && e.kind === "private", 2000, "private queued");
    assert.deepEqual(pq.to, ["carol"]);
    const pm = await carol.waitFor(isMessage(secret), 5000, "the private message");
    assert.equal(pm.from, "bob");
    assert.equal(pm.kind, "private");
    await bob.waitFor(
      (e) => e.event === "delivered" && e.id === pq.id && e.to === "carol",
      5000,
      "private delivered",
    );

    // Give stray copies (retransmissions, duplicates) time to show up before counting.
    await new Promise((r) => setTimeout(r, 400));

    const qAt = performance.now();
    alice.send("/q");
    carol.send("/quit");
    bob.endInput();
    const exits = await Promise.all([alice.waitExit(4000), bob.waitExit(4000), carol.waitExit(4000)]);
    for (const [i, name] of ["alice", "bob", "carol"].entries()) {
      const exit = exits[i];
      assert.equal(exit?.code, 0, `${name} exit code; stderr: ${nodes[name as keyof typeof nodes].stderr}`);
      const ms = (exit?.at ?? 0) - qAt;
      assert.ok(ms < 2000, `${name} took ${Math.round(ms)} ms to exit`);
    }
    t.diagnostic(
      `exits after /q, /quit, end of stdin: ${exits.map((e) => Math.round(e.at - qAt)).join(", ")} ms`,
    );

    assert.equal(bob.count(isMessage(hello)), 1, "bob got the broadcast once");
    assert.equal(carol.count(isMessage(hello)), 1, "carol got the broadcast once");
    assert.equal(
      alice.count((e) => e.event === "message"),
      0,
      "alice got no message",
    );
    assert.equal(
      bob.count((e) => e.event === "message" && e.text === secret),
      0,
      "bob did not get his own private",
    );
    assert.equal(carol.count(isMessage(secret)), 1, "carol got the private message once");
    for (const p of [alice, bob, carol]) {
      assert.deepEqual(p.junk, [], "nothing but JSON lines on stdout");
      assert.equal(p.events.at(-1)?.event, "closed");
      assert.equal(p.events[0]?.event, "ready");
    }
  });

  it("answers an unknown peer, an unknown command and the query commands with events, and keeps running", {
    timeout: STARTUP_MS + 10_000,
  }, async () => {
    const alice = startJson("alice");
    await alice.waitFor((e) => e.event === "ready", STARTUP_MS, "ready");
    alice.send("/p zed are you there");
    const err = await alice.waitFor((e) => e.event === "error", 2000, "error event");
    assert.match(err.message as string, /zed/);
    alice.send("/frobnicate");
    await alice.waitFor(
      (e) => e.event === "error" && /unknown command/.test(e.message as string),
      2000,
      "usage error",
    );
    alice.send("");
    alice.send("/fault loss 0.25");
    const faults = await alice.waitFor((e) => e.event === "faults", 2000, "faults");
    assert.equal((faults.faults as { lossIn: number }).lossIn, 0.25);
    alice.send("/fault loss 7");
    await alice.waitFor(
      (e) => e.event === "error" && /loss must be/.test(e.message as string),
      2000,
      "bad fault",
    );
    alice.send("/history 5");
    const history = await alice.waitFor((e) => e.event === "history", 2000, "history");
    assert.ok(Array.isArray(history.messages));
    alice.send("/stats");
    const stats = await alice.waitFor((e) => e.event === "stats", 2000, "stats");
    assert.equal(typeof stats.datagramsOut, "number");
    alice.send("/verify bob");
    const fp = await alice.waitFor((e) => e.event === "fingerprint", 2000, "fingerprint");
    assert.equal(fp.peer, "bob");
    assert.match(fp.fingerprint as string, /^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);
    alice.send("/peers");
    const peers = await alice.waitFor((e) => e.event === "peers", 2000, "peers, after the errors");
    assert.deepEqual((peers.peers as { name: string }[]).map((p) => p.name).sort(), ["bob", "carol"]);
    assert.equal(alice.exit, undefined, "still running");
    const endAt = performance.now();
    alice.endInput();
    const exit = await alice.waitExit(4000);
    assert.equal(exit.code, 0);
    assert.ok(exit.at - endAt < 2000, `exit took ${Math.round(exit.at - endAt)} ms`);
    assert.deepEqual(alice.junk, []);
  });

  it("answers each command once, in input order, with its line and tag; other events are marked async", {
    timeout: STARTUP_MS + 10_000,
  }, async () => {
    const alice = startJson("alice");
    await alice.waitFor((e) => e.event === "ready", STARTUP_MS, "ready");
    // The sequence of issue 23 (sends are answered by `queued`, after the group commit; queries at once), then a
    // tagged command, a broken JSON line and an unknown user in the middle, a blank line (no command), and /q.
    for (const line of [
      "order test one",
      "/fault",
      "/p bob order test two",
      "/verify",
      '{"cmd":"/p carol tagged","tag":"t-1"}',
      "{not json",
      "/p bobb typo",
      "",
      '{"cmd":"/stats","tag":42}',
      "/q",
    ])
      alice.send(line);
    const exit = await alice.waitExit(10_000);
    assert.equal(exit.code, 0);
    const replies = alice.events.filter((e) => e.async !== true);
    assert.deepEqual(
      replies.map((e) => [e.event, e.line, e.tag]),
      [
        ["queued", 1, undefined],
        ["faults", 2, undefined],
        ["queued", 3, undefined],
        ["fingerprint", 4, undefined],
        ["queued", 5, "t-1"],
        ["error", 6, undefined],
        ["error", 7, undefined],
        ["stats", 9, 42],
        ["closed", 10, undefined],
      ],
    );
    assert.deepEqual(replies[4]?.to, ["carol"]);
    assert.match(replies[6]?.message as string, /"bobb"/);
    const others = alice.events.filter((e) => e.async === true);
    assert.equal(others[0]?.event, "ready");
    assert.ok(others.every((e) => e.line === undefined));
    assert.deepEqual(alice.junk, []);
  });

  it("exits 2 with one line on stderr for a wrong password", { timeout: 2 * STARTUP_MS }, async (t) => {
    // Start-up under tsx (seconds on a busy machine) is measured by a `--version` run started at the same moment,
    // under the same load, and not counted: what must take under 2 s is the login and the exit. Start-up times
    // of two processes can still differ by seconds when the machine is overloaded, so a slow result is tried once
    // more; a real hang fails both tries.
    let beyond = Number.POSITIVE_INFINITY;
    for (let attempt = 1; attempt <= 2 && beyond >= 2000; attempt++) {
      const p = startJson("alice", "not-her-password");
      p.endInput();
      const [exit, baseline] = await Promise.all([p.waitExit(STARTUP_MS), runCli(["--version"])]);
      const ms = exit.at - p.startedAt;
      assert.equal(exit.code, 2);
      assert.equal(p.stdout, "", "nothing on stdout");
      const lines = p.stderr.split("\n").filter((l) => l !== "");
      assert.equal(lines.length, 1, `one line on stderr: ${p.stderr}`);
      assert.match(lines[0] as string, /^chatnode: wrong password for alice/);
      assert.doesNotMatch(p.stderr, /\n\s+at /, "no stack trace");
      beyond = ms - baseline.ms;
      t.diagnostic(
        `wrong password (try ${attempt}): exit after ${Math.round(ms)} ms, start-up alone ${Math.round(baseline.ms)} ms`,
      );
    }
    assert.ok(beyond < 2000, `took ${Math.round(beyond)} ms beyond start-up`);
  });

  it("rejects bad flags with exit 2 and commander's message", { timeout: STARTUP_MS + 5000 }, async () => {
    const [port, loss, unknown, command] = await Promise.all([
      runCli(["--username", "alice", "--password", "pass1", "--port", "70000"]),
      runCli(["chat", "--username", "alice", "--password", "pass1", "--loss", "150%"]),
      runCli(["--username", "alice", "--frobnicate"]),
      runCli(["chta"]),
    ]);
    for (const r of [port, loss, unknown, command]) {
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /^chatnode: /);
    }
    assert.match(port.stderr, /--port/);
    assert.match(loss.stderr, /loss must be a rate/);
    assert.match(unknown.stderr, /unknown option '--frobnicate'/);
    assert.match(command.stderr, /unknown command 'chta' \(Did you mean chat\?\)/);
  });
});
