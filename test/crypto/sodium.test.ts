import assert from "node:assert/strict";
import Module, { createRequire } from "node:module";
import { describe, it } from "node:test";
import { CryptoLibraryError } from "../../src/crypto/errors.ts";
import { sodium } from "../../src/crypto/sodium.ts";

/**
 * sodium() loads the addon with `require` on first use. To see what happens when that fails, CommonJS's loader is
 * wrapped for the one request "sodium-native". This file imports nothing else that loads libsodium, so the first
 * call below is the first load of this process (node --test runs each file in a process of its own).
 */

type Load = (request: string, parent: unknown, isMain: boolean) => unknown;
const loader = Module as unknown as { _load: Load };

function refusingSodium<T>(failure: unknown, body: () => T): T {
  const original = loader._load;
  loader._load = function (this: unknown, request, parent, isMain) {
    if (request === "sodium-native") throw failure;
    return original.call(this, request, parent, isMain);
  };
  try {
    return body();
  } finally {
    loader._load = original;
  }
}

function catchError(body: () => unknown): unknown {
  try {
    body();
  } catch (error) {
    return error;
  }
  assert.fail("expected a throw");
}

describe("sodium: loading libsodium", () => {
  it("a failed load is a CryptoLibraryError with the first line of the reason, the remedy and the cause", () => {
    const cause = new Error("No native build was found for platform=plan9\n    loaded from: /somewhere");
    const error = refusingSodium(cause, () => catchError(sodium));
    assert.ok(error instanceof CryptoLibraryError);
    assert.equal(
      error.message,
      "libsodium could not be loaded (No native build was found for platform=plan9). ChatNode needs it for Ed25519 " +
        "and X25519: run `npm ci` again, or use a platform the sodium-native package has a build for (Linux, macOS " +
        "or Windows on x64 or arm64)",
    );
    assert.equal(error.cause, cause);
  });

  it("a thrown non-Error is reported by its string form", () => {
    const error = refusingSodium("addon missing\nsecond line", () => catchError(sodium));
    assert.ok(error instanceof CryptoLibraryError);
    assert.match(error.message, /^libsodium could not be loaded \(addon missing\)\. /);
  });

  it("once loaded, it is the sodium-native module, and later calls do not load it again", () => {
    const loaded = sodium();
    assert.equal(loaded, createRequire(import.meta.url)("sodium-native"));
    assert.equal(typeof loaded.crypto_sign_verify_detached, "function");
    // A later failure of the loader no longer matters: the module is kept.
    assert.equal(
      refusingSodium(new Error("gone"), () => sodium()),
      loaded,
    );
  });
});
