import { describe, expect, it } from 'vitest';
import { runLoad } from './engine.ts';
import { ok, startTestServer, status } from './testing/servers.ts';

const steady = { executor: 'constant-arrival-rate' as const, rate: 200, duration: '1s' };
// Tests that expect PASS tolerate a busy test machine: the generator-overload rule has its own test.
const tolerant = { maxScheduleDelay: '1s' };

describe('thresholds in a run', () => {
  it('pass: PASS', async () => {
    await using server = await startTestServer(ok());
    const r = await runLoad({
      url: server.url,
      executor: steady,
      ...tolerant,
      thresholds: {
        http_req_failed: ['rate<0.01'],
        http_req_duration: ['p(95)<1000'],
        dropped_iterations: ['count==0'],
        http_reqs: ['count>=190'],
      },
    });
    expect(r.thresholds.map((t) => t.ok)).toEqual([true, true, true, true]);
    expect(r.assessment).toEqual({ verdict: 'PASS', reasons: [] });
  });

  it('fail: FAIL, naming the threshold and what was observed', async () => {
    await using server = await startTestServer((req, res, n) => (n % 10 === 0 ? status(500) : ok())(req, res, n));
    const r = await runLoad({
      url: server.url,
      executor: steady,
      thresholds: { http_req_failed: ['rate<0.01'], 'http_req_duration{status:500}': ['max<5000'] },
    });
    expect(r.thresholds[0]).toMatchObject({ ok: false, observed: 0.1, samples: 200 });
    expect(r.thresholds[1]).toMatchObject({ ok: true, samples: 20 });
    expect(r.assessment.verdict).toBe('FAIL');
    expect(r.assessment.reasons[0]).toMatch(/http_req_failed: rate<0.01 breached \(observed 0.1, 200 samples\)/);
  });

  it('no data and too little data: INCONCLUSIVE, never PASS', async () => {
    await using server = await startTestServer(ok());
    const r = await runLoad({
      url: server.url,
      executor: steady,
      minRequests: 1000,
      thresholds: { 'http_req_duration{name:nothing-has-this-name}': ['p(99)<250'], http_req_failed: ['rate<0.01'] },
    });
    expect(r.thresholds[0]).toMatchObject({ ok: null, samples: 0 });
    expect(r.assessment.verdict).toBe('INCONCLUSIVE');
    expect(r.assessment.reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/has no data/),
        expect.stringMatching(/only 200 requests ended; at least 1000/),
      ]),
    );
    const none = await runLoad({ url: server.url, executor: steady, ...tolerant });
    expect(none.assessment).toMatchObject({ verdict: 'INCONCLUSIVE', reasons: [expect.stringMatching(/no thresholds/)] });
  });

  it('a generator that falls behind its schedule: INCONCLUSIVE', async () => {
    await using server = await startTestServer(ok());
    // Block this process's event loop for 300 ms in the middle of the run, as an overloaded machine would.
    setTimeout(() => {
      const until = performance.now() + 300;
      while (performance.now() < until);
    }, 500);
    const r = await runLoad({
      url: server.url,
      executor: { ...steady, duration: '1.5s' },
      thresholds: { http_req_failed: ['rate<0.01'] },
    });
    expect(r.summary.counts.failed).toBe(0);
    expect(r.summary.metrics.schedule_delay!['p(99)']).toBeGreaterThan(100);
    expect(r.assessment.verdict).toBe('INCONCLUSIVE');
    expect(r.assessment.reasons.join()).toMatch(/fell behind its schedule/);
  });

  it('load below target: INCONCLUSIVE', async () => {
    // Every request takes 300 ms and only 5 may be in flight: most arrivals are dropped.
    await using server = await startTestServer((req, res, n) => {
      setTimeout(() => ok()(req, res, n), 300);
    });
    const r = await runLoad({
      url: server.url,
      executor: { ...steady, maxVUs: 5 },
      minRequests: 1,
      thresholds: { http_req_failed: ['rate<0.01'] },
    });
    expect(r.summary.counts.dropped).toBeGreaterThan(100);
    expect(r.assessment.verdict).toBe('INCONCLUSIVE');
    expect(r.assessment.reasons.join()).toMatch(/achieved load below target/);
  });

  it('abortOnFail stops the run early and FAILs it', async () => {
    await using server = await startTestServer(status(503));
    const r = await runLoad({
      url: server.url,
      executor: { executor: 'constant-arrival-rate', rate: 200, duration: '20s' },
      thresholds: { http_req_failed: [{ threshold: 'rate<0.1', abortOnFail: true, delayAbortEval: '300ms' }] },
    });
    expect(r.summary.run.elapsedMs).toBeLessThan(5000);
    expect(r.summary.run.abortReason).toMatch(/http_req_failed: rate<0.1 breached/);
    expect(r.assessment.verdict).toBe('FAIL');
    expect(r.summary.counts.pending).toBe(0);
  });
});
