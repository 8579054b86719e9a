import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../../license-api/test/harness.ts';
import { runLoad } from '../../lib/load/engine.ts';
import { joinLedger } from '../../lib/evidence/join.ts';
import { Timeline } from '../../lib/evidence/timeline.ts';
import { creatorOf, licenseFlow, type SessionCreator } from './load-scenario.ts';
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
    const iteration0 = [...r.ledger.rows()].filter((row) => row.iteration === 0);
    expect(iteration0.map((row) => `${row.name}:${row.status}`)).toEqual([
      'acquire:201',
      'heartbeat:200',
      'heartbeat:200',
      'release:200',
    ]);
    // Every request has its kind; those on the session name who created it (the acquire's version and pod).
    expect(iteration0.map((row) => row.kind)).toEqual([
      'POST /api/v1/licenses/acquire {hardware_id:string,license_key:string}',
      'POST /api/v1/licenses/heartbeat {session_id:string}',
      'POST /api/v1/licenses/heartbeat {session_id:string}',
      'POST /api/v1/licenses/release {session_id:string}',
    ]);
    expect(iteration0.map((row) => row.createdBy)).toEqual([null, ...Array(3).fill({ version: '1.4.2', pod: 'api-pod-1' })]);
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

/**
 * A rollout as the clients see it: a front on loopback that sends every request to v1 until the
 * switch, then to v2 (two real license APIs on one database, v2 with a fault switch).
 */
async function rollingFront(v1: TestApi, v2: TestApi): Promise<{ url: string; switchToV2(): void; close(): Promise<void> }> {
  let backend = v1;
  const server: Server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks).toString();
      const to = backend;
      const r = await fetch(to.url + req.url, {
        method: req.method,
        headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
        body: req.method === 'POST' ? body : undefined,
      });
      const text = await r.text();
      res.writeHead(r.status, {
        'content-type': r.headers.get('content-type') ?? 'application/json',
        'x-app-version': r.headers.get('x-app-version') ?? '',
        'x-served-by': r.headers.get('x-served-by') ?? '',
      });
      res.end(text);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    switchToV2: () => {
      backend = v2;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Held sessions opened through the front before the load (by v1), with who created each. */
async function holdSessions(
  url: string,
  token: string,
  n: number,
): Promise<{ ids: string[]; creators: Record<string, SessionCreator> }> {
  const ids: string[] = [];
  const creators: Record<string, SessionCreator> = {};
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${url}/api/v1/licenses/acquire`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ license_key: 'LOAD-KEY', hardware_id: `held-${i}` }),
    });
    const id = ((await r.json()) as { session_id: string }).session_id;
    ids.push(id);
    creators[id] = creatorOf(Object.fromEntries(r.headers));
  }
  return { ids, creators };
}

// The two classic rolling-update breakages, with the real scenario through a real rollout of real
// license APIs on loopback: every failure gets a cause that names the versions, none is unknown.
describe('the license load names the rolling-update breakages', () => {
  async function rollout(v2Env: Record<string, string>) {
    await using v1 = await startTestApi({ LICENSE_SEED: 'LOAD-KEY=100000', POD_NAME: 'api-v1', APP_VERSION: 'v1' });
    // One database, as a rollout has: what v2 cannot see, only its own code hides from it.
    await using v2 = await startTestApi({
      LICENSE_SEED: 'LOAD-KEY=100000',
      POD_NAME: 'api-v2',
      APP_VERSION: 'v2',
      DATABASE_URL: v1.databaseUrl,
      ...v2Env,
    });
    const front = await rollingFront(v1, v2);
    try {
      const held = await holdSessions(front.url, v1.token, 4);
      const timer = setTimeout(() => front.switchToV2(), 1200);
      const r = await runLoad({
        url: front.url,
        scenario: licenseFlow({
          token: v1.token,
          licenseKey: 'LOAD-KEY',
          sessions: held.ids,
          heartbeatWeight: 1,
          sessionCreators: held.creators,
        }),
        executor: { executor: 'constant-arrival-rate', rate: 30, duration: '2.5s' },
        identityHeaders: licenseApi.identityHeaders,
        minRequests: 1,
      });
      clearTimeout(timer);
      return joinLedger(r.ledger, {
        timeline: new Timeline(),
        unknownResourceStatuses: licenseApi.unknownResource!.statuses,
        resourceName: licenseApi.unknownResource!.what,
      });
    } finally {
      await front.close();
    }
  }

  it("a v2 that answers 400 to the old clients' heartbeats: contract-break, v1 accepted the same kind", async () => {
    // The real fault switch: v2 requires a client_version field the old clients do not send.
    const j = await rollout({ FAULT_REQUIRE_CLIENT_VERSION: '1' });
    expect(j.failed).toBeGreaterThan(10);
    expect(new Set(j.failures.map((f) => f.cause))).toEqual(new Set(['contract-break']));
    const f = j.failures[0];
    expect(f).toMatchObject({ version: 'v2', route: 'POST /api/v1/licenses/heartbeat', status: 400 });
    expect(f.contrast).toMatchObject({ version: 'v1', pod: 'api-v1', status: 200 });
  }, 60_000);

  it('a v2 that keeps sessions in its own process (sessions of v1 unknown to it): state-not-shared, with the creating and the answering version', async () => {
    // The real fault switch: v2 knows only the sessions it created itself.
    const j = await rollout({ FAULT_SESSIONS_IN_PROCESS: '1' });
    expect(j.failed).toBeGreaterThan(10);
    expect(new Set(j.failures.map((f) => f.cause))).toEqual(new Set(['state-not-shared']));
    const f = j.failures[0];
    expect(f).toMatchObject({ version: 'v2', pod: 'api-v2', status: 404, createdBy: { version: 'v1', pod: 'api-v1' } });
    expect(f.reason).toMatch(
      /^a session created by v1, pod api-v1 is unknown to v2, pod api-v2: HTTP 404; v2 accepted \d+ requests/,
    );
  }, 60_000);
});
