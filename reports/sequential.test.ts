import { describe, expect, it } from 'vitest';
import { wilson } from './gates.ts';
import { sequentialDecision, SequentialErrorRateRule, type IntervalCounts } from './sequential.ts';

/** mulberry32: a small seeded PRNG, so the simulations are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One interval of `n` requests, each failing with probability `p`. */
const interval = (r: () => number, n: number, p: number): IntervalCounts => {
  let errors = 0;
  for (let i = 0; i < n; i++) if (r() < p) errors++;
  return { requests: n, errors };
};

// The seed's watch: 30 minutes, one look a minute, at the gate's light load of 5 req/s (300 a minute),
// error rate under 1 %.
const WATCH = { maxErrorRate: 0.01, plannedLooks: 30, alpha: 0.05 };
const PER_LOOK = 300;

function simulate(p: number, releases: number, seed: number, perLook = PER_LOOK) {
  const r = rng(seed);
  let stopped = 0;
  let passed = 0;
  const stopLooks: number[] = [];
  for (let k = 0; k < releases; k++) {
    const rule = new SequentialErrorRateRule(WATCH);
    let s = rule.state;
    for (let look = 0; look < WATCH.plannedLooks && s.decision === 'CONTINUE'; look++) s = rule.look(interval(r, perLook, p));
    if (s.decision === 'STOP-FAIL') {
      stopped++;
      stopLooks.push(s.look);
    }
    if (s.decision === 'PASS') passed++;
  }
  stopLooks.sort((a, b) => a - b);
  return {
    stopRate: stopped / releases,
    passRate: passed / releases,
    medianStopLook: stopLooks[Math.floor(stopLooks.length / 2)] ?? null,
  };
}

describe('the sequential early-stop rule (mixture SPRT)', () => {
  it('a release failing from minute 1 (5 % errors) stops at the first look', () => {
    const r = rng(1);
    const s = sequentialDecision(
      Array.from({ length: 30 }, () => interval(r, PER_LOOK, 0.05)),
      WATCH,
    );
    expect(s.decision).toBe('STOP-FAIL');
    expect(s.look).toBe(1);
    expect(s.evidence).toMatch(
      /^\d+ of 300 requests failed \(.*\) after look 1 of 30: the error rate is above 1\.0% with confidence 95% valid under repeated looks/,
    );
  });

  it('a release that goes bad at minute 5 stops within three looks of it (its good minutes dilute the evidence a little)', () => {
    const r = rng(2);
    const looks = [
      ...Array.from({ length: 4 }, () => interval(r, PER_LOOK, 0.002)),
      ...Array.from({ length: 26 }, () => interval(r, PER_LOOK, 0.05)),
    ];
    const s = sequentialDecision(looks, WATCH);
    expect(s.decision).toBe('STOP-FAIL');
    expect(s.look).toBeGreaterThanOrEqual(5);
    expect(s.look).toBeLessThanOrEqual(7);
  });

  it('a good release (0.3 % errors) runs the whole window, then PASSes', () => {
    const r = rng(3);
    const rule = new SequentialErrorRateRule(WATCH);
    const decisions: string[] = [];
    for (let i = 0; i < 30; i++) decisions.push(rule.look(interval(r, PER_LOOK, 0.003)).decision);
    expect(decisions.slice(0, 29).every((d) => d === 'CONTINUE')).toBe(true);
    expect(decisions[29]).toBe('PASS');
    expect(rule.state.evidence).toMatch(/after look 30 of 30: the whole window passed/);
    // A finished watch stays finished.
    expect(rule.look({ requests: 300, errors: 300 }).decision).toBe('PASS');
  });

  it('at the end: over the threshold without enough evidence to stop is FAIL; too few requests INCONCLUSIVE', () => {
    const flat = (n: number, e: number) => Array.from({ length: 30 }, () => ({ requests: n, errors: e }));
    expect(sequentialDecision(flat(300, 4), WATCH).decision).toBe('FAIL'); // 1.33 %: above, never proven early
    expect(sequentialDecision(flat(5, 0), WATCH)).toMatchObject({ decision: 'INCONCLUSIVE', requests: 150 });
    expect(sequentialDecision(flat(300, 2), WATCH).decision).toBe('PASS'); // 0.67 %
  });

  it('no error allowed: the first error stops it; bad input is refused', () => {
    expect(
      sequentialDecision(
        [
          { requests: 100, errors: 0 },
          { requests: 100, errors: 1 },
        ],
        { ...WATCH, maxErrorRate: 0 },
      ),
    ).toMatchObject({
      decision: 'STOP-FAIL',
      look: 2,
    });
    const rule = new SequentialErrorRateRule(WATCH);
    expect(() => rule.look({ requests: 10, errors: 11 })).toThrow(/0 <= errors <= requests/);
    expect(() => new SequentialErrorRateRule({ ...WATCH, maxErrorRate: 1 })).toThrow(RangeError);
    expect(() => new SequentialErrorRateRule({ ...WATCH, plannedLooks: 0 })).toThrow(RangeError);
    expect(() => new SequentialErrorRateRule({ ...WATCH, alternatives: [0.5] })).toThrow(RangeError);
  });

  it('the false-stop rate of a release exactly at the threshold stays under alpha over 30 looks (seeded simulation)', () => {
    const edge = simulate(0.01, 2000, 42);
    // Ville's bound is alpha = 5 %; with 2,000 releases the rate's own standard error is about 0.5 %.
    expect(edge.stopRate).toBeLessThan(0.05);
    // For comparison, the naive rule (stop when the 95 % Wilson lower bound is above 1 % at any look)
    // has no such guarantee: repeated looks inflate its false stops well past its nominal 2.5 %.
    const r = rng(42);
    let naive = 0;
    for (let k = 0; k < 2000; k++) {
      let e = 0;
      let n = 0;
      for (let look = 0; look < 30; look++) {
        const i = interval(r, PER_LOOK, 0.01);
        e += i.errors;
        n += i.requests;
        if (wilson(e, n).low > 0.01) {
          naive++;
          break;
        }
      }
    }
    expect(naive / 2000).toBeGreaterThan(0.025);
    expect(naive / 2000).toBeGreaterThan(edge.stopRate);
  });

  it('power: how soon releases worse than the threshold are stopped (seeded simulation)', () => {
    const at2 = simulate(0.02, 500, 7);
    const at3 = simulate(0.03, 500, 8);
    const good = simulate(0.005, 500, 9);
    expect(at3.stopRate).toBeGreaterThan(0.95);
    expect(at3.medianStopLook).toBeLessThanOrEqual(5);
    expect(at2.stopRate).toBeGreaterThan(0.8);
    expect(good.stopRate).toBe(0);
    expect(good.passRate).toBe(1);
  });
});
