/** Admission control (src/node/admission.ts) as a pure module: its bounds hold for any traffic and any clock. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Admission, type AdmissionConfig } from "../../src/node/admission.ts";

const small: AdmissionConfig = {
  sourceRatePerSec: 10,
  sourceBurst: 5,
  globalRatePerSec: 40,
  globalBurst: 20,
  maxSources: 8,
  trustRefreshMs: 100,
};

/** Arrivals: (source index, ms since the previous arrival). Source 0 is the trusted peer. */
const traffic = fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 50 })), {
  maxLength: 2000,
});

describe("admission control", () => {
  it("never drops a trusted address, whatever everyone else sends", () => {
    fc.assert(
      fc.property(traffic, (arrivals) => {
        const a = new Admission(small, 0);
        let now = 0;
        for (const [source, gap] of arrivals) {
          now += gap;
          const admitted = a.admit(`10.0.0.${source}:1`, now, () => ["10.0.0.0:1"]);
          if (source === 0) assert.equal(admitted, true);
        }
      }),
    );
  });

  it("admits at most burst + rate × time per source, and globalBurst + globalRate × time in all", () => {
    fc.assert(
      fc.property(traffic, (arrivals) => {
        const a = new Admission(small, 0);
        const per = new Map<number, number>();
        let now = 0;
        let total = 0;
        for (const [source, gap] of arrivals) {
          now += gap;
          if (source === 0) continue;
          if (a.admit(`10.0.0.${source}:1`, now, () => [])) {
            per.set(source, (per.get(source) ?? 0) + 1);
            total++;
          }
        }
        const seconds = now / 1000;
        // A forgotten source comes back with a full bucket: per-source bounds hold between evictions, so the
        // global bound is the one that must always hold.
        assert.ok(total <= small.globalBurst + small.globalRatePerSec * seconds + 1e-9, `${total} admitted`);
        if (a.stats().evicted === 0)
          for (const [, n] of per)
            assert.ok(n <= small.sourceBurst + small.sourceRatePerSec * seconds + 1e-9);
        assert.ok(a.stats().sources <= small.maxSources);
      }),
    );
  });

  it("a flood from one source drains only that source; the others keep their burst", () => {
    const a = new Admission({ ...small, globalBurst: 1000, globalRatePerSec: 1000 }, 0);
    let admitted = 0;
    for (let i = 0; i < 1000; i++) if (a.admit("192.0.2.1:9", 0, () => [])) admitted++;
    assert.equal(admitted, small.sourceBurst);
    assert.equal(a.stats().droppedSource, 1000 - small.sourceBurst);
    for (let i = 0; i < small.sourceBurst; i++)
      assert.equal(
        a.admit("192.0.2.2:9", 0, () => []),
        true,
      );
    // 300 ms later the flooder has earned rate × 0.3 s = 3 tokens, no more.
    let later = 0;
    for (let i = 0; i < 1000; i++) if (a.admit("192.0.2.1:9", 300, () => [])) later++;
    assert.equal(later, 3);
  });

  it("keeps at most maxSources sources, forgetting the least recently heard", () => {
    const a = new Admission(small, 0);
    for (let i = 0; i < 100; i++) a.admit(`198.51.100.${i}:1`, 0, () => []);
    assert.equal(a.stats().sources, small.maxSources);
    assert.equal(a.stats().evicted, 100 - small.maxSources);
  });

  it("a clock that goes backwards earns no tokens", () => {
    const a = new Admission(small, 10_000);
    let admitted = 0;
    for (let i = 0; i < 50; i++) if (a.admit("203.0.113.1:1", 10_000, () => [])) admitted++;
    for (let i = 0; i < 50; i++) if (a.admit("203.0.113.1:1", 5_000, () => [])) admitted++;
    assert.equal(admitted, small.sourceBurst);
  });

  it("reads the trusted addresses at most once per trustRefreshMs, and trusts a new address after a refresh", () => {
    const a = new Admission(small, 0);
    let calls = 0;
    let peers = ["127.0.0.1:1"];
    const trusted = () => {
      calls++;
      return peers;
    };
    for (let t = 0; t < 1000; t++) a.admit("127.0.0.1:1", t, trusted);
    assert.equal(calls, 10);
    peers = ["127.0.0.1:2"]; // the peer roamed
    for (let i = 0; i < 50; i++) a.admit("127.0.0.1:2", 1000, trusted);
    assert.equal(a.isTrusted("127.0.0.1:2"), true);
    assert.equal(a.isTrusted("127.0.0.1:1"), false);
    assert.equal(a.stats().droppedSource, 0);
  });

  it("refuses nonsensical limits", () => {
    assert.throws(() => new Admission({ maxSources: 0 }), /maxSources/);
    assert.throws(() => new Admission({ sourceRatePerSec: -1 }), /sourceRatePerSec/);
    assert.throws(() => new Admission({ globalBurst: Number.NaN }), /globalBurst/);
  });
});
