/**
 * One running node per user and data directory: `<dataDir>/run/<user>.lock` names the process that runs the user
 * ({pid, address, startedAt}). Two nodes of one user would share its database and its address, and each peer's
 * messages would reach only one of them.
 *
 * The lock is taken with link(2) of a fully written temporary file, which fails if the lock exists (like an
 * exclusive open, but a reader never sees a half-written file). A lock whose process is gone (kill -9, a crash, a
 * power cut) is stale and taken over; so is an unreadable one: a lock must never keep a user from starting. Its
 * process counts as gone when `kill(pid, 0)` says so, or when /proc says that pid now belongs to a process started
 * at another time (the pid was reused after a reboot or a long time).
 *
 * Within one process the lock is re-entrant (counted): the harm is between processes, and a program that embeds
 * ChatNode (the tests, the scenario harness) may open the same user again before the first node is closed.
 */
import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ChatNodeError } from "./errors.ts";

/** What a lock file holds. */
export interface LockInfo {
  pid: number;
  /** host:port once the node listens; absent while it starts. */
  address?: string;
  /** ms since the epoch. */
  startedAt: number;
  /** The process's start time from /proc/<pid>/stat (clock ticks since boot), against pid reuse; Linux only. */
  processStart?: string;
  /** Tells this lock from a later one of the same process (released only by the handle that wrote it). */
  token: string;
}

/** How the lock module looks at other processes; tests replace it. */
export interface ProcessProbe {
  /** Whether a process with this pid exists (including one of another user: EPERM). */
  exists(pid: number): boolean;
  /** Its start time, when the system says (Linux /proc), else undefined. */
  startTime(pid: number): string | undefined;
}

export const systemProbe: ProcessProbe = {
  exists(pid) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "EPERM";
    }
  },
  startTime(pid) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // The command name (field 2) is in parentheses and may contain spaces: count fields after the last ")".
      // starttime is field 22, the 20th after it.
      return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    } catch {
      return undefined;
    }
  },
};

export function lockPath(dataDir: string, username: string): string {
  return join(dataDir, "run", `${username}.lock`);
}

/** Reads a lock file: undefined if there is none, "damaged" if it is not a lock this module wrote. */
export function readLock(path: string): { info: LockInfo | "damaged"; raw: string } | undefined {
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return { info: "damaged", raw: "" };
  }
  try {
    const json = JSON.parse(raw) as Partial<LockInfo> | null;
    if (
      typeof json === "object" &&
      json !== null &&
      Number.isSafeInteger(json.pid) &&
      (json.pid as number) > 0 &&
      typeof json.token === "string"
    )
      return { info: json as LockInfo, raw };
  } catch {}
  return { info: "damaged", raw };
}

/** Whether the process a lock names still runs (the same process, not a later one with its pid). */
export function isLive(info: LockInfo, probe: ProcessProbe): boolean {
  if (!probe.exists(info.pid)) return false;
  if (info.processStart === undefined) return true;
  const now = probe.startTime(info.pid);
  return now === undefined || now === info.processStart;
}

/** The line a second start prints, naming the running node. */
export function alreadyRunningMessage(username: string, info: LockInfo): string {
  return (
    `${username} is already running (pid ${info.pid}, ${info.address ?? "starting"}); ` +
    "quit it first, or use another --data-dir"
  );
}

interface Held {
  count: number;
  info: LockInfo;
}

/** The locks this process holds, by path: re-entrancy, and removal at exit. */
const held = new Map<string, Held>();
let exitHookInstalled = false;

export interface InstanceLock {
  readonly path: string;
  /** Records the address the node listens on, for the message a second start prints. */
  setAddress(address: string): void;
  /** Gives the lock up (once; later calls do nothing). The file goes when the process's last holder releases it. */
  release(): void;
}

/**
 * Takes `username`'s lock in `dataDir`. Throws ChatNodeError ALREADY_RUNNING, naming the holder, if another live
 * process has it.
 */
export function acquireInstanceLock(
  dataDir: string,
  username: string,
  probe: ProcessProbe = systemProbe,
): InstanceLock {
  const path = lockPath(dataDir, username);
  let mine = held.get(path);
  if (mine) {
    mine.count++;
  } else {
    mkdirSync(join(dataDir, "run"), { recursive: true, mode: 0o700 });
    const info: LockInfo = {
      pid: process.pid,
      startedAt: Date.now(),
      token: randomBytes(8).toString("hex"),
    };
    const start = probe.startTime(process.pid);
    if (start !== undefined) info.processStart = start;
    takeFile(path, username, info, probe);
    mine = { count: 1, info };
    held.set(path, mine);
    installExitHook();
  }
  const entry = mine;
  let released = false;
  return {
    path,
    setAddress(address) {
      if (released || held.get(path) !== entry) return;
      entry.info.address = address;
      // The holder owns the file: replacing it by rename keeps it whole for readers.
      writeAtomically(path, entry.info);
    },
    release() {
      if (released) return;
      released = true;
      entry.count--;
      if (entry.count > 0 || held.get(path) !== entry) return;
      held.delete(path);
      removeIfOurs(path, entry.info);
    },
  };
}

/** Creates the lock file, taking over a stale one; a few rounds, in case another process races for it. */
function takeFile(path: string, username: string, info: LockInfo, probe: ProcessProbe): void {
  const temporary = `${path}.${process.pid}.${info.token}.tmp`;
  writeFileSync(temporary, JSON.stringify(info), { mode: 0o600, flag: "wx" });
  try {
    for (let round = 0; round < 5; round++) {
      try {
        linkSync(temporary, path);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const current = readLock(path);
      if (current === undefined) continue; // released meanwhile: try again
      // Unreadable, of a dead process, or of this very process but not held by it (so left by an earlier process
      // that had the same pid): stale.
      const holder = current.info;
      if (holder !== "damaged" && holder.pid !== process.pid && isLive(holder, probe))
        throw new ChatNodeError("ALREADY_RUNNING", alreadyRunningMessage(username, holder));
      takeOverStale(path, current.raw);
    }
  } finally {
    rmSync(temporary, { force: true });
  }
  throw new ChatNodeError(
    "ALREADY_RUNNING",
    `${username} is being started by another process right now (${path}); try again`,
  );
}

/**
 * Removes a stale lock without removing a fresh one another process put there after we read the stale one:
 * move it aside, and put it back if it is not the one we judged.
 */
function takeOverStale(path: string, staleRaw: string): void {
  const aside = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.stale`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  let raw: string | undefined;
  try {
    raw = readFileSync(aside, "utf8");
  } catch {}
  if (raw !== undefined && raw !== staleRaw) {
    try {
      linkSync(aside, path); // someone else's fresh lock: restore it (fails only if a third took the place)
    } catch {}
  }
  rmSync(aside, { force: true });
}

function writeAtomically(path: string, info: LockInfo): void {
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    writeFileSync(temporary, JSON.stringify(info), { mode: 0o600, flag: "wx" });
    renameSync(temporary, path);
  } catch {
    // Only the message of a second start loses the address; the lock itself still stands.
    rmSync(temporary, { force: true });
  }
}

/** Removes the lock file if it is still the one this holder wrote. */
function removeIfOurs(path: string, info: LockInfo): void {
  const current = readLock(path);
  if (current === undefined || current.info === "damaged" || current.info.token !== info.token) return;
  rmSync(path, { force: true });
}

/** A normal exit (process.exit included) releases what is still held; kill -9 leaves a stale lock, taken over later. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const [path, entry] of held) removeIfOurs(path, entry.info);
    held.clear();
  });
}
