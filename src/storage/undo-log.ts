// No node: imports: the simulator loads the memory store, and this with it.

/**
 * The memory store's transactions. While one runs, every change records the step that reverts it; rolling back
 * runs them newest first, back to where the (possibly nested) transaction began. An undo log costs O(changes),
 * where a snapshot would copy the whole store on every transaction.
 */
export class UndoLog {
  /** Defined while a transaction runs. */
  private steps: (() => void)[] | undefined;

  /** Records how to revert a change just made; outside a transaction there is nothing to revert to. */
  record(step: () => void): void {
    this.steps?.push(step);
  }

  /** Sets a value that is never undefined (strings and records), so undefined means there was none. */
  put<K, V extends NonNullable<unknown>>(map: Map<K, V>, key: K, value: V): void {
    const previous = map.get(key);
    map.set(key, value);
    this.record(() => {
      if (previous === undefined) map.delete(key);
      else map.set(key, previous);
    });
  }

  /** Runs `work`; if it throws, reverts what it changed and rethrows. */
  run<T>(work: () => T): T {
    const outermost = this.steps === undefined;
    const steps = this.steps ?? [];
    this.steps = steps;
    const mark = steps.length;
    try {
      return work();
    } catch (error) {
      while (steps.length > mark) steps.pop()?.();
      throw error;
    } finally {
      // A committed nested transaction leaves its steps: the outer one may still roll them back.
      if (outermost) this.steps = undefined;
    }
  }
}
