import { createRequire } from "node:module";
import type Sodium from "sodium-native";

let loaded: typeof Sodium | undefined;

/**
 * libsodium (sodium-native), loaded on first use rather than at import. Loading the addon takes ~14 ms, and the
 * `chatnode` bin starts its scrypt key unlock from modules that import this one (key file → keys → Ed25519): loaded
 * lazily, the addon loads while scrypt runs on the thread pool instead of before it starts.
 */
export function sodium(): typeof Sodium {
  loaded ??= createRequire(import.meta.url)("sodium-native") as typeof Sodium;
  return loaded;
}
