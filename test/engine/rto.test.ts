import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DEFAULT_CONFIG, giveUpBoundMs } from "../../src/engine/config.ts";
import { type RtoConfig, RttEstimator } from "../../src/engine/rto.ts";

const LAN: RtoConfig = { rtoMsMin: 20, rtoMsMax: 200, rtoMsInitial: 100, linearTimeouts: 0 };
/** Wide bounds, so that the RFC 6298 formula shows unclamped. */
const WIDE: RtoConfig = { rtoMsMin: 1, rtoMsMax: 1_000_000, rtoMsInitial: 1000, linearTimeouts: 0 };

describe("rto: RFC 6298 estimator", () => {
  it("before any sample the timeout is rtoMsInitial", () => {
    assert.equal(new RttEstimator(LAN).rto(), 100);
    assert.equal(new RttEstimator(WIDE).rto(), 1000);
    assert.equal(new RttEstimator(LAN).srttMs, undefined);
  });

  it("the first sample R sets SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4·RTTVAR) (section 2.2)", () => {
    const e = new RttEstimator(WIDE);
    e.sample(50);
    assert.equal(e.srttMs, 50);
    assert.equal(e.rttvarMs, 25);
    assert.equal(e.rto(), 150);
  });

  it("later samples update RTTVAR with the old SRTT first, then SRTT (section 2.3, alpha 1/8, beta 1/4)", () => {
    const e = new RttEstimator(WIDE);
    e.sample(50);
    e.sample(10);
    // RTTVAR = 3/4·25 + 1/4·|50 − 10| = 28.75; SRTT = 7/8·50 + 1/8·10 = 45.
    assert.equal(e.rttvarMs, 28.75);
    assert.equal(e.srttMs, 45);
    assert.equal(e.rto(), 45 + 4 * 28.75);
    e.sample(90);
    // RTTVAR = 3/4·28.75 + 1/4·|45 − 90| = 32.8125; SRTT = 7/8·45 + 1/8·90 = 50.625.
    assert.equal(e.rttvarMs, 32.8125);
    assert.equal(e.srttMs, 50.625);
    assert.equal(e.rto(), 50.625 + 4 * 32.8125);
  });

  it("the clock granularity G = 1 ms is the least variance term: steady samples give RTO → SRTT + 1", () => {
    const e = new RttEstimator(WIDE);
    for (let i = 0; i < 200; i++) e.sample(40);
    assert.equal(e.srttMs, 40);
    assert.ok(e.rttvarMs < 1e-9);
    assert.equal(e.rto(), 41);
  });

  it("a negative sample (clock step) counts as 0", () => {
    const e = new RttEstimator(WIDE);
    e.sample(-30);
    assert.equal(e.srttMs, 0);
    assert.equal(e.rttvarMs, 0);
  });

  it("clamps to rtoMsMin for tiny round trips and to rtoMsMax for huge ones", () => {
    const fast = new RttEstimator(LAN);
    fast.sample(1);
    assert.equal(fast.rto(), 20); // 1 + max(1, 2) = 3 → floor 20
    const slow = new RttEstimator(LAN);
    slow.sample(1000);
    assert.equal(slow.rto(), 200); // 1000 + 2000 → ceiling 200
  });

  it("the timeout is always within [rtoMsMin, rtoMsMax] whatever the samples (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -100, max: 100_000 }), { maxLength: 50 }), (samples) => {
        const e = new RttEstimator(LAN);
        for (const s of samples) e.sample(s);
        const rto = e.rto();
        return rto >= LAN.rtoMsMin && rto <= LAN.rtoMsMax;
      }),
    );
  });
});

describe("rto: backoff", () => {
  it("the first try waits one RTO, each expired timeout doubles it, until rtoMsMax", () => {
    const e = new RttEstimator(LAN);
    e.sample(5); // 5 + max(1, 10) = 15 → floor 20
    assert.equal(e.rto(), 20);
    const waits = [0, 1, 2, 3, 4, 5, 29].map((timeouts) => e.backoff(timeouts, 0));
    assert.deepEqual(waits, [20, 40, 80, 160, 200, 200, 200]);
  });

  it("the first linearTimeouts expiries wait the plain RTO (thin streams), the later ones double", () => {
    const e = new RttEstimator({ ...LAN, linearTimeouts: 3 });
    e.sample(5);
    const waits = [0, 1, 2, 3, 4, 5, 6, 7].map((timeouts) => e.backoff(timeouts, 0));
    assert.deepEqual(waits, [20, 20, 20, 20, 40, 80, 160, 200]);
  });

  it("the doubling exponent is capped, so huge try counts stay finite", () => {
    const e = new RttEstimator(WIDE);
    e.sample(1);
    assert.equal(e.backoff(1000, 0), e.rto() * 2 ** 16);
    assert.equal(e.backoff(0, 0), e.rto());
  });

  it("jitter stretches the wait by up to 25%, never shrinks it (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 10 }),
        fc.integer({ min: 0, max: 100 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (samples, tries, u) => {
          const e = new RttEstimator(LAN);
          for (const s of samples) e.sample(s);
          const base = Math.min(LAN.rtoMsMax, e.rto() * 2 ** Math.min(tries, 16));
          const wait = e.backoff(tries, u);
          return wait >= base && wait <= base * 1.25 && wait <= LAN.rtoMsMax * 1.25;
        },
      ),
    );
  });

  it("without jitter each wait is min(rtoMsMax, 2 × the previous one) (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 1, max: 40 }), (sample, tries) => {
        const e = new RttEstimator(LAN);
        e.sample(sample);
        return e.backoff(tries + 1, 0) === Math.min(LAN.rtoMsMax, 2 * e.backoff(tries, 0));
      }),
    );
  });
});

describe("config: give-up bound", () => {
  it("total-loss give-up ≈ 3.8 s after a 3 ms RTO (6 linear timeouts, then doubling), bounded by giveUpBoundMs = 7.5 s", () => {
    const e = new RttEstimator(DEFAULT_CONFIG);
    e.sample(1);
    let total = 0;
    for (let t = 0; t < DEFAULT_CONFIG.triesMax; t++) total += e.backoff(t, 0);
    assert.equal(total, 7 * 3 + 6 + 12 + 24 + 48 + 96 + 192 + 17 * 200);
    assert.equal(giveUpBoundMs(DEFAULT_CONFIG), 7500);
    let worst = 0;
    const fresh = new RttEstimator(DEFAULT_CONFIG); // no sample: 100 ms initial RTO
    for (let t = 0; t < DEFAULT_CONFIG.triesMax; t++) worst += fresh.backoff(t, 0.999999);
    assert.ok(worst <= giveUpBoundMs(DEFAULT_CONFIG), `${worst}`);
  });

  it("at 40% loss each way a try succeeds with p = 0.36 and 30 tries all fail with p ≈ 1.5e-6", () => {
    const pTry = 0.6 * 0.6;
    assert.ok(Math.abs(pTry - 0.36) < 1e-12);
    const pFail = (1 - pTry) ** DEFAULT_CONFIG.triesMax;
    assert.ok(pFail > 1.4e-6 && pFail < 1.6e-6, `${pFail}`);
  });
});
