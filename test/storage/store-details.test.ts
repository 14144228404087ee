/**
 * More of the store contract, for the memory store and both kinds of SQLite store: what errors say, and which
 * values a transaction may return.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { isStoreError } from "../../src/storage/errors.ts";
import { createMemoryStore } from "../../src/storage/memory.ts";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import type { Store } from "../../src/storage/store.ts";
import { msg, outgoing, peer } from "./store-contract.ts";

const dir = mkdtempSync(join(tmpdir(), "chatnode-store-details-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

const STORES: [string, () => Store, string | undefined][] = [
  ["memory", createMemoryStore, "memory"],
  ["sqlite file", () => openSqliteStore(join(dir, `details-${++files}.db`)), undefined],
  ["sqlite :memory:", () => openSqliteStore(":memory:"), ":memory:"],
];

const ALICE = peer(0xa);
const BOB = peer(0xb);

for (const [name, open, location] of STORES) {
  describe(`Store contract details: ${name}`, () => {
    it("says where it lives, and the CLOSED error names that place", () => {
      const store = open();
      if (location !== undefined) assert.equal(store.location, location);
      assert.ok(store.location.length > 0);
      store.close();
      assert.throws(
        () => store.setMeta("k", "v"),
        (e) => isStoreError(e, "CLOSED") && e.message.includes(store.location),
      );
    });

    it("a refused message's error names the message, and the recipient named twice", () => {
      const store = open();
      try {
        store.addOutgoing(outgoing(1, [ALICE]));
        assert.throws(
          () => store.addOutgoing(outgoing(1, [BOB])),
          (e) => isStoreError(e, "DUPLICATE_MSG_ID") && e.message.includes(msg(1)),
        );
        assert.throws(
          () => store.addOutgoing(outgoing(2, [ALICE, BOB, BOB])),
          (e) =>
            isStoreError(e, "DUPLICATE_RECIPIENT") && e.message.includes(msg(2)) && e.message.includes(BOB),
        );
      } finally {
        store.close();
      }
    });

    it("a transaction may return an object with a then that is not a function; a promise it refuses", () => {
      const store = open();
      try {
        // biome-ignore lint/suspicious/noThenProperty: a then that is not a function is the point
        const value = { then: 1 };
        assert.equal(
          store.transaction(() => {
            store.setMeta("k", "v");
            return value;
          }),
          value,
        );
        assert.equal(store.getMeta("k"), "v");
        assert.throws(
          () => store.transaction(() => Promise.resolve(store.setMeta("k", "w"))),
          (e) => e instanceof TypeError && /promise/.test(e.message),
        );
        assert.equal(store.getMeta("k"), "v");
      } finally {
        store.close();
      }
    });
  });
}
