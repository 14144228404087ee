/**
 * The node's loop on a virtual clock (issue 18, must-have 4): when the engine is pumped and when its timeout runs
 * are decided by NodeLoop alone, so they are tested here without sockets or sleeps.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NodeLoop } from "../../src/node/loop.ts";
import { VirtualClock } from "./fixtures/virtual-clock.ts";

/** An engine whose next timeout the test sets; it records when handleTimeout ran. */
class FakeEngine {
  nextTimeout: number | undefined;
  readonly timeouts: number[] = [];
  /** Called in handleTimeout, before the engine has nothing left to time. */
  onTimeout: () => void = () => {};
  handleTimeout(now: number): void {
    this.onTimeout();
    this.timeouts.push(now);
    this.nextTimeout = undefined;
  }
  pollTimeout(): number | undefined {
    return this.nextTimeout;
  }
}

function setup(start = 1_000) {
  const clock = new VirtualClock(start);
  const engine = new FakeEngine();
  let pumps = 0;
  const loop = new NodeLoop(clock, engine, () => pumps++);
  return { clock, engine, loop, pumps: () => pumps };
}

describe("node loop on a virtual clock", () => {
  it("a burst of sends shares one pump, after the caller's synchronous code", () => {
    const { clock, loop, pumps } = setup();
    loop.sent();
    loop.sent();
    loop.sent();
    assert.equal(pumps(), 0, "nothing pumps inside the caller's code");
    clock.runUntil(clock.now());
    assert.equal(pumps(), 1);
  });

  it("datagrams read in one turn share a pump, with one halfway through a long burst", () => {
    const { clock, loop, pumps } = setup();
    for (let i = 0; i < 15; i++) loop.datagramHandled();
    assert.equal(pumps(), 0);
    loop.datagramHandled();
    assert.equal(pumps(), 1, "the 16th datagram pumps at once");
    for (let i = 0; i < 5; i++) loop.datagramHandled();
    assert.equal(pumps(), 1);
    clock.runUntil(clock.now());
    assert.equal(pumps(), 2, "the rest of the turn is pumped after the I/O");
  });

  it("the timer is armed to the engine's next timeout, which runs after a quiet turn", () => {
    const { clock, engine, loop, pumps } = setup(1_000);
    engine.nextTimeout = 1_250;
    loop.pumpNow();
    assert.equal(clock.nextTimerAt(), 1_250);
    clock.runUntil(1_249);
    assert.deepEqual(engine.timeouts, []);
    clock.runUntil(1_250);
    assert.deepEqual(engine.timeouts, [1_250]);
    assert.equal(pumps(), 2, "the timeout is followed by a pump");
    assert.equal(clock.nextTimerAt(), undefined, "no timeout left, no timer");
  });

  it("re-arming replaces the timer: one timer at a time", () => {
    const { clock, engine, loop } = setup(0);
    engine.nextTimeout = 500;
    loop.pumpNow();
    engine.nextTimeout = 200;
    loop.pumpNow();
    assert.equal(clock.nextTimerAt(), 200);
    clock.runUntil(1_000);
    assert.deepEqual(engine.timeouts, [200]);
  });

  /** The loop of `setup`, a socket that reads one datagram in each of its next `turns` loop turns, from `at`. */
  function busySocketFrom(at: number, turns: number, t: ReturnType<typeof setup>): { reads: () => number } {
    let reads = 0;
    const read = () => {
      if (reads >= turns) return;
      reads++;
      t.loop.datagramHandled();
      t.clock.afterIo(read);
    };
    t.clock.setTimer(() => t.clock.afterIo(read), at - t.clock.now());
    return { reads: () => reads };
  }

  it("a timer on time runs the timeout after one more turn, even while datagrams keep arriving", () => {
    const t = setup(0);
    t.engine.nextTimeout = 100;
    t.loop.pumpNow();
    const socket = busySocketFrom(100, 50, t);
    let readsAtTimeout = -1;
    t.engine.onTimeout = () => {
      readsAtTimeout = socket.reads();
    };
    t.clock.runUntil(100);
    assert.deepEqual(t.engine.timeouts, [100]);
    assert.ok(readsAtTimeout >= 1 && readsAtTimeout <= 2, `waited ${readsAtTimeout} busy turns`);
  });

  it("a late timer lets the datagrams already waiting be read first, for at most eight turns", () => {
    const t = setup(0);
    t.engine.nextTimeout = 100;
    t.loop.pumpNow();
    // Synchronous work holds the loop from 95 to 150: the timer due at 100 fires 50 ms late.
    t.clock.setTimer(() => t.clock.spend(55), 95);
    const socket = busySocketFrom(95, 50, t);
    let readsAtTimeout = -1;
    t.engine.onTimeout = () => {
      readsAtTimeout = socket.reads();
    };
    t.clock.runUntil(150);
    assert.deepEqual(t.engine.timeouts, [150]);
    assert.ok(readsAtTimeout >= 8, `read ${readsAtTimeout} turns before the timeout, not the 8 it may wait`);
    assert.ok(readsAtTimeout <= 10, `read ${readsAtTimeout} turns before the timeout: waited past its bound`);
  });

  it("a late timer on a quiet socket does not wait", () => {
    const t = setup(0);
    t.engine.nextTimeout = 100;
    t.loop.pumpNow();
    t.clock.setTimer(() => t.clock.spend(55), 95);
    // Loop turns that read nothing: the loop keeps turning (other work), the socket stays quiet.
    let turns = 0;
    const idleTurn = () => {
      if (++turns < 50) t.clock.afterIo(idleTurn);
    };
    t.clock.setTimer(() => t.clock.afterIo(idleTurn), 100);
    let turnsAtTimeout = -1;
    t.engine.onTimeout = () => {
      turnsAtTimeout = turns;
    };
    t.clock.runUntil(150);
    assert.deepEqual(t.engine.timeouts, [150]);
    assert.ok(turnsAtTimeout <= 2, `waited ${turnsAtTimeout} quiet turns`);
  });

  it("after stop, nothing that was scheduled runs", () => {
    const { clock, engine, loop, pumps } = setup(0);
    engine.nextTimeout = 100;
    loop.pumpNow();
    loop.sent();
    loop.datagramHandled();
    loop.stop();
    clock.runUntil(10_000);
    assert.equal(pumps(), 1, "only the pump before stop");
    assert.deepEqual(engine.timeouts, []);
    assert.equal(clock.nextTimerAt(), undefined);
  });
});
