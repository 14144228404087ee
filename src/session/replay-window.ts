/**
 * Which transport counters a session still accepts: a sliding window as in RFC 6479 and WireGuard. A counter above
 * every one seen is new; one more than WINDOW_SIZE below the highest is too old to judge and refused; one inside
 * the window is accepted once. The caller checks (`wouldAccept`) before decrypting, which is cheap, and marks
 * (`mark`) only after the datagram authenticated, so a forgery cannot use up a counter the real sender needs.
 * Memory is fixed (WINDOW_SIZE bits) whatever counters arrive.
 */
export const WINDOW_SIZE = 2048;

export class ReplayWindow {
  private top = -1;
  /** Bit `c % WINDOW_SIZE` says whether counter c, within the window, was seen. */
  private readonly seen = new Uint32Array(WINDOW_SIZE / 32);

  /** The highest counter marked so far; -1 before the first. */
  get highest(): number {
    return this.top;
  }

  wouldAccept(counter: number): boolean {
    if (!Number.isInteger(counter) || counter < 0) return false;
    if (counter > this.top) return true;
    if (counter <= this.top - WINDOW_SIZE) return false;
    return !this.bit(counter);
  }

  /** Records an authenticated counter; false (and nothing changed) if the window would not accept it. */
  mark(counter: number): boolean {
    if (!this.wouldAccept(counter)) return false;
    if (counter > this.top) {
      // Counters skipped over were never seen: clear their bits, at most the whole window.
      const from = Math.max(this.top + 1, counter - WINDOW_SIZE + 1);
      for (let c = from; c < counter; c++) this.setBit(c, false);
      this.top = counter;
    }
    this.setBit(counter, true);
    return true;
  }

  private bit(counter: number): boolean {
    const i = counter % WINDOW_SIZE;
    return ((this.seen[i >>> 5] as number) & (1 << (i & 31))) !== 0;
  }

  private setBit(counter: number, on: boolean): void {
    const i = counter % WINDOW_SIZE;
    const word = this.seen[i >>> 5] as number;
    this.seen[i >>> 5] = on ? word | (1 << (i & 31)) : word & ~(1 << (i & 31));
  }
}
