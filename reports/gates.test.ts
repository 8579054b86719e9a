import { describe, expect, it } from 'vitest';
import { combine, errorRateGate, wilson } from './gates.ts';

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
