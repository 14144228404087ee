export type ChatNodeErrorCode =
  | "PORT_IN_USE"
  | "BIND_FAILED"
  | "UNKNOWN_PEER"
  | "NOT_RUNNING"
  | "BAD_ADDRESS"
  /** The user already runs a node on this data directory (src/node/instance-lock.ts). */
  | "ALREADY_RUNNING";

/** A runtime error with a code and a message a user can read. */
export class ChatNodeError extends Error {
  constructor(
    readonly code: ChatNodeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ChatNodeError";
  }
}
