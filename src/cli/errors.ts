/** A mistake of the person running the command: printed as one line, exit code 2 (130 when they cancelled). */
export class UsageError extends Error {
  override readonly name = "UsageError";
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}
