import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { COUNTER_MAX, SessionCipher, TAG_BYTES } from "../../src/session/transport.ts";

const key = () => crypto.getRandomValues(new Uint8Array(32));
const text = (s: string) => new TextEncoder().encode(s);

describe("the session cipher", () => {
  test("opens what it sealed under the same counter and additional data, in any order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: COUNTER_MAX }), fc.uint8Array({ maxLength: 300 })), {
          minLength: 1,
          maxLength: 20,
        }),
        fc.uint8Array({ maxLength: 24 }),
        (items, ad) => {
          const k = key();
          const sender = new SessionCipher(k);
          const receiver = new SessionCipher(k);
          const sealed = items.map(([counter, plaintext]) => ({
            counter,
            plaintext,
            bytes: sender.seal(counter, plaintext, ad),
          }));
          for (const s of sealed.reverse()) {
            assert.equal(s.bytes.length, s.plaintext.length + TAG_BYTES);
            assert.deepEqual(receiver.open(s.counter, s.bytes, ad), s.plaintext);
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  test("refuses another counter, other additional data, another key, a changed byte or a short datagram", () => {
    const k = key();
    const cipher = new SessionCipher(k);
    const sealed = cipher.seal(7, text("hello"), text("header"));
    assert.equal(cipher.open(8, sealed, text("header")), undefined);
    assert.equal(cipher.open(7, sealed, text("headex")), undefined);
    assert.equal(cipher.open(7, sealed), undefined);
    assert.equal(new SessionCipher(key()).open(7, sealed, text("header")), undefined);
    for (let i = 0; i < sealed.length; i++) {
      const bad = Uint8Array.from(sealed);
      bad[i] = (bad[i] as number) ^ 1;
      assert.equal(cipher.open(7, bad, text("header")), undefined, `byte ${i}`);
    }
    assert.equal(cipher.open(7, sealed.subarray(0, TAG_BYTES - 1), text("header")), undefined);
    assert.equal(cipher.open(-1, sealed, text("header")), undefined);
    assert.equal(cipher.open(COUNTER_MAX + 1, sealed, text("header")), undefined);
    assert.equal(cipher.open(1.5, sealed, text("header")), undefined);
    assert.deepEqual(cipher.open(7, sealed, text("header")), text("hello"));
  });

  test("the ciphertext shows nothing of the text, and one text under two counters seals differently", () => {
    const cipher = new SessionCipher(key());
    const words = text("plain words here, plain words everywhere");
    const a = cipher.seal(1, words);
    const b = cipher.seal(2, words);
    assert.ok(!Buffer.from(a).includes(Buffer.from("words")));
    let same = 0;
    for (let i = 0; i < words.length; i++) if (a[i] === b[i]) same++;
    assert.ok(same < 8, `${same} of ${words.length} bytes equal under two counters`);
  });

  test("an erased cipher refuses to seal or open, and counters out of range are programming errors", () => {
    const cipher = new SessionCipher(key());
    assert.throws(() => cipher.seal(COUNTER_MAX + 1, text("x")), RangeError);
    assert.throws(() => cipher.seal(-1, text("x")), RangeError);
    assert.throws(() => new SessionCipher(new Uint8Array(16)), RangeError);
    cipher.erase();
    assert.ok(cipher.erased);
    assert.throws(() => cipher.seal(0, text("x")), /erased/);
    assert.throws(() => cipher.open(0, new Uint8Array(32)), /erased/);
    cipher.erase();
  });

  test("the key it was given is copied: zeroing the caller's buffer changes nothing", () => {
    const k = key();
    const sender = new SessionCipher(k);
    const receiver = new SessionCipher(k);
    k.fill(0);
    assert.deepEqual(receiver.open(0, sender.seal(0, text("still keyed"))), text("still keyed"));
  });
});
