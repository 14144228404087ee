/**
 * The storage errors a caller branches on: StoreError and isStoreError, the shared checks' messages, how SQLite's
 * errors are translated (sqlite-errors.ts), and the memory store's undo log.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { assertNotThenable, duplicateMsgId } from "../../src/storage/checks.ts";
import { isStoreError, StoreError } from "../../src/storage/errors.ts";
import { closed, damaged, translate } from "../../src/storage/sqlite-errors.ts";
import { UndoLog } from "../../src/storage/undo-log.ts";
import { msg } from "./store-contract.ts";

const PATH = "/data/chat.db";

function sqliteError(code: string, message = `${code} happened`): InstanceType<typeof Database.SqliteError> {
  return new Database.SqliteError(message, code);
}

describe("storage errors: StoreError and isStoreError", () => {
  it("names itself StoreError and keeps its code, message and cause", () => {
    const cause = new Error("underneath");
    const error = new StoreError("DB_LOCKED", "locked", { cause });
    assert.equal(error.name, "StoreError");
    assert.equal(error.code, "DB_LOCKED");
    assert.equal(error.message, "locked");
    assert.equal(error.cause, cause);
    assert.match(String(error), /^StoreError: locked$/);
  });

  it("isStoreError tells a StoreError from anything else, and one code from another", () => {
    const error = new StoreError("CLOSED", "closed");
    assert.equal(isStoreError(error), true);
    assert.equal(isStoreError(error, "CLOSED"), true);
    assert.equal(isStoreError(error, "DB_LOCKED"), false);
    assert.equal(isStoreError(new Error("closed")), false);
    assert.equal(isStoreError(new Error("closed"), "CLOSED"), false);
    assert.equal(isStoreError({ code: "CLOSED" }, "CLOSED"), false);
    assert.equal(isStoreError(undefined), false);
  });

  it("a duplicate msgId's error names the id", () => {
    const error = duplicateMsgId(msg(7));
    assert.ok(isStoreError(error, "DUPLICATE_MSG_ID"));
    assert.ok(error.message.includes(msg(7)), error.message);
  });

  it("refuses a promise returned by a transaction's work, and nothing else that merely has a then", () => {
    assert.throws(
      () => assertNotThenable(Promise.resolve(1)),
      (e) => e instanceof TypeError && /cannot return a promise/.test(e.message),
    );
    // biome-ignore lint/suspicious/noThenProperty: a thenable that is not a promise is the point
    const thenable = { then: () => {} };
    assert.throws(() => assertNotThenable(thenable), TypeError);
    // biome-ignore lint/suspicious/noThenProperty: a then that is not a function is the point
    const notThenables = [{ then: 1 }, { then: "x" }];
    for (const value of [undefined, null, 0, "then", ...notThenables, () => {}, [1]]) {
      assertNotThenable(value);
    }
  });
});

describe("storage errors: SQLite's errors as StoreErrors", () => {
  it("says CLOSED, naming the file and keeping the cause", () => {
    const cause = new TypeError("The database connection is not open");
    const error = closed(PATH, cause);
    assert.ok(isStoreError(error, "CLOSED"));
    assert.ok(error.message.includes(PATH), error.message);
    assert.equal(error.cause, cause);
  });

  it("says DB_DAMAGED in one trimmed line, whatever whitespace SQLite's detail holds", () => {
    const cause = new Error("x");
    const error = damaged(PATH, "  database disk image\n\tis   malformed \n", cause);
    assert.ok(isStoreError(error, "DB_DAMAGED"));
    assert.ok(error.message.includes(`${PATH} is damaged`), error.message);
    assert.ok(error.message.includes("(database disk image is malformed)"), error.message);
    assert.equal(error.cause, cause);
  });

  it("turns SQLite's codes, extended ones included, into the StoreError codes a caller acts on", () => {
    const cases: [string, string][] = [
      ["SQLITE_NOTADB", "DB_DAMAGED"],
      ["SQLITE_CORRUPT", "DB_DAMAGED"],
      ["SQLITE_CORRUPT_INDEX", "DB_DAMAGED"],
      ["SQLITE_BUSY", "DB_LOCKED"],
      ["SQLITE_BUSY_SNAPSHOT", "DB_LOCKED"],
      ["SQLITE_LOCKED", "DB_LOCKED"],
      ["SQLITE_LOCKED_SHAREDCACHE", "DB_LOCKED"],
      ["SQLITE_CANTOPEN", "DB_UNAVAILABLE"],
      ["SQLITE_CANTOPEN_ISDIR", "DB_UNAVAILABLE"],
      ["SQLITE_PERM", "DB_UNAVAILABLE"],
      ["SQLITE_READONLY", "DB_UNAVAILABLE"],
      ["SQLITE_READONLY_DBMOVED", "DB_UNAVAILABLE"],
    ];
    for (const [code, expected] of cases) {
      const cause = sqliteError(code, `${code}:\n  detail`);
      const error = translate(cause, PATH);
      assert.ok(error instanceof StoreError, code);
      assert.equal(error.code, expected, code);
      assert.ok(error.message.includes(PATH), error.message);
      assert.doesNotMatch(error.message, /\n/);
      assert.equal(error.cause, cause, code);
    }
    const locked = translate(sqliteError("SQLITE_BUSY"), PATH);
    assert.ok(locked instanceof Error);
    assert.match(locked.message, /is locked by another process/);
    const unavailable = translate(sqliteError("SQLITE_CANTOPEN", "unable to\n open"), PATH);
    assert.ok(unavailable instanceof Error);
    assert.equal(unavailable.message, `cannot open ${PATH}: unable to open`);
  });

  it("passes every other error through unchanged: other SQLite codes, the caller's own errors, StoreErrors", () => {
    for (const code of ["SQLITE_CONSTRAINT_UNIQUE", "SQLITE_ERROR", "SQLITE_MISMATCH", "SQLITE_FULL"]) {
      const error = sqliteError(code);
      assert.equal(translate(error, PATH), error, code);
    }
    const own = new RangeError("the caller's");
    assert.equal(translate(own, PATH), own);
    const store = new StoreError("DUPLICATE_MSG_ID", "dup");
    assert.equal(translate(store, PATH), store);
  });

  it("says CLOSED for whatever a closed connection throws, but keeps a StoreError thrown meanwhile", () => {
    const db = new Database(":memory:");
    db.close();
    const plain = new TypeError("The database connection is not open");
    const error = translate(plain, PATH, db);
    assert.ok(isStoreError(error, "CLOSED"));
    assert.equal(error.cause, plain);
    const store = new StoreError("DUPLICATE_RECIPIENT", "twice");
    assert.equal(translate(store, PATH, db), store);
  });
});

describe("storage: the memory store's undo log", () => {
  it("keeps no step once the outermost transaction is over, committed or rolled back", () => {
    const log = new UndoLog();
    const map = new Map<string, string>();
    const pending = (): unknown => Reflect.get(log, "steps");
    log.put(map, "a", "1");
    assert.equal(pending(), undefined);
    log.run(() => {
      log.put(map, "b", "1");
      log.run(() => log.put(map, "c", "1"));
      assert.equal((pending() as unknown[]).length, 2);
    });
    assert.equal(pending(), undefined, "a committed transaction leaves steps behind");
    assert.throws(() =>
      log.run(() => {
        log.put(map, "d", "1");
        throw new Error("abort");
      }),
    );
    assert.equal(pending(), undefined, "a rolled-back transaction leaves steps behind");
    // Outside a transaction, changes are not recorded: they would pile up for ever.
    for (let i = 0; i < 10; i++) log.put(map, `e${i}`, "1");
    log.record(() => assert.fail("a step recorded outside a transaction must never run"));
    assert.equal(pending(), undefined);
    assert.throws(() =>
      log.run(() => {
        throw new Error("abort");
      }),
    );
    assert.deepEqual([...map.keys()].sort(), [
      "a",
      "b",
      "c",
      ...Array.from({ length: 10 }, (_, i) => `e${i}`),
    ]);
  });
});
