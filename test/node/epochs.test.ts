/**
 * Every life of a node has an epoch newer than every earlier life's, kept or not (src/node/restore.ts): on a
 * virtual clock for the rule itself, and over real UDP for what it is for. A user who once ran with another store
 * (--ephemeral) must not be older, and refused as stale-epoch, at the peers that saw that run.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { chooseEpoch } from "../../src/node/restore.ts";
import { StoreError } from "../../src/storage/errors.ts";
import { createMemoryStore } from "../../src/storage/memory.ts";
import { openSqliteStore } from "../../src/storage/sqlite.ts";
import { makeUsers, nodeFor, type TestUser, until } from "../helpers/loopback-nodes.ts";

describe("a node's epoch", () => {
  it("is the next whole second at the first start, used once that second has begun, and saved", () => {
    const store = createMemoryStore();
    assert.deepEqual(chooseEpoch(store, 1_700_000_000_250, true), {
      epoch: 1_700_000_001,
      startsAt: 1_700_000_001_000,
    });
    assert.equal(store.getMeta("epoch"), "1700000001");
  });

  it("is newer at every start: the clock's next second, or the saved epoch + 1 within the same second", () => {
    const store = createMemoryStore();
    const first = chooseEpoch(store, 5_000, true);
    const second = chooseEpoch(store, first.startsAt + 10, true);
    const later = chooseEpoch(store, 60_000, true);
    assert.deepEqual([first.epoch, second.epoch, later.epoch], [6, 7, 61]);
  });

  it("waits at most a second, even when the clock went back", () => {
    const store = createMemoryStore();
    chooseEpoch(store, 3_600_000, true); // 3601
    const afterStep = chooseEpoch(store, 1_000, true);
    assert.equal(afterStep.epoch, 3602);
    assert.equal(afterStep.startsAt, 2_000);
  });

  it("refuses a damaged saved epoch with a StoreError", () => {
    for (const bad of ["0", "-3", "1.5", "abc", String(2 ** 32 - 1)]) {
      const store = createMemoryStore();
      store.setMeta("epoch", bad);
      assert.throws(() => chooseEpoch(store, 1_000, true), StoreError, bad);
    }
  });

  it("grows over any sequence of lives, kept or not, each starting once the previous one began (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ keep: fc.boolean(), gapMs: fc.integer({ min: 0, max: 5_000 }) }), {
          minLength: 2,
          maxLength: 30,
        }),
        (lives) => {
          const store = createMemoryStore();
          let now = 1_000_000;
          let previous = 0;
          for (const life of lives) {
            const choice = chooseEpoch(store, now, life.keep);
            assert.ok(choice.epoch > previous, `epoch ${choice.epoch} after ${previous}`);
            assert.ok(choice.startsAt - now <= 1_000, "a wait of at most a second");
            previous = choice.epoch;
            now = Math.max(now, choice.startsAt) + life.gapMs;
          }
        },
      ),
    );
  });
});

describe("after a run with another store", { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "chatnode-epochs-"));
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });

  it("alice's own store is still heard, and hears, once she ran --ephemeral", async () => {
    const users = await makeUsers(["alice", "bob"]);
    const [alice, bob] = users as [TestUser, TestUser];
    const bobNode = nodeFor(bob, users, { store: openSqliteStore(join(dir, "bob.db")), ephemeral: false });
    const bobGot: string[] = [];
    bobNode.on("message", (m) => bobGot.push(m.text));
    await bobNode.start();
    cleanups.push(() => bobNode.close());
    const aliceLife = async (store: "own" | "ephemeral", text: string) => {
      const node =
        store === "own"
          ? nodeFor(alice, users, { store: openSqliteStore(join(dir, "alice.db")), ephemeral: false })
          : nodeFor(alice, users);
      const got: string[] = [];
      const delivered: string[] = [];
      node.on("message", (m) => got.push(m.text));
      node.on("delivered", (d) => delivered.push(d.msgId));
      await node.start();
      try {
        const sent = node.sendPrivate("bob", text).msgId;
        bobNode.sendPrivate("alice", `re: ${text}`);
        await until(
          () => delivered.includes(sent) && got.includes(`re: ${text}`),
          15_000,
          `both ways in alice's ${store} life ("${text}")`,
        );
      } finally {
        await node.close();
      }
    };
    await aliceLife("own", "first");
    await aliceLife("ephemeral", "from elsewhere");
    await aliceLife("own", "back home");
    await aliceLife("own", "and again");
    assert.deepEqual(bobGot, ["first", "from elsewhere", "back home", "and again"]);
    assert.equal(bobNode.stats().rejected["stale-epoch"] ?? 0, 0, "nothing of alice's refused as stale");
  });
});
