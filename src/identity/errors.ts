/** Why an identity operation failed. The CLI prints the message; code lets callers (and tests) tell cases apart. */
export type IdentityErrorCode =
  /** A name, port, host, key or contact card is malformed. */
  | "INVALID"
  /** No local user by that name (not in the directory, or only a contact without a key file). */
  | "UNKNOWN_USER"
  /** The password does not open the user's key file. */
  | "WRONG_PASSWORD"
  /** users.json or a key file is unreadable, malformed, altered or inconsistent. */
  | "DAMAGED"
  /** Registering a name that already exists, without force. */
  | "USER_EXISTS"
  /** A contact's name is pinned to other keys (both fingerprints are in the message). */
  | "KEY_MISMATCH"
  /** The same keys are already filed under another name. */
  | "DUPLICATE_KEY"
  /** Another local user (one with a key file here) already has that host:port. */
  | "ADDRESS_TAKEN";

export class IdentityError extends Error {
  override readonly name = "IdentityError";

  constructor(
    readonly code: IdentityErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Raised when a contact's name is pinned to different keys; carries both fingerprints for the user to compare. */
export class KeyMismatchError extends IdentityError {
  constructor(
    readonly username: string,
    readonly pinnedFingerprint: string,
    readonly offeredFingerprint: string,
  ) {
    super(
      "KEY_MISMATCH",
      `${username} is already known with different keys: pinned fingerprint ${pinnedFingerprint}, ` +
        `offered fingerprint ${offeredFingerprint}. Check with ${username} out of band; pass --force to replace the pinned keys`,
    );
  }
}
