/** How late timers run in this process, for the total-loss scenario's timing bounds. */
import { performance } from "node:perf_hooks";

export interface TimerProbe {
  /** Stops the probe: how many of its timers fired, and how late they fired on average and at worst (ms). */
  stop(): { firings: number; meanLateMs: number; maxLateMs: number };
}

/**
 * Measures how late a node's timer work runs in this event loop: a chain of `intervalMs` timers, each armed when
 * the previous one was handled, handled the way ChatNode handles its timer (the timeout, then two loop turns,
 * setImmediate inside setImmediate, before the engine sees it). A loaded machine, or other work in this process,
 * makes every timer late, and a chain of timers accumulates that lateness.
 */
export function startTimerProbe(intervalMs: number): TimerProbe {
  let firings = 0;
  let totalLate = 0;
  let maxLate = 0;
  let stopped = false;
  let due = performance.now() + intervalMs;
  let timer: NodeJS.Timeout | undefined;
  const handle = () => {
    if (stopped) return;
    const late = Math.max(0, performance.now() - due);
    firings++;
    totalLate += late;
    maxLate = Math.max(maxLate, late);
    due = performance.now() + intervalMs;
    arm();
  };
  const arm = () => {
    timer = setTimeout(() => setImmediate(() => setImmediate(handle)), intervalMs);
  };
  arm();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      return { firings, meanLateMs: firings > 0 ? totalLate / firings : 0, maxLateMs: maxLate };
    },
  };
}
