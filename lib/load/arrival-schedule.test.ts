import { describe, expect, it } from 'vitest';
import { constantArrivals, rampingArrivals } from './arrival-schedule.ts';
import { constantVUs, rampingVUs } from './vu-schedule.ts';

describe('constantArrivals', () => {
  it('spaces arrivals exactly, with no timer rounding', () => {
    const s = constantArrivals(2000, 10_000);
    expect(s.count).toBe(20_000);
    expect(s.timeOf(0)).toBe(0);
    expect(s.timeOf(1)).toBeCloseTo(0.5, 9);
    expect(s.timeOf(19_999)).toBeCloseTo(9999.5, 6);
    expect(s.timeOf(20_000)).toBe(Infinity);
  });
  it('handles rates that do not divide the duration', () => {
    const s = constantArrivals(3, 1000); // due at 0, 333.3, 666.7
    expect(s.count).toBe(3);
    expect(s.timeOf(2)).toBeCloseTo(666.667, 2);
  });
});

describe('rampingArrivals', () => {
  it('follows a linear ramp: arrivals match the area under the rate', () => {
    // 0 → 100/s over 10 s: 500 arrivals; the k-th is due at sqrt(2k/a), a = 10/s².
    const s = rampingArrivals(0, [{ target: 100, durationMs: 10_000 }]);
    expect(s.count).toBe(500);
    expect(s.timeOf(0)).toBe(0);
    expect(s.timeOf(50)).toBeCloseTo(Math.sqrt((2 * 50) / 10) * 1000, 6);
    expect(s.timeOf(499)).toBeLessThan(10_000);
    expect(s.rateAt(5000)).toBeCloseTo(50, 6);
  });
  it('chains stages, including a ramp down and a hold', () => {
    const s = rampingArrivals(100, [
      { target: 100, durationMs: 1000 },
      { target: 0, durationMs: 1000 },
      { target: 0, durationMs: 1000 },
    ]);
    expect(s.count).toBe(150);
    expect(s.peakRate).toBe(100);
    let prev = -1;
    for (let i = 0; i < s.count; i++) {
      const t = s.timeOf(i);
      expect(t).toBeGreaterThan(prev);
      prev = t;
    }
    expect(prev).toBeLessThan(2000);
    expect(s.timeOf(150)).toBe(Infinity);
  });
});

describe('VU schedules', () => {
  it('ramps VUs linearly between stage targets', () => {
    const r = rampingVUs(0, [
      { target: 10, durationMs: 1000 },
      { target: 10, durationMs: 1000 },
      { target: 0, durationMs: 1000 },
    ]);
    expect(r.peakVUs).toBe(10);
    expect(r.vusAt(0)).toBe(0);
    expect(r.vusAt(500)).toBe(5);
    expect(r.vusAt(1500)).toBe(10);
    expect(r.vusAt(2500)).toBe(5);
    expect(r.vusAt(3000)).toBe(0);
    expect(constantVUs(4, 1000).vusAt(999)).toBe(4);
  });
});
