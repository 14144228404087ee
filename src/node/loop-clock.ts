import type { LoopClock } from "./loop.ts";

/** The wall clock and Node's event loop: the only LoopClock a running node uses. */
export const systemClock: LoopClock = {
  now: () => Date.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout),
  afterIo: (callback) => setImmediate(callback),
  afterSync: (callback) => queueMicrotask(callback),
};
