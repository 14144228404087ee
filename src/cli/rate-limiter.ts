/**
 * At most one line per key per period: the first occurrence is shown at once, later ones in the same period are
 * counted and shown as one line with the count when the period ends.
 */
export class RateLimiter {
  private readonly slots = new Map<
    string,
    { last: number; pending: number; timer: NodeJS.Timeout | undefined; show: (count: number) => void }
  >();

  constructor(
    private readonly periodMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  hit(key: string, show: (count: number) => void): void {
    const t = this.now();
    const slot = this.slots.get(key);
    if (!slot || (slot.pending === 0 && t - slot.last >= this.periodMs)) {
      this.slots.set(key, { last: t, pending: 0, timer: undefined, show });
      show(1);
      return;
    }
    slot.pending++;
    slot.show = show;
    if (!slot.timer) {
      slot.timer = setTimeout(() => this.flush(key), Math.max(0, slot.last + this.periodMs - t));
      slot.timer.unref();
    }
  }

  private flush(key: string): void {
    const slot = this.slots.get(key);
    if (!slot) return;
    slot.timer = undefined;
    if (slot.pending === 0) return;
    const count = slot.pending;
    slot.pending = 0;
    slot.last = this.now();
    slot.show(count);
  }

  close(): void {
    for (const slot of this.slots.values()) if (slot.timer) clearTimeout(slot.timer);
    this.slots.clear();
  }
}
