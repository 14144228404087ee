import { createRequire } from "node:module";
import type Sodium from "sodium-native";
import { CryptoLibraryError } from "./errors.ts";

let loaded: typeof Sodium | undefined;

/**
 * libsodium (sodium-native), loaded with `require` on first use. `require` because an ES import of this CommonJS
 * addon goes through Node's CommonJS translation, which takes longer (bench/README.md). On first use because the `chatnode` bin
 * imports modules that use it (key file → keys → Ed25519) before it starts the scrypt key unlock: loaded at the first
 * signature check instead (reading the users' directory), it loads while scrypt runs on the thread pool.
 */
export function sodium(): typeof Sodium {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)("sodium-native") as typeof Sodium;
  } catch (cause) {
    const reason = (cause instanceof Error ? cause.message : String(cause)).split("\n")[0];
    throw new CryptoLibraryError(
      `libsodium could not be loaded (${reason}). ChatNode needs it for Ed25519 and X25519: run \`npm ci\` again, or ` +
        `use a platform the sodium-native package has a build for (Linux, macOS or Windows on x64 or arm64)`,
      { cause },
    );
  }
  return loaded;
}
