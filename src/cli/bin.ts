#!/usr/bin/env node
/**
 * The `chatnode` executable (built to dist/cli/main.js). It starts the key unlock the command line asks for
 * (scrypt, most of a chat's start-up) before it loads the program itself (src/cli/main.ts), which then loads while
 * scrypt runs on another thread. In dist/ the program is a separate chunk, so this file is all that runs first.
 */
import { startLoginAhead } from "./login-ahead.ts";

startLoginAhead(process.argv.slice(2), process.env);
await import("./main.ts");
