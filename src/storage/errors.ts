/**
 * Why a store refused. The `code` is for code to branch on; the message is one line for a user to read and always
 * names the database file when one is involved.
 */
export type StoreErrorCode =
  /** The file is not an SQLite database, or `PRAGMA quick_check` found it corrupt. */
  | "DB_DAMAGED"
  /** The database's schema version is newer than this code knows: a newer ChatNode wrote it. */
  | "DB_TOO_NEW"
  /** Another process held the database past the busy timeout. */
  | "DB_LOCKED"
  /** The file or its directory could not be created or opened (permissions, a directory in the way...). */
  | "DB_UNAVAILABLE"
  /** `addOutgoing` with a msgId that is already stored. */
  | "DUPLICATE_MSG_ID"
  /** `addOutgoing` naming the same recipient twice. */
  | "DUPLICATE_RECIPIENT"
  /** The store was used after `close()`. */
  | "CLOSED";

export class StoreError extends Error {
  override readonly name = "StoreError";
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export function isStoreError(error: unknown, code?: StoreErrorCode): error is StoreError {
  return error instanceof StoreError && (code === undefined || error.code === code);
}
