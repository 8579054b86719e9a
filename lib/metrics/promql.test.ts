import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../license-api/test/harness.ts';
import { metricGates } from '../../reports/metric-gates.ts';
import { startPrometheus, type PrometheusServer } from '../services/prometheus.ts';
import { PromqlSource } from './promql.ts';
import type { Measurement, MetricWindow, OkMeasurement } from './source.ts';

// The PromQL source against a real Prometheus (Debian's package) scraping two license APIs every
// second: v1 as shipped, v2 with its fault switch on (every license request answers 500).
// Phase A: v1 traffic only. Phase B: v1 and v2 side by side. Traffic is steady and each window
// lies inside its phase (as a gate's window lies inside real traffic); what "was sent" in a window
// is what the client saw answered in it. The windows are 22 s long: the app's /metrics snapshot is
// up to 1 s old and the scrape every 1 s, so each edge of a window can be off by about 2 s of
// traffic (increase() extrapolates from the first and last samples), which is ~9% of 22 s.

let v1: TestApi;
let v2: TestApi;
let prom: PrometheusServer | undefined;
let sessionId: string;
type Answer = { at: number; version: 'v1' | 'v2'; status: number };
const answers: Answer[] = [];
let windowA: MetricWindow;
let windowB: MetricWindow;

// A generous objective: this gate's latency is not under test, and the machine may be busy.
const gateOptions = { maxErrorRate: 0.01, minRequests: 100, p99Ms: 5000 };
const compare = { baseline: 'v1', candidate: 'v2', minRequestsPerVersion: 50 };

/** `count` calls of `fn`, `perSecond` a second, evenly spaced (steady, as increase() assumes). */
async function paced(count: number, perSecond: number, fn: (i: number) => Promise<void>): Promise<void> {
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push(fn(i));
  }
  await Promise.all(inFlight);
}

async function heartbeat(api: TestApi, id: string): Promise<number> {
  const { status } = await api.post('/api/v1/licenses/heartbeat', { session_id: id });
  answers.push({ at: Date.now(), version: api === v1 ? 'v1' : 'v2', status });
  return status;
}

/** Runs `seconds` of traffic and returns the window inside it (1.5 s in from each end). */
async function phase(seconds: number, perSecond: number, fn: (i: number) => Promise<void>): Promise<MetricWindow> {
  const began = Date.now();
  await paced(seconds * perSecond, perSecond, fn);
  const ended = Date.now();
  return { from: new Date(began + 1500), to: new Date(ended - 1500) };
}

const sentIn = (w: MetricWindow, f: (a: Answer) => boolean = () => true) =>
  answers.filter((a) => a.at >= w.from.getTime() && a.at < w.to.getTime() && f(a)).length;

beforeAll(async () => {
  v1 = await startTestApi({ APP_VERSION: 'v1', POD_NAME: 'pod-v1' });
  v2 = await startTestApi({ APP_VERSION: 'v2', POD_NAME: 'pod-v2', FAULT_ERRORS_AFTER_START_MS: '600000' });
  prom = await startPrometheus({
    jobs: [{ name: 'license-api', targets: [new URL(v1.url).host, new URL(v2.url).host] }],
    scrapeIntervalSeconds: 1,
  });
  await prom.waitForTargets();
  const acquired = await v1.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'hw-1' });
  expect(acquired.status).toBe(201);
  sessionId = acquired.body.session_id;
  // Warm-up: every series the windows count exists before they start (increase() cannot count
  // the first scrape of a series born inside a window).
  expect(await heartbeat(v1, sessionId)).toBe(200);
  expect(await heartbeat(v1, 'no-such-session')).toBe(404);
  expect(await heartbeat(v2, sessionId)).toBe(500);
  await sleep(2500);
  // A: 40/s to v1, one in 20 a 404.
  windowA = await phase(25, 40, async (i) => {
    await heartbeat(v1, i % 20 === 19 ? 'no-such-session' : sessionId);
  });
  // B: 60/s, v1 and v2 in turn (v2 answers 500).
  windowB = await phase(25, 60, async (i) => {
    await heartbeat(i % 2 ? v2 : v1, sessionId);
  });
  await sleep(3000); // the last answers scraped
}, 150_000);

afterAll(async () => {
  await prom?.stop();
  await v1?.[Symbol.asyncDispose]();
  await v2?.[Symbol.asyncDispose]();
});

const source = (o: Partial<ConstructorParameters<typeof PromqlSource>[0]> = {}) =>
  new PromqlSource({ baseUrl: prom!.url, stepSeconds: 5, minSamples: 2, timeoutMs: 10_000, ...o });

function expectOk(m: Measurement): OkMeasurement {
  if (m.status !== 'ok') throw new Error(`expected an ok measurement, got ${m.status}: ${m.message}`);
  return m;
}

describe('promql source against a real Prometheus', () => {
  it('good traffic: ok, counts close to what was sent, per version, with the queries and samples as evidence', async () => {
    const m = expectOk(await source().measure(windowA));
    const sent = sentIn(windowA);
    const sent404 = sentIn(windowA, (a) => a.status === 404);
    console.log(
      `window A (${((windowA.to.getTime() - windowA.from.getTime()) / 1000).toFixed(1)} s): answered ${sent} (${sent404} 404); ` +
        `measured ${m.total} (${m.failed4xx} 4xx, ${m.failed} 5xx), p99 ${m.p99Ms} ms, ${m.evidence.samples} samples`,
    );
    expect(Math.abs(m.total - sent) / sent).toBeLessThan(0.15);
    expect(m.failed).toBe(0);
    expect(Math.abs(m.failed4xx! - sent404)).toBeLessThanOrEqual(Math.max(3, sent404 * 0.2));
    expect(m.p99Ms).toBeGreaterThan(0);
    expect(m.byVersion.v1.total).toBe(m.total);
    expect(m.byVersion.v2?.total ?? 0).toBe(0);
    expect(m.evidence.queries[0]).toMatch(
      /^sum by \(version\) \(increase\(http_requests_total\{route!~"\/metrics\|\/health\/\.\*"\}\[\d+ms\]\)\)$/,
    );
    expect(m.evidence.samples).toBeGreaterThanOrEqual(20);
    expect(m.evidence.points.requests.length).toBeGreaterThanOrEqual(2);
    expect(metricGates([m], gateOptions).verdict).toBe('PASS');
    // v2 served nothing here: no comparison is made (the absolute gates judge v1).
    expect(metricGates([m], { ...gateOptions, compare }).gates.map((g) => g.name)).toEqual([
      'promql: error rate',
      'promql: p99 latency',
    ]);
  });

  it('injected 500s: the error-rate gate and the canary comparison FAIL', async () => {
    const m = expectOk(await source().measure(windowB));
    const sentV1 = sentIn(windowB, (a) => a.version === 'v1');
    const sentV2 = sentIn(windowB, (a) => a.version === 'v2');
    console.log(
      `window B: answered v1 ${sentV1}, v2 ${sentV2} (all 500); measured v1 ${m.byVersion.v1?.total}, v2 ${m.byVersion.v2?.total} with ${m.byVersion.v2?.failed} 5xx`,
    );
    expect(Math.abs(m.byVersion.v2.failed - sentV2) / sentV2).toBeLessThan(0.15);
    expect(Math.abs(m.byVersion.v1.total - sentV1) / sentV1).toBeLessThan(0.15);
    expect(m.byVersion.v1.failed).toBe(0);
    const { gates, verdict } = metricGates([m], { ...gateOptions, compare });
    expect(verdict).toBe('FAIL');
    const byName = Object.fromEntries(gates.map((g) => [g.name, g]));
    expect(byName['promql: error rate'].verdict).toBe('FAIL');
    expect(byName['promql: v2 vs v1 error rate']).toMatchObject({
      verdict: 'FAIL',
      evidence: expect.stringMatching(/Fisher's exact test .*95% confidence.*v2 fails more often/),
    });
  });

  it('a query for a metric that does not exist: no-data naming the query, never PASS', async () => {
    const m = await source({
      queries: { requests: 'sum by (version) (increase(no_such_metric_total{$selector}[$step]))' },
    }).measure(windowA);
    expect(m.status).toBe('no-data');
    expect(m.message).toMatch(
      /^promql: query `sum by \(version\) \(increase\(no_such_metric_total\{.*\}\[\d+ms\]\)\)` returned no series/,
    );
    expect(metricGates([m], gateOptions).verdict).toBe('INCONCLUSIVE');
  });

  it('fewer raw samples than the minimum is no-data', async () => {
    const m = await source({ minSamples: 100_000 }).measure(windowA);
    expect(m).toMatchObject({
      status: 'no-data',
      message: expect.stringMatching(
        /^promql: query `sum\(count_over_time\(http_requests_total\{.*\}\[\d+ms\]\)\)` found \d+ samples, fewer than the 100000 needed/,
      ),
    });
  });

  it('a query Prometheus rejects: error with its message and the query', async () => {
    const m = await source({ queries: { failed: 'sum(rate(http_requests_total[' } }).measure(windowA);
    expect(m.status).toBe('error');
    expect(m.message).toMatch(
      /^promql: HTTP 400 from http:\/\/127\.0\.0\.1:\d+ for query `sum\(rate\(http_requests_total\[`: bad_data: /,
    );
    expect(metricGates([m], gateOptions).verdict).toBe('ERROR');
  });

  it('a server that never answers: error after the timeout, never PASS', async () => {
    const silent: Server = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const m = await source({ baseUrl: url, timeoutMs: 500 }).measure(windowA);
      expect(m.status).toBe('error');
      expect(m.message).toMatch(new RegExp(`^promql: no answer from ${url} within 0\\.5 s for query \`.+\`$`));
      expect(metricGates([m], gateOptions).verdict).toBe('ERROR');
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });

  it('the caller aborting rejects instead of judging', async () => {
    const ac = new AbortController();
    ac.abort(new Error('gate cancelled'));
    await expect(source().measure(windowA, ac.signal)).rejects.toThrow('gate cancelled');
  });

  it('Prometheus stopped: error naming the source and the query, the gate does not PASS', async () => {
    await prom!.pause();
    const m = await source().measure(windowA);
    expect(m.status).toBe('error');
    expect(m.message).toMatch(
      /^promql: cannot reach http:\/\/127\.0\.0\.1:\d+ for query `.+`: fetch failed: connect ECONNREFUSED 127\.0\.0\.1:\d+/,
    );
    const { gates, verdict } = metricGates([m], gateOptions);
    expect(verdict).toBe('ERROR');
    expect(gates.map((g) => g.verdict)).toEqual(['ERROR', 'ERROR']);
  });
});
