/**
 * `--password-file <path>`: the password from a file, or with `-` from the first line of stdin, so that it never
 * has to sit in argv (`ps` shows it to every local user) or the environment (/proc/<pid>/environ, for the node's
 * whole life). Exactly one trailing newline (\n or \r\n) is stripped: anything else may be part of the password.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { UsageError } from "./errors.ts";

/** A password is short; a bigger file is the wrong file (a key file, a log), not a password. */
export const PASSWORD_FILE_MAX_BYTES = 1024;

export function stripOneNewline(text: string): string {
  if (text.endsWith("\r\n")) return text.slice(0, -2);
  if (text.endsWith("\n")) return text.slice(0, -1);
  return text;
}

/**
 * Reads the password in `path`. Throws UsageError (one line, exit 2) when the file is missing, unreadable, empty or
 * larger than PASSWORD_FILE_MAX_BYTES; calls `warn` when group or others may read it.
 */
export function readPasswordFile(path: string, warn: (line: string) => void): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code;
    throw new UsageError(`cannot read --password-file ${path}: ${why}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new UsageError(`--password-file ${path} is not a file`);
    if (stat.size > PASSWORD_FILE_MAX_BYTES)
      throw new UsageError(
        `--password-file ${path} is ${stat.size} bytes; a password file holds one line of at most ${PASSWORD_FILE_MAX_BYTES} bytes`,
      );
    if ((stat.mode & 0o077) !== 0)
      warn(
        `warning: --password-file ${path} can be read by other users (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 ${path}`,
      );
    const buffer = Buffer.alloc(PASSWORD_FILE_MAX_BYTES + 1);
    let length = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buffer, length, buffer.length - length, null);
      } catch (error) {
        throw new UsageError(
          `cannot read --password-file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        );
      }
      if (n === 0) break;
      length += n;
      if (length > PASSWORD_FILE_MAX_BYTES)
        throw new UsageError(`--password-file ${path} is larger than ${PASSWORD_FILE_MAX_BYTES} bytes`);
    }
    const password = stripOneNewline(buffer.subarray(0, length).toString("utf8"));
    if (password === "") throw new UsageError(`--password-file ${path} is empty`);
    return password;
  } finally {
    closeSync(fd);
  }
}

/**
 * The first line of `input` (`--password-file -`), reading no further: whatever follows the newline is put back on
 * the stream for the client (the interactive prompt's lines, or the commands of --json). Without a newline, all of
 * the input is the password. Like a file, the line holds at most PASSWORD_FILE_MAX_BYTES bytes, its newline included.
 */
export function readPasswordLine(input: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let held = Buffer.alloc(0);
    const finish = (error: Error | undefined, line?: Buffer, rest?: Buffer) => {
      input.off("readable", onReadable);
      input.off("end", onEnd);
      input.off("error", onError);
      if (rest && rest.length > 0) input.unshift(rest);
      if (error) return reject(error);
      const password = stripOneNewline((line as Buffer).toString("utf8"));
      if (password === "") reject(new UsageError("--password-file -: the first line of stdin is empty"));
      else resolve(password);
    };
    const tooLong = () =>
      new UsageError(
        `--password-file -: the first line of stdin is longer than ${PASSWORD_FILE_MAX_BYTES} bytes`,
      );
    const onReadable = () => {
      for (;;) {
        const chunk = input.read() as Buffer | string | null;
        if (chunk === null) return;
        held = Buffer.concat([held, typeof chunk === "string" ? Buffer.from(chunk) : chunk]);
        const newline = held.indexOf(0x0a);
        if (newline >= 0) {
          if (newline + 1 > PASSWORD_FILE_MAX_BYTES) return finish(tooLong());
          return finish(undefined, held.subarray(0, newline + 1), held.subarray(newline + 1));
        }
        if (held.length > PASSWORD_FILE_MAX_BYTES) return finish(tooLong());
      }
    };
    const onEnd = () => finish(undefined, held);
    const onError = (error: Error) => finish(new UsageError(`--password-file -: ${error.message}`));
    input.on("readable", onReadable);
    input.on("end", onEnd);
    input.on("error", onError);
  });
}
