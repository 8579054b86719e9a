import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLoad, startLoad, type Progress } from './engine.ts';
import { defineScenario } from './scenario.ts';
import { ok, startTestServer } from './testing/servers.ts';

describe('ledger accounting', () => {
  it('scheduled = succeeded + failed + dropped, row by row, in a run with all three', async () => {
    // Every 4th request stalls past the timeout, every 4th gets a 503: with maxVUs 10 the stalls
    // fill every VU and later arrivals are dropped.
    await using server = await startTestServer((req, res, n) => {
      const kind = n % 4;
      if (kind === 0) {
        res.writeHead(503, { 'x-served-by': 'pod-c' });
        res.end();
        return;
      }
      if (kind === 3) {
        setTimeout(() => {
          if (!res.destroyed) ok('pod-b')(req, res, n);
        }, 600);
        return;
      }
      ok(kind === 1 ? 'pod-a' : 'pod-b', '2.0.0')(req, res, n);
    });
    const r = await runLoad({
      url: server.url,
      executor: { executor: 'constant-arrival-rate', rate: 200, duration: '1s', maxVUs: 10 },
      connections: 10,
      timeout: 300,
      thresholds: { http_req_failed: ['rate<1'] },
      identityHeaders: { backend: 'x-served-by', version: 'x-app-version' },
    });
    const c = r.summary.counts;
    expect(c.scheduled).toBe(200);
    expect(c.succeeded).toBeGreaterThan(0);
    expect(c.failed).toBeGreaterThan(0);
    expect(c.dropped).toBeGreaterThan(0);
    expect(c.pending).toBe(0);
    expect(c.succeeded + c.failed + c.dropped).toBe(c.scheduled);
    expect(r.ledger.tally()).toEqual({ pending: 0, succeeded: c.succeeded, failed: c.failed, dropped: c.dropped });
    expect(c.iterations.dropped).toBe(c.dropped);
    expect(r.summary.errors).toEqual({ http_5xx: expect.any(Number), timeout: expect.any(Number) });
    let started = 0;
    for (const row of r.ledger.rows()) {
      expect(row.issuedAt).toBeGreaterThanOrEqual(row.scheduledAt);
      if (row.outcome === 'dropped') {
        expect(row).toMatchObject({ startedAt: null, endedAt: null, status: 0, error: null });
        continue;
      }
      if (row.startedAt !== null) {
        started++;
        expect(row.startedAt).toBeGreaterThanOrEqual(row.issuedAt);
        expect(row.endedAt).toBeGreaterThanOrEqual(row.startedAt);
      }
      if (row.outcome === 'succeeded') {
        expect(row.error).toBeNull();
        expect(['pod-a', 'pod-b']).toContain(row.servedBy);
      } else {
        expect(row.error).not.toBeNull();
      }
    }
    expect(server.requests()).toBe(started); // every row with a start reached the server, and only those
    expect(r.summary.appVersions['2.0.0']).toBeGreaterThan(0);
  });

  it('streams the ledger to NDJSON, one line per row', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'verdict-ndjson-'));
    try {
      await using server = await startTestServer(ok());
      const file = join(dir, 'requests.ndjson');
      const r = await runLoad({
        url: server.url,
        executor: { executor: 'constant-arrival-rate', rate: 300, duration: '700ms' },
        ndjson: file,
      });
      const lines = (await readFile(file, 'utf8')).trim().split('\n');
      expect(lines).toHaveLength(r.ledger.length);
      expect(r.summary.ledger.ndjsonRows).toBe(r.ledger.length);
      const byRow = new Map(
        lines.map((l) => {
          const o = JSON.parse(l);
          return [o.row, l];
        }),
      );
      for (let row = 0; row < r.ledger.length; row++) expect(byRow.get(row)).toBe(r.ledger.toNdjsonLine(row));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('flows', () => {
  it('carries values between steps and mixes flows by weight', async () => {
    const sessions = new Map<string, string>();
    let next = 0;
    await using server = await startTestServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const json = body ? JSON.parse(body) : {};
        const send = (code: number, obj: unknown) => {
          res.writeHead(code, { 'content-type': 'application/json', 'x-served-by': 'api-0' });
          res.end(JSON.stringify(obj));
        };
        if (req.url === '/acquire') {
          const id = `s${next++}`;
          sessions.set(id, json.hardware_id);
          send(201, { session_id: id });
        } else if (req.url === '/heartbeat') send(sessions.has(json.session_id) ? 200 : 404, {});
        else if (req.url === '/release') send(sessions.delete(json.session_id) ? 200 : 404, {});
        else send(200, { ok: true });
      });
    });
    const scenario = defineScenario({
      headers: { authorization: 'Bearer test' },
      flows: [
        {
          name: 'license',
          weight: 3,
          data: (i) => ({ hw: `hw-${i}` }),
          steps: [
            {
              name: 'acquire',
              method: 'POST',
              path: '/acquire',
              body: (c) => ({ license_key: 'K', hardware_id: (c.data as { hw: string }).hw }),
              expectStatus: [200, 201],
              capture: (res, c) => {
                c.vars.session = res.json<{ session_id: string }>().session_id;
              },
            },
            {
              name: 'heartbeat',
              method: 'POST',
              path: '/heartbeat',
              body: (c) => ({ session_id: c.vars.session }),
              thinkTimeMs: 5,
            },
            { name: 'release', method: 'POST', path: '/release', body: (c) => ({ session_id: c.vars.session }) },
          ],
        },
        { name: 'health', weight: 1, steps: [{ name: 'ready', path: '/health/ready' }] },
      ],
    });
    const r = await runLoad({
      url: server.url,
      scenario,
      executor: { executor: 'constant-arrival-rate', rate: 100, duration: '800ms' },
    });
    const n = r.summary.byName;
    expect(r.summary.counts.failed).toBe(0);
    expect(r.summary.counts.iterations.started).toBe(80);
    expect(n.acquire.requests).toBe(60); // weights 3:1, interleaved deterministically
    expect(n.ready.requests).toBe(20);
    expect(n.heartbeat.requests).toBe(60);
    expect(n.release.requests).toBe(60);
    expect(sessions.size).toBe(0); // every session acquired was released with its own id
    // Steps of one iteration share the iteration number; later steps are scheduled after earlier ones end.
    const rows = [...r.ledger.rows()].filter((row) => row.iteration === 0);
    expect(rows.map((row) => row.name)).toEqual(['acquire', 'heartbeat', 'release']);
    expect(rows[1].scheduledAt).toBeGreaterThanOrEqual(rows[0].endedAt!);
    expect(rows[2].scheduledAt - rows[1].endedAt!).toBeGreaterThanOrEqual(4.9); // think time
  });
});

describe('bounds and control', () => {
  it('stops at the request cap', async () => {
    await using server = await startTestServer(ok());
    const r = await runLoad({
      url: server.url,
      executor: { executor: 'constant-arrival-rate', rate: 1000, duration: '20s' },
      maxRequests: 50,
    });
    expect(r.summary.counts.scheduled).toBe(50);
    expect(r.summary.run.stopReason).toBe('request cap reached');
    expect(r.summary.run.elapsedMs).toBeLessThan(5000);
  });

  it('aborts on request, reports progress, and never calls an aborted run a pass', async () => {
    await using server = await startTestServer((req, res, n) => {
      setTimeout(() => ok()(req, res, n), 50);
    });
    const seen: Progress[] = [];
    const run = await startLoad({
      url: server.url,
      executor: { executor: 'constant-arrival-rate', rate: 200, duration: '20s' },
      progressIntervalMs: 100,
      onProgress: (p) => seen.push(p),
      thresholds: { http_req_failed: ['rate<0.5'] },
      minRequests: 1,
    });
    await new Promise((r) => setTimeout(r, 600));
    expect(run.progress().phase).toBe('running');
    run.abort('test is done');
    const r = await run.result;
    expect(r.summary.run.abortReason).toBe('test is done');
    expect(r.summary.run.elapsedMs).toBeLessThan(3000);
    expect(r.summary.counts.pending).toBe(0);
    expect(r.summary.errors.aborted).toBeGreaterThan(0); // the requests that were in flight ...
    expect(r.summary.counts.abortedByRun).toBe(r.summary.errors.aborted);
    expect(r.summary.metrics.http_req_failed.fails).toBe(0); // ... are not held against the server
    expect(r.thresholds[0].ok).toBe(true);
    expect(r.assessment.verdict).toBe('INCONCLUSIVE');
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.at(-1)!.phase).toBe('done');
    expect(seen.some((p) => p.succeeded > 0 && p.recentRate > 0)).toBe(true);
  });

  it('stop() ends a run gracefully: no new iteration starts, running ones finish every step, nothing is aborted', async () => {
    // Each step takes 150 ms, so at any moment iterations are mid-flow (between open and close).
    await using server = await startTestServer((_req, res) => {
      setTimeout(() => {
        res.writeHead(200);
        res.end('ok');
      }, 150);
    });
    const scenario = defineScenario({
      flows: [
        {
          name: 'open-use-close',
          steps: [
            { name: 'open', path: '/open' },
            { name: 'use', path: '/use' },
            { name: 'close', path: '/close' },
          ],
        },
      ],
    });
    const run = await startLoad({
      url: server.url,
      scenario,
      executor: { executor: 'constant-arrival-rate', rate: 40, duration: '20s' },
    });
    await new Promise((res) => setTimeout(res, 700));
    run.stop('enough');
    const r = await run.result;
    expect(r.summary.run.abortReason).toBeNull();
    expect(r.summary.run.stopReason).toBe('enough');
    expect(r.summary.counts.abortedByRun).toBe(0);
    expect(r.summary.counts.iterations.interrupted).toBe(0);
    const rows = [...r.ledger.rows()];
    const opened = rows.filter((x) => x.name === 'open' && x.outcome === 'succeeded').length;
    expect(opened).toBeGreaterThan(10);
    // Every flow that opened also closed.
    expect(rows.filter((x) => x.name === 'close' && x.outcome === 'succeeded').length).toBe(opened);
  });

  it('stops on an AbortSignal and on disposal', async () => {
    await using server = await startTestServer(ok());
    const r = await runLoad({
      url: server.url,
      executor: { executor: 'constant-vus', vus: 2, duration: '20s' },
      signal: AbortSignal.timeout(300),
    });
    expect(r.summary.run.abortReason).toMatch(/^signal/);
    expect(r.summary.run.elapsedMs).toBeLessThan(3000);
    const t0 = performance.now();
    {
      await using run = await startLoad({ url: server.url, executor: { executor: 'constant-vus', vus: 2, duration: '20s' } });
      while (run.progress().succeeded === 0 && performance.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 20));
      expect(run.progress().succeeded).toBeGreaterThan(0);
    }
    expect(performance.now() - t0).toBeLessThan(8000);
  });
});

describe('ramping executors', () => {
  it('ramping-arrival-rate follows its stages', async () => {
    await using server = await startTestServer(ok());
    const r = await runLoad({
      url: server.url,
      executor: {
        executor: 'ramping-arrival-rate',
        startRate: 0,
        stages: [
          { target: 400, duration: '1s' },
          { target: 400, duration: '500ms' },
        ],
      },
    });
    expect(r.summary.counts.scheduled).toBe(400); // 200 on the ramp + 200 on the plateau
    const firstHalf = [...r.ledger.rows()].filter((row) => row.scheduledAt < 500).length;
    expect(firstHalf).toBe(50); // area under the ramp from 0 to 0.5 s: 0.5 × 200/s × 0.5 s
  });

  it('ramping-vus never runs more VUs than planned', async () => {
    await using server = await startTestServer((req, res, n) => {
      setTimeout(() => ok()(req, res, n), 5);
    });
    const r = await runLoad({
      url: server.url,
      executor: {
        executor: 'ramping-vus',
        startVUs: 0,
        stages: [
          { target: 4, duration: '400ms' },
          { target: 4, duration: '400ms' },
          { target: 0, duration: '300ms' },
        ],
      },
    });
    const rows = [...r.ledger.rows()];
    const events = rows
      .flatMap(
        (row) =>
          [
            [row.issuedAt, 1],
            [row.endedAt!, -1],
          ] as const,
      )
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0,
      peak = 0;
    for (const [, d] of events) {
      now += d;
      peak = Math.max(peak, now);
    }
    expect(peak).toBe(4);
    expect(r.summary.counts.failed).toBe(0);
    expect(rows.filter((row) => row.issuedAt < 100).length).toBeLessThan(
      rows.filter((row) => row.issuedAt >= 400 && row.issuedAt < 500).length,
    );
  });
});
