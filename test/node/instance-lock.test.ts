/**
 * The run lock (src/node/instance-lock.ts) on real files and real processes: a live holder refuses, a dead one
 * (or a reused pid, or a damaged file) is taken over, and the holder removes only its own lock.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { after, describe, it } from "node:test";
import { ChatNodeError } from "../../src/node/errors.ts";
import {
  acquireInstanceLock,
  type LockInfo,
  lockPath,
  readLock,
  systemProbe,
} from "../../src/node/instance-lock.ts";
import { tempDataDir } from "../identity/temp.ts";

const children: ReturnType<typeof spawn>[] = [];
after(() => {
  for (const child of children) child.kill("SIGKILL");
});

/** A process that runs until killed: a live lock holder that is not this process. */
async function liveProcess(): Promise<number> {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  children.push(child);
  await new Promise((resolve) => child.once("spawn", resolve));
  return child.pid as number;
}

/** The pid of a process that has exited: nothing runs under it (until the kernel hands it out again). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid as number;
}

function writeLock(dataDir: string, user: string, content: string): string {
  const path = lockPath(dataDir, user);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return path;
}

function lockOf(pid: number, extra: Partial<LockInfo> = {}): string {
  return JSON.stringify({ pid, startedAt: Date.now(), token: "0123456789abcdef", ...extra });
}

function held(path: string): LockInfo {
  const read = readLock(path);
  assert.ok(read && read.info !== "damaged", `a lock at ${path}`);
  return read.info;
}

describe("instance lock", () => {
  it("is a file naming this process, gets the address once known, and is gone after release", () => {
    const dataDir = tempDataDir("lock-basic");
    mkdirSync(dataDir, { recursive: true });
    const lock = acquireInstanceLock(dataDir, "alice");
    assert.equal(held(lock.path).pid, process.pid);
    assert.equal(held(lock.path).address, undefined);
    lock.setAddress("127.0.0.1:12001");
    assert.equal(held(lock.path).address, "127.0.0.1:12001");
    lock.release();
    lock.release(); // twice is harmless
    assert.equal(existsSync(lock.path), false);
    assert.deepEqual(readdirSync(dirname(lock.path)), [], "no temporary file left behind");
  });

  it("refuses while a live process holds it, naming its pid and address", async () => {
    const dataDir = tempDataDir("lock-live");
    const pid = await liveProcess();
    const processStart = systemProbe.startTime(pid);
    const path = writeLock(
      dataDir,
      "alice",
      lockOf(pid, { address: "127.0.0.1:12001", ...(processStart && { processStart }) }),
    );
    const before = readFileSync(path, "utf8");
    assert.throws(
      () => acquireInstanceLock(dataDir, "alice"),
      (error: unknown) =>
        error instanceof ChatNodeError &&
        error.code === "ALREADY_RUNNING" &&
        error.message ===
          `alice is already running (pid ${pid}, 127.0.0.1:12001); quit it first, or use another --data-dir`,
    );
    assert.equal(readFileSync(path, "utf8"), before, "the holder's lock is left as it was");
    // While it starts, the address is not known yet.
    writeLock(dataDir, "bob", lockOf(pid));
    assert.throws(() => acquireInstanceLock(dataDir, "bob"), /bob is already running \(pid \d+, starting\)/);
  });

  it("takes over the lock of a process that is gone (kill -9), and of a reused pid", async () => {
    const dataDir = tempDataDir("lock-stale");
    const dead = await deadPid();
    const path = writeLock(dataDir, "alice", lockOf(dead, { address: "127.0.0.1:12001" }));
    const lock = acquireInstanceLock(dataDir, "alice");
    assert.equal(held(path).pid, process.pid);
    lock.release();
    // A live pid whose process started at another time than the lock says: the pid was handed out again.
    const live = await liveProcess();
    if (systemProbe.startTime(live) !== undefined) {
      writeLock(dataDir, "alice", lockOf(live, { processStart: "1" }));
      const again = acquireInstanceLock(dataDir, "alice");
      assert.equal(held(path).pid, process.pid);
      again.release();
    }
  });

  it("treats a damaged lock file as stale, without crashing", () => {
    const dataDir = tempDataDir("lock-damaged");
    for (const content of ["", "{", "null", '{"pid":"x"}', '{"pid":-1,"token":"t"}', "\u0000\u0001"]) {
      const path = writeLock(dataDir, "alice", content);
      const lock = acquireInstanceLock(dataDir, "alice");
      assert.equal(held(path).pid, process.pid, `taken over from ${JSON.stringify(content)}`);
      lock.release();
    }
  });

  it("is counted within one process, and release never removes a lock someone else wrote", async () => {
    const dataDir = tempDataDir("lock-reentrant");
    mkdirSync(dataDir, { recursive: true });
    const first = acquireInstanceLock(dataDir, "alice");
    const second = acquireInstanceLock(dataDir, "alice");
    first.release();
    assert.equal(held(first.path).pid, process.pid, "still held by the second");
    second.release();
    assert.equal(existsSync(first.path), false);
    // Another process's lock put in place meanwhile (say, after ours was judged stale by it) stays.
    const mine = acquireInstanceLock(dataDir, "alice");
    const other = await liveProcess();
    writeFileSync(mine.path, lockOf(other));
    mine.release();
    assert.equal(held(mine.path).pid, other);
  });

  it("a different user, or the same user in another data directory, has a lock of its own", () => {
    const one = tempDataDir("lock-one");
    const two = tempDataDir("lock-two");
    mkdirSync(one, { recursive: true });
    mkdirSync(two, { recursive: true });
    const locks = [
      acquireInstanceLock(one, "alice"),
      acquireInstanceLock(one, "bob"),
      acquireInstanceLock(two, "alice"),
    ];
    assert.equal(new Set(locks.map((l) => l.path)).size, 3);
    for (const lock of locks) lock.release();
  });
});
