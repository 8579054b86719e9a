import { describe, expect, it } from 'vitest';
import { combine, errorRateGate, latencyGate, wilson } from './gates.ts';

describe('gates', () => {
  it('the worst gate decides, and no gate at all is never PASS', () => {
    const g = (verdict: 'PASS' | 'FAIL' | 'INCONCLUSIVE' | 'ERROR') => ({ name: verdict, verdict, evidence: '' });
    expect(combine([])).toBe('INCONCLUSIVE');
    expect(combine([g('PASS'), g('PASS')])).toBe('PASS');
    expect(combine([g('PASS'), g('INCONCLUSIVE')])).toBe('INCONCLUSIVE');
    expect(combine([g('INCONCLUSIVE'), g('FAIL')])).toBe('FAIL');
    expect(combine([g('FAIL'), g('ERROR'), g('PASS')])).toBe('ERROR');
  });

  it('Wilson bounds: zero failures still leave an honest upper bound', () => {
    const w = wilson(0, 1000);
    expect(w.low).toBe(0);
    expect(w.high).toBeGreaterThan(0.003);
    expect(w.high).toBeLessThan(0.005);
    const v = wilson(10, 100);
    expect(v.low).toBeLessThan(0.1);
    expect(v.high).toBeGreaterThan(0.1);
    expect(wilson(0, 0)).toEqual({ low: 0, high: 1 });
  });

  it('error-rate gate: zero tolerance fails on one failure, too few requests is INCONCLUSIVE', () => {
    expect(errorRateGate({ name: 'x', failed: 0, total: 5000, maxRate: 0, minRequests: 300 }).verdict).toBe('PASS');
    const one = errorRateGate({ name: 'x', failed: 1, total: 5000, maxRate: 0, minRequests: 300 });
    expect(one.verdict).toBe('FAIL');
    expect(one.evidence).toContain('1 of 5000');
    expect(errorRateGate({ name: 'x', failed: 0, total: 10, maxRate: 0, minRequests: 300 }).verdict).toBe('INCONCLUSIVE');
    expect(errorRateGate({ name: 'x', failed: 0, total: 0, maxRate: 0.01, minRequests: 1 }).verdict).toBe('INCONCLUSIVE');
    expect(errorRateGate({ name: 'x', failed: 40, total: 10000, maxRate: 0.01, minRequests: 300 }).verdict).toBe('PASS');
    expect(errorRateGate({ name: 'x', failed: 200, total: 10000, maxRate: 0.01, minRequests: 300 }).verdict).toBe('FAIL');
  });

  it('error-rate gate: failures on new and on reused connections are counted apart', () => {
    const g = errorRateGate({
      name: 'no failed request',
      failed: 14,
      total: 12_000,
      maxRate: 0,
      minRequests: 300,
      byConnection: { new: { total: 1500, failed: 0 }, reused: { total: 10_500, failed: 14 }, unknown: { total: 0, failed: 0 } },
    });
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(/; on new connections 0 of 1,500, on reused 14 of 10,500$/);
    expect(g.observed).toMatchObject({
      failed_new_connection: 0,
      total_new_connection: 1500,
      failed_reused_connection: 14,
      total_reused_connection: 10_500,
    });
  });
});

describe('latencyGate: compared at p90 when both versions have it', () => {
  const base = {
    baseline: 'v1',
    candidate: 'v2',
    p99Ms: 1000,
    maxP99Ratio: 1.5,
    minP99DifferenceMs: 20,
    minRequestsPerVersion: 200,
  };
  it('a good release whose p99 alone is two GC pauses off PASSes: the p90s agree', () => {
    const g = latencyGate({
      ...base,
      versions: { v1: { count: 400, p90: 4, p99: 10.7 }, v2: { count: 1000, p90: 4.5, p99: 31.7 } },
    });
    expect(g.verdict).toBe('PASS');
    expect(g.evidence).toMatch(/^p90 4\.5 ms \(p99 31\.7\) for v2 \(n=1000\) vs 4\.0 ms \(p99 10\.7\) for v1 \(n=400\)/);
  });
  it('a release slower in steady state FAILs: every quantile moved', () => {
    const g = latencyGate({
      ...base,
      versions: { v1: { count: 400, p90: 4, p99: 10 }, v2: { count: 1000, p90: 155, p99: 170 } },
    });
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(/p90 ×38\.75 .*the new version is slower/);
  });
  it('without p90s it compares p99s, as before', () => {
    const g = latencyGate({ ...base, versions: { v1: { count: 400, p99: 10 }, v2: { count: 400, p99: 40 } } });
    expect([g.verdict, g.observed?.compared]).toEqual(['FAIL', 'p99']);
  });
});
