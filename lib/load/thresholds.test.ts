import { describe, expect, it } from 'vitest';
import { Ledger, Outcome } from './ledger.ts';
import { ErrorClass } from './error-class.ts';
import { RequestStatistics } from './statistics.ts';
import { evaluate, parseThresholdFlag, parseThresholds, tagFilter } from './thresholds.ts';

function ledgerWith(rows: { name: string; ms: number; ok: boolean; status?: number }[]) {
  const l = new Ledger(0);
  for (const [i, r] of rows.entries()) {
    const row = l.add(i, i, l.names.id(r.name), i);
    l.markStarted(row, i, 0);
    l.finish(
      row,
      i + r.ms,
      r.ok ? Outcome.succeeded : Outcome.failed,
      r.status ?? (r.ok ? 200 : 503),
      r.ok ? 0 : ErrorClass.http_5xx,
      0,
      0,
      0,
    );
  }
  return l;
}

describe('parseThresholds', () => {
  it('reads k6 threshold syntax', () => {
    const ts = parseThresholds({
      http_req_failed: ['rate<0.01'],
      http_req_duration: ['p(95)<500', { threshold: 'p(99.9)<=1s', abortOnFail: true, delayAbortEval: '10s' }],
      'http_req_duration{name:acquire}': 'max<2000',
      dropped_iterations: ['count==0'],
    });
    expect(ts.map((t) => [t.metric, t.expression])).toEqual([
      ['http_req_failed', 'rate<0.01'],
      ['http_req_duration', 'p(95)<500'],
      ['http_req_duration', 'p(99.9)<=1s'],
      ['http_req_duration{name:acquire}', 'max<2000'],
      ['dropped_iterations', 'count==0'],
    ]);
    expect(ts[2]).toMatchObject({ aggregation: { p: 99.9 }, op: '<=', value: 1000, abortOnFail: true, delayAbortEvalMs: 10_000 });
    expect(ts[3].tags).toEqual({ name: 'acquire' });
  });
  it('names the mistake', () => {
    expect(() => parseThresholds({ http_req_latency: ['p(95)<1'] })).toThrow(/unknown metric "http_req_latency"/);
    expect(() => parseThresholds({ http_req_failed: ['p(95)<1'] })).toThrow(/http_req_failed is a rate: use rate/);
    expect(() => parseThresholds({ http_req_duration: ['p95 < 1'] })).toThrow(/not of the form/);
    expect(() => parseThresholds({ 'http_req_duration{pod:a}': ['max<1'] })).toThrow(/unknown tag "pod"/);
  });
  it('reads the CLI form', () => {
    expect(parseThresholdFlag('http_req_duration: p(99)<250')).toEqual({ http_req_duration: ['p(99)<250'] });
    expect(() => parseThresholdFlag('p(99)<250')).toThrow();
  });
});

describe('evaluate', () => {
  const l = ledgerWith([
    ...Array.from({ length: 98 }, () => ({ name: 'heartbeat', ms: 10, ok: true })),
    { name: 'acquire', ms: 900, ok: true },
    { name: 'acquire', ms: 5, ok: false },
  ]);
  const all = new RequestStatistics();
  for (let r = 0; r < l.length; r++) all.add(l, r);
  const judge = (metric: string, expr: string, stats = all) =>
    evaluate(parseThresholds({ [metric]: [expr] })[0], stats, 100, 10_000);

  it('passes and fails on observed values', () => {
    expect(judge('http_req_failed', 'rate<0.05')).toMatchObject({ ok: true, observed: 0.01, samples: 100 });
    expect(judge('http_req_failed', 'rate<0.005')).toMatchObject({ ok: false, observed: 0.01 });
    expect(judge('http_req_duration', 'max<1000').ok).toBe(true);
    expect(judge('http_req_duration', 'p(99.5)<500').ok).toBe(false);
    expect(judge('http_reqs', 'rate>=10')).toMatchObject({ ok: true, observed: 10 });
    expect(judge('dropped_iterations', 'count==0')).toMatchObject({ ok: true, observed: 0 });
  });
  it('filters by tag', () => {
    const t = parseThresholds({ 'http_req_duration{name:acquire}': ['p(50)<100'] })[0];
    const acquire = new RequestStatistics(tagFilter(t.tags));
    for (let r = 0; r < l.length; r++) acquire.add(l, r);
    expect(acquire.requests).toBe(2);
    expect(judge('http_req_duration', 'med<100', acquire).ok).toBe(true);
    expect(judge('http_req_duration', 'max<100', acquire).ok).toBe(false);
  });
  it('says "no data" instead of passing when a metric has no samples', () => {
    const empty = new RequestStatistics();
    expect(judge('http_req_duration', 'p(99)<250', empty)).toMatchObject({ ok: null, observed: null, samples: 0 });
    expect(judge('http_req_failed', 'rate<0.01', empty)).toMatchObject({ ok: null });
  });
});
