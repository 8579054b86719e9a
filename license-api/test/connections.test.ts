import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { MAX_IN_FLIGHT_PER_CONNECTION } from '../src/connections.ts';
import { mintToken, spawnApi, startTestApi, type ApiProcess } from './harness.ts';

/** Resident set size of a process (bytes), as the kernel counts it against a pod's memory limit. */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

const MB = 1024 * 1024;

/** Samples the RSS every 100 ms until stopped; returns the highest sample. */
function rssPeak(pid: number) {
  let peak = rss(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rss(pid));
    } catch {
      /* the process is gone: the test will say why */
    }
  }, 100);
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

/** `n` sockets that each write `text` once and never read (paused: the kernel buffers fill up). */
function nonReaders(port: number, n: number, text: string): Socket[] {
  return Array.from({ length: n }, () => {
    const s = connect({ host: '127.0.0.1', port });
    s.pause();
    s.on('error', () => {});
    s.once('connect', () => s.write(text));
    return s;
  });
}

/** What a well-behaved client gets meanwhile: a probe and a license request, each within 3 s. */
async function normalClient(api: ApiProcess, token: string, i: number): Promise<string> {
  const live = await fetch(`${api.url}/health/live`, { signal: AbortSignal.timeout(3000) }).then(
    (r) => String(r.status),
    (e) => (e as Error).name,
  );
  const acquire = await fetch(`${api.url}/api/v1/licenses/acquire`, {
    method: 'POST',
    body: JSON.stringify({ license_key: 'TEST-KEY', hardware_id: `normal-${i}` }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(3000),
  }).then(
    (r) => String(r.status),
    (e) => (e as Error).name,
  );
  return `${live}/${acquire}`;
}

describe('pipelining clients that never read (issue 19, item 1)', () => {
  it('20 sockets x 5,000 pipelined GETs of /metrics, then of /health/live, never read: RSS stays bounded, a normal client is answered', async () => {
    await using api = await spawnApi({ LOG_LEVEL: 'warn' });
    const pid = api.child.pid!;
    const token = await mintToken();
    // Warm up what a normal request touches (JIT, pools), so the baseline is the steady state.
    for (let i = 0; i < 20; i++) await normalClient(api, token, -1);
    await sleep(500);
    const before = rss(pid);
    const results: Array<{ path: string; peak: number; normal: string[] }> = [];
    for (const path of ['/metrics', '/health/live']) {
      const peak = rssPeak(pid);
      const sockets = nonReaders(api.port, 20, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(5000));
      const normal: string[] = [];
      for (let i = 0; i < 4; i++) {
        await sleep(750);
        normal.push(await normalClient(api, token, results.length * 10 + i));
      }
      results.push({ path, peak: peak.stop(), normal });
      for (const s of sockets) s.destroy();
      await sleep(300);
    }
    const after = rss(pid);
    console.info(
      `RSS ${(before / MB).toFixed(0)} MB before; ${results.map((r) => `${r.path}: peak ${(r.peak / MB).toFixed(0)} MB`).join(', ')}; ${(after / MB).toFixed(0)} MB after`,
    );
    for (const r of results) {
      // The pod limit is 256 Mi and the API idles at about 150 MB: 60 MB is about the room it has.
      expect((r.peak - before) / MB, `RSS growth (MB) under pipelined ${r.path}`).toBeLessThan(60);
      expect(r.normal, `a normal client's probe/acquire during pipelined ${r.path}`).toEqual(
        r.normal.map((n) => (/^200\/20[01]$/.test(n) ? n : '200/201')),
      );
    }
    expect((await fetch(`${api.url}/health/ready`)).status).toBe(200);
  });
});

/** Writes `text` on a new connection, reads until the server closes it (or `ms` pass); returns the statuses answered. */
function rawExchange(port: number, text: string, ms = 10_000): Promise<{ statuses: number[]; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    let closedByServer = false;
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (d) => {
      got += d.toString('latin1');
    });
    s.on('end', () => {
      closedByServer = true;
      s.end();
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ statuses: [...got.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])), closedByServer });
    });
    s.write(text);
  });
}

describe('requests in flight per connection', () => {
  it(`a client that pipelines more than ${MAX_IN_FLIGHT_PER_CONNECTION} acquires at once gets the first ${MAX_IN_FLIGHT_PER_CONNECTION} answered, the rest are not processed, and the connection ends`, async () => {
    await using api = await startTestApi({ LICENSE_SEED: 'DEEP=100' });
    const n = MAX_IN_FLIGHT_PER_CONNECTION + 9;
    const one = (i: number) => {
      const body = JSON.stringify({ license_key: 'DEEP', hardware_id: `deep-${i}` });
      return `POST /api/v1/licenses/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${api.token}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    };
    const r = await rawExchange(Number(new URL(api.url).port), Array.from({ length: n }, (_, i) => one(i)).join(''));
    expect(r.statuses).toEqual(Array.from({ length: MAX_IN_FLIGHT_PER_CONNECTION }, () => 201));
    expect(r.closedByServer).toBe(true);
    // Exactly the answered ones took effect: nothing was done for a request nobody answered.
    const { rows } = await api.service.app.store['pool'].query<{ hardware_id: string }>(
      'SELECT hardware_id FROM sessions ORDER BY created_at, hardware_id',
    );
    expect(rows.map((x) => x.hardware_id).sort()).toEqual(
      Array.from({ length: MAX_IN_FLIGHT_PER_CONNECTION }, (_, i) => `deep-${i}`).sort(),
    );
    expect(api.service.connections.stats.pipelinedTooDeep).toBe(1);
  });

  it('a client that pipelines within the limit and reads gets every answer on one connection (undici, depth 10, 300 requests)', async () => {
    await using api = await startTestApi();
    const agent = new Agent({ connections: 1, pipelining: 10 });
    try {
      const statuses = await Promise.all(
        Array.from({ length: 300 }, async (_, i) => {
          const r = await request(`${api.url}/${i % 2 ? 'health/live' : 'metrics'}`, { dispatcher: agent });
          await r.body.dump();
          return r.statusCode;
        }),
      );
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(api.service.connections.stats.pipelinedTooDeep).toBe(0);
    } finally {
      await agent.close();
    }
  });
});

/** Opens `n` connections that send `text` (maybe nothing); resolves once all are connected. */
async function openConnections(port: number, n: number, text = ''): Promise<Array<{ socket: Socket; closed: Promise<number> }>> {
  return await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<{ socket: Socket; closed: Promise<number> }>((resolve) => {
          const socket = connect({ host: '127.0.0.1', port });
          socket.on('error', () => {});
          socket.resume(); // read (and drop) whatever comes, so that the server's close is seen
          const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
          socket.once('connect', () => {
            if (text) socket.write(text);
            resolve({ socket, closed });
          });
        }),
    ),
  );
}

const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, sleep(ms).then(() => 'still open' as const)]);

describe('connection exhaustion (issue 19, item 5)', () => {
  it('past MAX_CONNECTIONS a new connection is closed at once and counted; the ones held keep working', async () => {
    await using api = await startTestApi({ MAX_CONNECTIONS: '20' });
    const port = Number(new URL(api.url).port);
    const held = await openConnections(port, 20);
    // Until the server has accepted all 20, a 21st could still get in.
    for (let i = 0; i < 50 && api.service.connections.size < 20; i++) await sleep(20);
    expect(api.service.connections.size).toBe(20);
    const extra = await openConnections(port, 5);
    const extraClosed = await Promise.all(extra.map((e) => within(e.closed, 2000)));
    expect(extraClosed.filter((c) => c === 'still open')).toEqual([]);
    // A connection it holds is served as ever.
    const answer = await rawExchange(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 3000);
    expect(answer.statuses).toEqual([]); // (a 21st connection: refused)
    held[0].socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(await within(held[0].closed, 3000)).not.toBe('still open');
    for (const h of held) h.socket.destroy();
    await sleep(100);
    expect((await fetch(`${api.url}/health/live`)).status).toBe(200);
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(/^http_connections_closed_total\{reason="max_connections"[^}]*\} 6$/m);
  });

  it('connections that send nothing, or only part of their headers, are answered 408 and closed after HEADERS_TIMEOUT_MS', async () => {
    await using api = await startTestApi({ HEADERS_TIMEOUT_MS: '1000' });
    const port = Number(new URL(api.url).port);
    const t0 = Date.now();
    const idle = await openConnections(port, 20);
    const partial = await openConnections(port, 20, 'POST /api/v1/licenses/acquire HTTP/1.1\r\nHost: x\r\nContent-Ty');
    const closed = await Promise.all([...idle, ...partial].map((c) => within(c.closed, 5000)));
    expect(closed.filter((c) => c === 'still open')).toEqual([]);
    expect(Math.min(...(closed as number[])) - t0).toBeGreaterThanOrEqual(900);
    for (let i = 0; i < 50 && api.service.connections.size > 0; i++) await sleep(20);
    expect(api.service.connections.size).toBe(0);
  });

  it('the defaults: headers within 10 s (was 30 s), at most 1,000 connections', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://x', REDIS_URL: 'redis://x', JWT_SECRET: 'x'.repeat(32) });
    expect({ headers: c.HEADERS_TIMEOUT_MS, max: c.MAX_CONNECTIONS }).toEqual({ headers: 10_000, max: 1000 });
  });
});
