/**
 * How often a node may probe the peers it has not heard from. Each silent peer is probed on a backed-off schedule
 * (probeDelayMs); across all of them, a token bucket caps probes per second, so a long contact list of people who
 * are offline costs a bounded trickle of HELLOs, however many there are.
 */
import type { EngineConfig } from "./config.ts";
import type { Millis } from "./types.ts";

/** The wait after a peer's `probesSent`-th probe: probeMsMin, doubling, at most probeMsMax. */
export function probeDelayMs(config: EngineConfig, probesSent: number): Millis {
  const doubled = config.probeMsMin * 2 ** Math.min(probesSent, 30);
  return Math.min(config.probeMsMax, doubled);
}

export class ProbeBudget {
  private tokens: number;
  private refilledAt: Millis;

  constructor(
    private readonly perSecond: number,
    now: Millis,
  ) {
    this.tokens = perSecond;
    this.refilledAt = now;
  }

  /** Takes one probe's worth of budget; false when it is spent (try again after retryMs()). */
  take(now: Millis): boolean {
    if (now > this.refilledAt) {
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.refilledAt) * this.perSecond) / 1000);
      this.refilledAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  /** How long until one probe's worth of budget is back. */
  retryMs(): Millis {
    return 1000 / this.perSecond;
  }
}
