import { Counter, Histogram, Registry, Summary, collectDefaultMetrics } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { family, parseExposition, sampleValue } from './prometheus.ts';

// The exposition check parses prom-client's own output (what the license API serves) and refuses
// what only looks like it.
describe('parseExposition', () => {
  it("parses prom-client's output: default metrics, labelled counters with escapes, histograms, summaries", async () => {
    const r = new Registry();
    r.setDefaultLabels({ pod: 'p-1', version: 'v1' });
    collectDefaultMetrics({ register: r });
    const c = new Counter({
      name: 'http_requests_total',
      help: 'requests "quoted" \\ and\nnewline',
      labelNames: ['method', 'route', 'status'],
      registers: [r],
    });
    c.inc({ method: 'GET', route: '/a"b\\c\nd', status: '200' }, 3);
    c.inc({ method: 'POST', route: '/x', status: '500' });
    new Histogram({ name: 'http_request_duration_seconds', help: 'h', labelNames: ['route'], registers: [r] }).observe(
      { route: '/a' },
      0.2,
    );
    new Summary({ name: 's_seconds', help: 's', registers: [r] }).observe(1);
    const e = parseExposition(await r.metrics(), r.contentType);
    expect(e.problems).toEqual([]);
    const f = family(e, 'http_requests_total')!;
    expect(f.type).toBe('COUNTER');
    expect(f.metrics.map((s) => sampleValue(s)).sort((a, b) => a - b)).toEqual([1, 3]);
    expect(f.metrics.find((s) => s.labels?.status === '200')!.labels!.route).toBe('/a"b\\c\nd');
    expect(family(e, 'http_request_duration_seconds')!.type).toBe('HISTOGRAM');
    expect(e.families.length).toBeGreaterThan(10);
  });

  it.each([
    [
      'an HTML page',
      '<html><body>hello</body></html>\n',
      'text/html',
      /Content-Type is "text\/html"|not a metric name|no metric family/,
    ],
    ['an empty body', '', 'text/plain', /the body is empty/],
    ['a broken label set', 'foo{bar="x" 1\n', 'text/plain', /invalid line/i],
    ['a value that is not a number', '# TYPE foo counter\nfoo abc\n', 'text/plain', /sample value "abc" is not a number/],
    ['no final line feed', 'foo 1', 'text/plain', /does not end with a line feed/],
    ['a bad metric name', '1foo 1\n', 'text/plain', /is not a metric name/],
    ['JSON', '{"metrics": []}\n', 'application/json', /Content-Type is "application\/json"/],
  ])('refuses %s', (_name, text, ct, problem) => {
    const e = parseExposition(text, ct);
    expect(e.problems.join('; ')).toMatch(problem);
  });

  it('takes special float values', () => {
    const e = parseExposition(
      '# TYPE g gauge\ng{a="1"} +Inf\ng{a="2"} NaN\ng{a="3"} -1.5e-3 1700000000000\n',
      'text/plain; version=0.0.4',
    );
    expect(e.problems).toEqual([]);
    expect(family(e, 'g')!.metrics.map(sampleValue)).toEqual([Infinity, NaN, -0.0015]);
  });
});
