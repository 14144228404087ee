import assert from "node:assert/strict";
import { createHmac, hkdfSync } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ed25519Signer } from "../../src/crypto/ed25519.ts";
import { deriveMacKeys, MAC_KEY_BYTES, macKey, macTag, verifyMacTag } from "../../src/crypto/mac.ts";
import { X25519PrivateKey, X25519PublicKey } from "../../src/crypto/x25519.ts";

function party(fill: number) {
  const ed25519 = ed25519Signer(new Uint8Array(32).fill(fill)).publicKey;
  const x25519 = X25519PrivateKey.fromRaw(new Uint8Array(32).fill(fill + 100));
  const x25519Public = X25519PublicKey.fromRaw(x25519.publicKey);
  assert.ok(x25519Public);
  return { ed25519, x25519, x25519Public };
}

const alice = party(1);
const bob = party(2);
const carol = party(3);
const aliceKeys = deriveMacKeys(alice, { ed25519: bob.ed25519, x25519: bob.x25519Public });
const bobKeys = deriveMacKeys(bob, { ed25519: alice.ed25519, x25519: alice.x25519Public });
assert.ok(aliceKeys && bobKeys);
const packet = new TextEncoder().encode("ACK 42");

describe("mac: per-direction keys", () => {
  it("A's send key is B's receive key and the other way round", () => {
    assert.deepEqual(aliceKeys.send, bobKeys.receive);
    assert.deepEqual(bobKeys.send, aliceKeys.receive);
    assert.notDeepEqual(aliceKeys.send, aliceKeys.receive);
  });

  it("a tag by A for B verifies at B", () => {
    const tag = macTag(aliceKeys.send, packet);
    assert.equal(tag.length, 16);
    assert.equal(verifyMacTag(bobKeys.receive, packet, tag), true);
  });

  it("a reflected packet fails: A's tag for A→B does not verify as B→A", () => {
    const tag = macTag(aliceKeys.send, packet);
    // Reflected back to A, it is checked as if B had sent it.
    assert.equal(verifyMacTag(aliceKeys.receive, packet, tag), false);
  });

  it("a third party's keys do not verify A's tag", () => {
    const carolKeys = deriveMacKeys(carol, { ed25519: alice.ed25519, x25519: alice.x25519Public });
    assert.ok(carolKeys);
    assert.equal(verifyMacTag(carolKeys.receive, packet, macTag(aliceKeys.send, packet)), false);
  });

  it("a flipped bit in the bytes or the tag fails, and truncated tags fail (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.nat(), (bytes, seed) => {
        const tag = macTag(aliceKeys.send, bytes);
        const bit = seed % (bytes.length * 8);
        const altered = new Uint8Array(bytes);
        altered[bit >>> 3] = (altered[bit >>> 3] ?? 0) ^ (1 << (bit & 7));
        const badTag = new Uint8Array(tag);
        badTag[seed % 16] = (badTag[seed % 16] ?? 0) ^ 1;
        return (
          verifyMacTag(bobKeys.receive, bytes, tag) &&
          !verifyMacTag(bobKeys.receive, altered, tag) &&
          !verifyMacTag(bobKeys.receive, bytes, badTag) &&
          !verifyMacTag(bobKeys.receive, bytes, tag.subarray(0, 15))
        );
      }),
      { numRuns: 200 },
    );
  });

  it("no keys from a low-order peer key", () => {
    const lowOrder = X25519PublicKey.fromRaw(new Uint8Array(32));
    assert.ok(lowOrder);
    assert.equal(deriveMacKeys(alice, { ed25519: bob.ed25519, x25519: lowOrder }), undefined);
  });
});

describe("mac: the documented derivation, checked with node:crypto's HKDF", () => {
  it("key(sender → recipient) = HKDF-SHA256(DH, salt 'chatnode v1', info 'chatnode v1 mac' ‖ sender ‖ recipient)", () => {
    const dh = alice.x25519.dh(bob.x25519Public);
    assert.ok(dh);
    const expectedKey = (sender: Uint8Array, recipient: Uint8Array) =>
      new Uint8Array(
        hkdfSync(
          "sha256",
          dh,
          "chatnode v1",
          Buffer.concat([Buffer.from("chatnode v1 mac"), sender, recipient]),
          32,
        ),
      );
    assert.deepEqual(macKey(dh, alice.ed25519, bob.ed25519), expectedKey(alice.ed25519, bob.ed25519));
    assert.deepEqual(aliceKeys.send, expectedKey(alice.ed25519, bob.ed25519));
    assert.deepEqual(aliceKeys.receive, expectedKey(bob.ed25519, alice.ed25519));
    assert.equal(MAC_KEY_BYTES, 32);
  });

  it("the tag is HMAC-SHA256 truncated to its first 16 bytes", () => {
    const full = createHmac("sha256", aliceKeys.send).update(packet).digest();
    assert.deepEqual(macTag(aliceKeys.send, packet), new Uint8Array(full.subarray(0, 16)));
  });

  it("a tag of any other length is refused, the full 32-byte HMAC and its 17-byte prefix included", () => {
    const full = new Uint8Array(createHmac("sha256", aliceKeys.send).update(packet).digest());
    for (const tag of [full, full.subarray(0, 17), full.subarray(0, 15), new Uint8Array(0)]) {
      assert.equal(verifyMacTag(bobKeys.receive, packet, tag), false, `${tag.length} bytes`);
    }
    assert.equal(verifyMacTag(bobKeys.receive, packet, full.subarray(0, 16)), true);
    assert.equal(verifyMacTag(bobKeys.receive, packet, new Uint8Array(16)), false, "all zero");
  });
});
