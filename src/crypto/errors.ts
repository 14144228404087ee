/** Why a key file could not be used. Each code has its own remedy, so callers switch on it. */
export type KeyFileErrorCode =
  /** The password does not open this key file (the file itself is intact). */
  | "WRONG_PASSWORD"
  /** The file is unreadable, malformed, altered, or inconsistent with its own public keys. */
  | "DAMAGED"
  /** There is no key file at that path. */
  | "NOT_FOUND";

export class KeyFileError extends Error {
  override readonly name = "KeyFileError";

  constructor(
    readonly code: KeyFileErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

/** libsodium (the sodium-native addon) is missing or has no build for this platform: nothing can sign or verify. */
export class CryptoLibraryError extends Error {
  override readonly name = "CryptoLibraryError";
}
