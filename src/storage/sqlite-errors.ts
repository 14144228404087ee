import type Database from "better-sqlite3";
import { StoreError } from "./errors.ts";
import { sqlite } from "./sqlite-driver.ts";

export function closed(path: string, cause?: unknown): StoreError {
  return new StoreError("CLOSED", `${path} was used after close`, { cause });
}

export function damaged(path: string, detail: string, cause?: unknown): StoreError {
  return new StoreError(
    "DB_DAMAGED",
    `${path} is damaged or not a ChatNode database (${oneLine(detail)}); move it aside or restore it from a backup`,
    { cause },
  );
}

/** Turns SQLite's errors into `StoreError`s a caller can act on; anything else (the caller's own errors) passes. */
export function translate(error: unknown, path: string, db?: Database.Database): unknown {
  if (error instanceof StoreError) return error;
  // better-sqlite3 throws a plain TypeError when used after close.
  if (db !== undefined && !db.open) return closed(path, error);
  if (!(error instanceof sqlite().SqliteError)) return error;
  const code = error.code;
  if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) {
    return damaged(path, error.message, error);
  }
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new StoreError(
      "DB_LOCKED",
      `${path} is locked by another process (is another ChatNode using this data directory?)`,
      { cause: error },
    );
  }
  if (
    code.startsWith("SQLITE_CANTOPEN") ||
    code.startsWith("SQLITE_PERM") ||
    code.startsWith("SQLITE_READONLY")
  ) {
    return new StoreError("DB_UNAVAILABLE", `cannot open ${path}: ${oneLine(error.message)}`, {
      cause: error,
    });
  }
  return error;
}

export function messageOf(error: unknown): string {
  return oneLine(error instanceof Error ? error.message : String(error));
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
