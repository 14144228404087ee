/**
 * A key unlock started before the code that needs it has even loaded. scrypt is most of a start (on libuv's
 * thread pool; bench/README.md, "Costs"); the CLI's entry point starts it from the command line while the rest of the program (its
 * bundle, commander, the runtime) loads, and login() takes it over if it unlocks exactly the key file, user and
 * password that login() itself would. Anything else is ignored: a guess that was wrong costs one scrypt on another
 * thread, never a wrong answer.
 */
import { readKeyFile, type UnlockedKeyFile } from "../crypto/keyfile.ts";

interface Ahead {
  readonly keyPath: string;
  readonly username: string;
  readonly password: string;
  readonly unlocking: Promise<UnlockedKeyFile>;
}

let ahead: Ahead | undefined;

/** Starts unlocking `keyPath`; a later takeUnlockAhead with the same three values gets the result. */
export function unlockAhead(keyPath: string, username: string, password: string): void {
  const unlocking = readKeyFile(keyPath, { username, password });
  unlocking.catch(() => {}); // a wrong password is reported by login(), if it takes this over, and nowhere else
  ahead = { keyPath, username, password, unlocking };
}

/** The unlock started ahead, if it was for exactly these values; it is handed out once, then forgotten. */
export function takeUnlockAhead(
  keyPath: string,
  username: string,
  password: string,
): Promise<UnlockedKeyFile> | undefined {
  const found = ahead;
  ahead = undefined; // at most one login a process takes it over, and the password is not kept around
  if (!found || found.keyPath !== keyPath || found.username !== username || found.password !== password)
    return undefined;
  return found.unlocking;
}
