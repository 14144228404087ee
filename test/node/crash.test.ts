/**
 * Crash safety over real UDP: a node in a child process is killed with SIGKILL at random moments while it sends
 * and receives, then restarted on the same database. Every message queued on either side must end delivered
 * exactly once, and no message may be shown twice.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import { makeUsers, nodeFor, until } from "../helpers/loopback-nodes.ts";

const FIXTURE = fileURLToPath(new URL("./fixtures/crash-peer.ts", import.meta.url));
const KILLS = Number(process.env.CHATNODE_CRASH_RUNS ?? 20);
const PER_SIDE = 40;

test(`${KILLS} SIGKILLs of a sending and receiving node lose nothing and duplicate nothing`, {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "chatnode-crash-"));
  const users = await makeUsers(["alice", "bob"]);
  const alice = users[0] as (typeof users)[0];
  const aliceNode = nodeFor(alice, users, {
    store: openSqliteStore(join(dir, "alice.db")),
    config: { heartbeatMs: 250 },
  });
  const aliceGot: string[] = [];
  aliceNode.on("message", (m) => aliceGot.push(m.text));
  await aliceNode.start();

  const spec = {
    self: 1,
    dbPath: join(dir, "bob.db"),
    sendCount: PER_SIDE,
    intervalMs: 15,
    peers: users.map((u) => ({
      name: u.contact.name,
      id: u.contact.id,
      port: u.contact.port,
      ed25519Seed: Buffer.from(u.secrets.ed25519Seed).toString("hex"),
      x25519PrivateKey: Buffer.from(u.secrets.x25519PrivateKey).toString("hex"),
    })),
  };
  const bobShown: string[] = [];
  let child: ChildProcess | undefined;
  const startBob = async () => {
    const proc = spawn(process.execPath, ["--import", "tsx", FIXTURE], {
      env: { ...process.env, CRASH_SPEC: JSON.stringify(spec) },
      stdio: ["pipe", "pipe", "inherit"],
    });
    child = proc;
    let ready = false;
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const e = JSON.parse(line) as { event: string; text?: string };
      if (e.event === "ready") ready = true;
      if (e.event === "message") bobShown.push(e.text as string);
    });
    await until(() => ready, 10_000, "bob ready");
    return proc;
  };
  const killBob = async (proc: ChildProcess) => {
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    await exited;
  };

  let aliceSent = 0;
  const aliceTimer = setInterval(() => {
    if (aliceSent < PER_SIDE) aliceNode.broadcast(`alice-${aliceSent++}`);
  }, 25);
  try {
    for (let run = 0; run < KILLS; run++) {
      const proc = await startBob();
      await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 150)));
      await killBob(proc);
    }
    const proc = await startBob();
    await until(() => aliceSent === PER_SIDE, 20_000, "alice to queue everything");
    await until(() => new Set(aliceGot).size === PER_SIDE, 30_000, "alice to receive all of bob's messages");
    await until(() => aliceNode.stats().pending === 0, 30_000, "bob to acknowledge all of alice's messages");
    const exited = new Promise((r) => proc.once("exit", r));
    proc.stdin?.end();
    await exited;
  } finally {
    clearInterval(aliceTimer);
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await aliceNode.close();
  }
  const expected = (name: string) => Array.from({ length: PER_SIDE }, (_, i) => `${name}-${i}`).sort();
  assert.deepEqual([...aliceGot].sort(), expected("bob"), "alice shows each of bob's messages exactly once");
  const bobStore = openSqliteStore(spec.dbPath);
  const bobHistory = bobStore.history(1_000_000);
  bobStore.close();
  const received = bobHistory.filter((h) => h.direction === "in").map((h) => h.text);
  assert.deepEqual(received.sort(), expected("alice"), "bob stored each of alice's messages exactly once");
  assert.equal(new Set(bobShown).size, bobShown.length, "bob never showed a message twice");
  const sent = bobHistory.filter((h) => h.direction === "out").map((h) => h.text);
  assert.deepEqual(sent.sort(), expected("bob"), "bob's outbox holds each of its messages once");
  rmSync(dir, { recursive: true, force: true });
});
