/**
 * A whole ChatNode on a virtual clock (issue 18, must-have 4): real sockets carry the datagrams, while every timer
 * and every reading of the time goes through the injected clock. Minutes of protocol time pass in a few loop turns.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { DEFAULT_CONFIG } from "../../src/engine/config.ts";
import type { ChatNode } from "../../src/node/chat-node.ts";
import { makeUsers, nodeFor } from "../helpers/loopback-nodes.ts";
import { VirtualClock } from "./fixtures/virtual-clock.ts";

/** One real event-loop turn, for the sockets; then what the clock has due up to `now + ms`. */
async function advance(clock: VirtualClock, ms: number): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  clock.runUntil(clock.now() + ms);
}

/** Turns the loop (virtual time standing still) until `predicate` holds; a bound on turns, not on wall time. */
async function settle(clock: VirtualClock, predicate: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 100_000; turn++) {
    if (predicate()) return;
    await advance(clock, 0);
  }
  assert.fail(`never happened: ${what}`);
}

/** Awaits `promise` while the clock runs: a start may wait for its epoch's second on the node's clock. */
async function driven<T>(clock: VirtualClock, promise: Promise<T>): Promise<T> {
  let done = false;
  const settled = promise.finally(() => {
    done = true;
  });
  for (let turn = 0; turn < 100_000 && !done; turn++) await advance(clock, 100);
  return settled;
}

describe("ChatNode on a virtual clock", { timeout: 60_000 }, () => {
  const nodes: ChatNode[] = [];
  after(async () => {
    for (const n of nodes) await n.close().catch(() => {});
  });

  it("a peer that goes silent is offline after offlineAfterMs of the node's time, not the wall clock's", async () => {
    const clock = new VirtualClock(Date.now());
    const users = await makeUsers(["alice", "bob"]);
    const [alice, bob] = users.map((u) => nodeFor(u, users, { clock })) as [ChatNode, ChatNode];
    nodes.push(alice, bob);
    const offline: number[] = [];
    alice.on("peer-offline", () => offline.push(clock.now()));
    await driven(clock, Promise.all([alice.start(), bob.start()]));
    const bobOnline = () => alice.peers().some((p) => p.name === "bob" && p.online);
    const aliceOnline = () => bob.peers().some((p) => p.name === "alice" && p.online);
    await settle(clock, () => bobOnline() && aliceOnline(), "both nodes hear each other");

    const silentFrom = clock.now();
    bob.setFaults({ blackhole: true });
    const { offlineAfterMs } = DEFAULT_CONFIG;
    for (let t = 0; t < offlineAfterMs - 1_000; t += 250) await advance(clock, 250);
    assert.ok(bobOnline(), "still online a second before offlineAfterMs");
    for (let t = 0; t < 10_000 && offline.length === 0; t += 250) await advance(clock, 250);
    assert.equal(offline.length, 1, "alice shows bob offline");
    const after = (offline[0] as number) - silentFrom;
    assert.ok(after >= offlineAfterMs - 1_000, `offline after ${after} ms of node time`);
    assert.ok(after <= offlineAfterMs + 5_000, `offline after ${after} ms of node time`);
    await driven(clock, Promise.all([alice.close(), bob.close()]));
  });
});
