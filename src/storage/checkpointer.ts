/**
 * WAL checkpoints on a worker thread, so that their fsyncs never stall the event loop.
 *
 * With journal_mode = WAL and synchronous = NORMAL a commit is a write() to the -wal file; the fsyncs come only at
 * a checkpoint, which copies the WAL back into the database and syncs both files. SQLite's automatic checkpoint runs
 * inside the commit that crosses 1,000 pages, on the connection that committed: here the event loop, for as long
 * as two fsyncs take. With synchronous = OFF (no fsync at all) as a probe, those stalls proved most of the
 * database's cost and of the latency tail (bench/README.md, "Changes outside bench/", has the figures).
 *
 * So the main connection turns automatic checkpoints off, and a second connection on a worker thread runs a
 * PASSIVE checkpoint (which never blocks the writer, nor waits for it) at most every CHECKPOINT_EVERY_MS while
 * commits keep coming. Durability is unchanged: the same data reaches the same files with the same syncs, only
 * on another thread; a kill -9 loses nothing committed, as before. If the worker cannot start or fails, the main
 * connection gets SQLite's automatic checkpoints back.
 *
 * A WAL starts over from its beginning only when a write finds every frame copied back, which a checkpoint
 * running beside a busy writer never achieves: under sustained load the file would grow without end. So when the
 * worker reports a WAL longer than WAL_FRAMES_MAX, the main connection runs one RESTART checkpoint itself: it
 * copies what the worker has not yet, and makes the next commit write the WAL from its beginning again. The worker
 * has copied almost everything by then, so that stall is mostly the database's fsync, once per WAL_FRAMES_MAX
 * frames (32 MiB of 4 KiB pages) where SQLite's own checkpoint stalls once per 1,000. RESTART, not TRUNCATE:
 * truncating the file to 0 and growing it again stalls longer (bench/README.md has both), for nothing, since the
 * file would grow back to the same size. The caller makes it give up at once rather than wait
 * for a reader in another process; then it is tried again WAL_FRAMES_MAX frames later.
 */
import { Worker } from "node:worker_threads";

/** Checkpoint at most this often while commits keep coming. */
export const CHECKPOINT_EVERY_MS = 200;

/** Frames in the WAL beyond which the main connection restarts it (8,192 frames: 32 MiB at 4 KiB pages). */
export const WAL_FRAMES_MAX = 8192;

/**
 * The worker: plain CommonJS run with `eval`, so that the build needs no extra entry point. It opens the
 * database, then runs a PASSIVE checkpoint for every message and answers with SQLite's result row; "close" ends it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
// fileMustExist: a database moved aside or deleted after its store closed is not created again, empty.
const db = new Database(workerData.path, { timeout: workerData.timeoutMs, fileMustExist: true });
parentPort.on("message", (request) => {
  if (request === "close") {
    db.close();
    parentPort.close();
    return;
  }
  parentPort.postMessage(db.pragma("wal_checkpoint(PASSIVE)")[0]);
});
`;

export interface CheckpointerOptions {
  /** The database file. */
  path: string;
  /** Where better-sqlite3 is, for the worker's require(). */
  driverPath: string;
  busyTimeoutMs: number;
  /** Called once if the worker fails: the caller turns SQLite's automatic checkpoints back on. */
  onFailure: (error: unknown) => void;
  /** Runs a RESTART checkpoint on the caller's connection (the WAL grew past WAL_FRAMES_MAX); false if busy. */
  restart: () => boolean;
  now?: () => number;
}

export interface Checkpointer {
  /** Tells it a transaction was committed. Cheap: a clock read, and now and then a message to the worker. */
  committed(): void;
  /**
   * Ends the worker (after the checkpoint it may be running) without waiting. True if a worker was started: its
   * connection then outlives the caller's, so the caller should leave the WAL empty before it closes.
   */
  close(): boolean;
  /** Checkpoints completed so far (for tests). */
  readonly done: number;
}

export function walCheckpointer(options: CheckpointerOptions): Checkpointer {
  const now = options.now ?? Date.now;
  let worker: Worker | undefined;
  let failed = false;
  let closed = false;
  let running = false;
  let lastAt = now();
  let done = 0;
  let started = false;
  /** A WAL longer than this is truncated by the caller; raised after a truncation found the WAL busy. */
  let restartAbove = WAL_FRAMES_MAX;

  function fail(error: unknown): void {
    if (failed || closed) return;
    failed = true;
    worker?.terminate().catch(() => {});
    worker = undefined;
    options.onFailure(error);
  }

  function start(): Worker | undefined {
    if (worker || failed) return worker;
    try {
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        // Plain CommonJS: none of the parent's loader flags (tsx under the tests), which would only slow its start.
        execArgv: [],
        workerData: { path: options.path, driver: options.driverPath, timeoutMs: options.busyTimeoutMs },
      });
      started = true;
    } catch (error) {
      fail(error);
      return undefined;
    }
    // A node that is done must not wait for its checkpointer. A listener for "message" would hold the process
    // open all the same, so each request listens for its one answer only.
    worker.unref();
    worker.on("error", fail);
    worker.on("exit", (code) => {
      if (!closed) fail(new Error(`the checkpoint worker exited (code ${code})`));
    });
    return worker;
  }

  return {
    committed() {
      if (failed || closed) return;
      if (running || now() - lastAt < CHECKPOINT_EVERY_MS) return;
      const w = start();
      if (!w) return;
      running = true;
      lastAt = now();
      w.once("message", (result: { log?: number }) => {
        running = false;
        done++;
        const frames = result.log ?? 0;
        if (frames <= WAL_FRAMES_MAX) restartAbove = WAL_FRAMES_MAX; // the WAL started over meanwhile
        if (closed || frames <= restartAbove) return;
        restartAbove = options.restart() ? WAL_FRAMES_MAX : frames + WAL_FRAMES_MAX;
      });
      w.postMessage("checkpoint");
    },
    close() {
      if (closed) return started;
      closed = true;
      worker?.postMessage("close");
      worker = undefined;
      return started;
    },
    get done() {
      return done;
    },
  };
}
