#!/usr/bin/env node
/**
 * The `chatnode` executable (built to dist/cli/main.js). It starts the key unlock the command line asks for
 * (scrypt, most of a chat's start-up) before it loads the program itself (src/cli/main.ts), which then loads while
 * scrypt runs on another thread. In dist/ the program is a separate chunk, so this file is all that runs first.
 */
import { startLoginAhead } from "./login-ahead.ts";

startLoginAhead(process.argv.slice(2), process.env);
try {
  await import("./main.ts");
} catch (error) {
  // The program did not load: a native addon it imports (SQLite) missing or without a build for this platform.
  // main.ts reports every later failure itself, libsodium's included (it loads on first use).
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`chatnode: ${message.split("\n")[0]}\n`);
  if (process.env.CHATNODE_DEBUG && error instanceof Error && error.stack)
    process.stderr.write(`${error.stack}\n`);
  process.exit(1);
}
