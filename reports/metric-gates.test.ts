import { describe, expect, it } from 'vitest';
import type { Counts, Measurement } from '../lib/metrics/source.ts';
import { canaryErrorRateGate, canaryP99Gate, fisherOneSided, logGamma, measurementGates, metricGates } from './metric-gates.ts';

const window = { from: new Date('2026-03-03T14:00:00Z'), to: new Date('2026-03-03T14:05:00Z') };
const evidence = (source: string) => ({
  source,
  queries: ['q'],
  window: { from: window.from.toISOString(), to: window.to.toISOString(), stepSeconds: 30 },
  samples: 10,
  points: {},
});
const ok = (source: string, c: Counts, byVersion: Record<string, Counts> = {}): Measurement => ({
  status: 'ok',
  source,
  window,
  message: `${source}: fine`,
  evidence: evidence(source),
  byVersion,
  ...c,
});
const bad = (source: string, status: 'error' | 'no-data', message: string): Measurement => ({
  status,
  source,
  window,
  message,
  evidence: evidence(source),
});
const opts = { maxErrorRate: 0.01, minRequests: 100, p99Ms: 250 };

describe('metric gates: fail closed', () => {
  it('a source in error makes each of its gates ERROR, with its message; no-data makes them INCONCLUSIVE', () => {
    const e = measurementGates(bad('promql', 'error', 'promql: cannot reach http://127.0.0.1:9 for query `up`'), opts);
    expect(e.map((g) => [g.name, g.verdict])).toEqual([
      ['promql: error rate', 'ERROR'],
      ['promql: p99 latency', 'ERROR'],
    ]);
    expect(e[0].evidence).toContain('cannot reach http://127.0.0.1:9 for query `up`');
    const n = measurementGates(bad('gmp', 'no-data', 'gmp: query `x` returned no series'), opts);
    expect(n.every((g) => g.verdict === 'INCONCLUSIVE')).toBe(true);
  });

  it('worst-of across sources: one good source does not outvote a broken one', () => {
    const good = ok('client', { total: 5000, failed: 0, failed4xx: 0, p99Ms: 40 });
    expect(metricGates([good], opts).verdict).toBe('PASS');
    expect(metricGates([good, bad('promql', 'no-data', 'promql: no series')], opts).verdict).toBe('INCONCLUSIVE');
    expect(metricGates([good, bad('promql', 'error', 'promql: HTTP 503')], opts).verdict).toBe('ERROR');
    expect(metricGates([], opts).verdict).toBe('INCONCLUSIVE');
  });

  it('error rate (Wilson bound in the evidence), too few requests, p99 objective, unknown p99', () => {
    const [rate, p99] = measurementGates(ok('promql', { total: 1000, failed: 30, failed4xx: 4, p99Ms: 120 }), opts);
    expect(rate.verdict).toBe('FAIL');
    expect(rate.evidence).toMatch(/^promql: 30 of 1000 requests failed \(3\.0%; 95% upper bound 4\.\d%\)/);
    expect(rate.observed?.failed_4xx).toBe(4);
    expect(p99.verdict).toBe('PASS');
    expect(measurementGates(ok('promql', { total: 20, failed: 0, failed4xx: 0, p99Ms: 10 }), opts).map((g) => g.verdict)).toEqual(
      ['INCONCLUSIVE', 'INCONCLUSIVE'],
    );
    expect(measurementGates(ok('promql', { total: 1000, failed: 0, failed4xx: 0, p99Ms: null }), opts)[1]).toMatchObject({
      verdict: 'INCONCLUSIVE',
      evidence: expect.stringMatching(/p99 unknown/),
    });
    expect(measurementGates(ok('promql', { total: 1000, failed: 0, failed4xx: 0, p99Ms: 400 }), opts)[1].verdict).toBe('FAIL');
    expect(measurementGates(ok('promql', { total: 1000, failed: 0, failed4xx: 0, p99Ms: Infinity }), opts)[1]).toMatchObject({
      verdict: 'FAIL',
      evidence: expect.stringMatching(/above the histogram's highest bucket/),
    });
  });
});

describe('canary vs baseline', () => {
  const compare = { baseline: 'v1', candidate: 'v2', minRequestsPerVersion: 100 };
  const v = (total: number, failed: number, p99Ms: number | null = 50): Counts => ({ total, failed, failed4xx: 0, p99Ms });

  it("Fisher's exact test, one-sided: the tea-tasting table and the symmetric cases", () => {
    // [[3, 1], [1, 3]]: P(X >= 3) = 17/70.
    expect(fisherOneSided(3, 4, 1, 4)).toBeCloseTo(17 / 70, 12);
    expect(fisherOneSided(0, 1000, 5, 1000)).toBe(1);
    expect(fisherOneSided(5, 1000, 5, 1000)).toBeGreaterThan(0.5);
    expect(fisherOneSided(300, 300, 0, 300)).toBeLessThan(1e-100);
    expect(logGamma(10)).toBeCloseTo(Math.log(362880), 10);
  });

  it('a candidate that fails more often FAILs, naming the test and the confidence; noise does not', () => {
    const g = canaryErrorRateGate('x', { v1: v(2000, 2), v2: v(2000, 30) }, compare);
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(
      /^v2 30 of 2000 failed \(1\.5%\) vs v1 2 of 2000 \(0\.10%\); one-sided Fisher's exact test p = .+ \(95% confidence needs p < 0\.05\): v2 fails more often$/,
    );
    expect(canaryErrorRateGate('x', { v1: v(2000, 2), v2: v(2000, 4) }, compare)).toMatchObject({
      verdict: 'PASS',
      evidence: expect.stringMatching(/no significant increase/),
    });
    // Significant, but under the minimum increase that matters.
    expect(
      canaryErrorRateGate('x', { v1: v(1_000_000, 10), v2: v(1_000_000, 60) }, { ...compare, minErrorRateIncrease: 0.001 })
        .verdict,
    ).toBe('PASS');
  });

  it('a version that served too little, or is missing, is INCONCLUSIVE', () => {
    expect(canaryErrorRateGate('x', { v1: v(2000, 0), v2: v(20, 10) }, compare)).toMatchObject({
      verdict: 'INCONCLUSIVE',
      evidence: expect.stringMatching(/20 from v2/),
    });
    expect(canaryP99Gate('x', { v1: v(2000, 0) }, compare)).toMatchObject({
      verdict: 'INCONCLUSIVE',
      evidence: expect.stringMatching(/0 from v2 .*versions seen: v1/),
    });
  });

  it('p99: slower by the ratio and by the minimum difference FAILs; unknown is INCONCLUSIVE', () => {
    expect(canaryP99Gate('x', { v1: v(500, 0, 20), v2: v(500, 0, 60) }, compare).verdict).toBe('FAIL');
    expect(canaryP99Gate('x', { v1: v(500, 0, 2), v2: v(500, 0, 4) }, compare).verdict).toBe('PASS'); // ×2 but 2 ms apart
    expect(canaryP99Gate('x', { v1: v(500, 0, 20), v2: v(500, 0, null) }, compare).verdict).toBe('INCONCLUSIVE');
  });

  it('measurementGates compares only when both versions served in the window', () => {
    const withVersions = ok('promql', { total: 4000, failed: 30, failed4xx: 0, p99Ms: 50 }, { v1: v(2000, 0), v2: v(2000, 30) });
    const names = measurementGates(withVersions, { ...opts, compare }).map((g) => `${g.name}=${g.verdict}`);
    expect(names).toEqual([
      'promql: error rate=PASS',
      'promql: p99 latency=PASS',
      'promql: v2 vs v1 error rate=FAIL',
      'promql: v2 vs v1 p99=PASS',
    ]);
    expect(
      measurementGates(ok('cloud-monitoring', { total: 4000, failed: 0, failed4xx: 0, p99Ms: 50 }), { ...opts, compare }),
    ).toHaveLength(2);
    // Only the candidate served (after a full rollout): nothing to compare, the absolute gates judge.
    expect(
      measurementGates(ok('promql', { total: 2000, failed: 0, failed4xx: 0, p99Ms: 50 }, { v1: v(0, 0), v2: v(2000, 0) }), {
        ...opts,
        compare,
      }),
    ).toHaveLength(2);
    // Both served, one too little: INCONCLUSIVE, never PASS.
    expect(
      measurementGates(ok('promql', { total: 2010, failed: 0, failed4xx: 0, p99Ms: 50 }, { v1: v(2000, 0), v2: v(10, 0) }), {
        ...opts,
        compare,
      }).map((g) => g.verdict),
    ).toEqual(['PASS', 'PASS', 'INCONCLUSIVE', 'INCONCLUSIVE']);
  });
});
