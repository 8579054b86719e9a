import { describe, expect, it } from 'vitest';
import { startTestApi } from '../../license-api/test/harness.ts';
import { runLoad } from '../../lib/load/engine.ts';
import { licenseFlow } from './load-scenario.ts';
import { licenseApi } from './profile.ts';

// The scenario against the real license API (real Postgres and Redis from the suite's global setup).
describe('license flow scenario', () => {
  it('acquires, heartbeats and releases under load, carrying each session id', async () => {
    await using api = await startTestApi({ LICENSE_SEED: 'LOAD-KEY=100000', POD_NAME: 'api-pod-1', APP_VERSION: '1.4.2' });
    const r = await runLoad({
      url: api.url,
      scenario: licenseFlow({ token: api.token, licenseKey: 'LOAD-KEY', heartbeats: 2, probeWeight: 1 }),
      executor: { executor: 'constant-arrival-rate', rate: 40, duration: '2s' },
      thresholds: { http_req_failed: ['rate<0.01'], 'http_req_duration{name:acquire}': ['p(99)<2000'] },
      identityHeaders: licenseApi.identityHeaders,
      minRequests: 50,
      maxScheduleDelay: '1s', // PASS here is about the flow, not about the machine's load
    });
    const n = r.summary.byName;
    expect(r.summary.errors).toEqual({});
    expect(n.acquire.requests).toBe(40);
    expect(n.heartbeat.requests).toBe(80);
    expect(n.release.requests).toBe(40);
    expect(n.ready.requests).toBe(40);
    expect(r.summary.servedBy).toEqual({ 'api-pod-1': r.summary.counts.succeeded });
    expect(r.summary.appVersions).toEqual({ '1.4.2': r.summary.counts.succeeded });
    expect(r.assessment.verdict).toBe('PASS');
    // No errors at all means every heartbeat and release named a live session: an unknown id is a 404.
    const iteration0 = [...r.ledger.rows()].filter((row) => row.iteration === 0).map((row) => `${row.name}:${row.status}`);
    expect(iteration0).toEqual(['acquire:201', 'heartbeat:200', 'heartbeat:200', 'release:200']);
  }, 30_000);

  it('a bad token fails every license request as 4xx, and the run FAILs', async () => {
    await using api = await startTestApi({ LICENSE_SEED: 'LOAD-KEY=10' });
    const r = await runLoad({
      url: api.url,
      scenario: licenseFlow({ token: 'not-a-jwt', licenseKey: 'LOAD-KEY' }),
      executor: { executor: 'constant-arrival-rate', rate: 50, duration: '1s' },
      thresholds: { http_req_failed: ['rate<0.01'] },
      minRequests: 1,
    });
    expect(r.summary.errors).toEqual({ http_4xx: 50 });
    expect(r.summary.statuses).toEqual({ 401: 50 });
    expect(r.summary.counts.iterations.failed).toBe(50); // no heartbeat or release without a session
    expect(r.assessment.verdict).toBe('FAIL');
  }, 30_000);
});
