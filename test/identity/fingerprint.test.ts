import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { keyId } from "../../src/crypto/ed25519.ts";
import { fingerprint, fingerprintHex, shortFingerprint } from "../../src/identity/fingerprint.ts";

const publicKey = new Uint8Array(
  Buffer.from("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "hex"),
);

describe("fingerprint", () => {
  it("is SHA-256 of the Ed25519 key in 16 groups of 4 hex digits", () => {
    const print = fingerprint(publicKey);
    assert.match(print, /^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);
    assert.equal(print.replaceAll(" ", ""), fingerprintHex(publicKey));
  });

  it("short form is the first 4 groups, which spell the engine's key id", () => {
    const short = shortFingerprint(publicKey);
    assert.match(short, /^([0-9a-f]{4} ){3}[0-9a-f]{4}$/);
    assert.equal(short.replaceAll(" ", ""), keyId(publicKey));
    assert.ok(fingerprint(publicKey).startsWith(short));
  });
});
