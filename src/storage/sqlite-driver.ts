import { createRequire } from "node:module";
import type Database from "better-sqlite3";

/**
 * How long a statement waits for another process's lock before failing with `DB_LOCKED`. better-sqlite3 is
 * synchronous, so the wait blocks the event loop: keep it short. Only a second process on the same data
 * directory (a misconfiguration) ever contends.
 */
export const BUSY_TIMEOUT_MS = 2000;

/**
 * The driver, loaded on the first open rather than with this module: a start opens the database while scrypt
 * unlocks the keys on the thread pool (src/node/open-node.ts), so loading the native addon then costs no time.
 */
let driver: typeof Database | undefined;
export function sqlite(): typeof Database {
  driver ??= createRequire(import.meta.url)("better-sqlite3") as typeof Database;
  return driver;
}

/** Where the driver is, for the checkpoint worker's require(). */
export function driverPath(): string {
  return createRequire(import.meta.url).resolve("better-sqlite3");
}
