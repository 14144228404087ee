/**
 * Exact checks with readable mismatches. Every check is recorded (the JSON report lists them all); a scenario
 * fails if any check failed, and its error names the first one: which number, expected against actual.
 */
export interface CheckRecord {
  label: string;
  expected: string;
  actual: string;
  ok: boolean;
}

/** A scenario that cannot go on (a wait timed out, a node died): the message says what was awaited. */
export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
}

export class Checker {
  readonly records: CheckRecord[] = [];

  /** `actual` must be exactly `expected`. */
  equal(label: string, expected: number | string | boolean, actual: number | string | boolean): boolean {
    return this.add(label, String(expected), String(actual), expected === actual);
  }

  atLeast(label: string, minimum: number, actual: number): boolean {
    return this.add(label, `>= ${minimum}`, String(actual), actual >= minimum);
  }

  atMost(label: string, maximum: number, actual: number): boolean {
    return this.add(label, `<= ${maximum}`, String(actual), actual <= maximum);
  }

  /** Equal counts per key (rejection reasons): one record per key that appears on either side. */
  equalCounts(label: string, expected: Record<string, number>, actual: Record<string, number>): boolean {
    let ok = true;
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    for (const key of [...keys].sort())
      ok = this.equal(`${label} ${key}`, expected[key] ?? 0, actual[key] ?? 0) && ok;
    if (keys.size === 0) this.add(label, "none", "none", true);
    return ok;
  }

  /** A condition with its own description of what was found. */
  that(label: string, ok: boolean, actual: string, expected = "true"): boolean {
    return this.add(label, expected, actual, ok);
  }

  get failures(): CheckRecord[] {
    return this.records.filter((r) => !r.ok);
  }

  private add(label: string, expected: string, actual: string, ok: boolean): boolean {
    this.records.push({ label, expected, actual, ok });
    return ok;
  }
}

export function describeMismatch(r: CheckRecord): string {
  return `${r.label}: expected ${r.expected}, got ${r.actual}`;
}
