import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { freePort } from '../../lib/net/free-port.ts';
import { freshDatabase } from '../../test/databases.ts';
import { keepAliveLoad, slowRequest } from './drain-load.ts';
import { mintToken, spawnApi, startTestApi, type ApiProcess } from './harness.ts';

/**
 * SIGTERM while keep-alive load runs. The load goes on for `propagationMs` after the signal, as
 * traffic does until endpoint removal reaches every client (the window SHUTDOWN_DELAY_MS covers),
 * then stops sending to this pod. Three slow requests stay in flight until `finishAfterMs`.
 */
async function sigtermUnderLoad(api: ApiProcess, finishAfterMs: number, propagationMs = 300) {
  const token = await mintToken();
  const load = keepAliveLoad(api.url, token, 8);
  await sleep(300);
  const slow = await Promise.all([1, 2, 3].map(() => slowRequest(api.port, token)));
  // Let the server read their headers before SIGTERM: they are in flight across the signal.
  await sleep(150);
  const t0 = Date.now();
  api.child.kill('SIGTERM');
  await sleep(100);
  const readyDuringDrain = await fetch(`${api.url}/health/ready`).then(
    async (r) => ({ status: r.status, body: (await r.json()) as any }),
    () => null,
  );
  await sleep(Math.max(0, propagationMs - (Date.now() - t0)));
  await load.stop();
  await sleep(Math.max(0, finishAfterMs - (Date.now() - t0)));
  for (const s of slow) s.finish();
  const slowResults = await Promise.all(slow.map((s) => s.done));
  const exit = await api.exit;
  return { t0, exit, slowResults, readyDuringDrain, outcomes: load.outcomes };
}

describe('SIGTERM drain', () => {
  it('graceful: readiness 503 at once, in-flight requests complete, no request fails, exit 0 before the deadline', async () => {
    await using api = await spawnApi({ SHUTDOWN_MODE: 'graceful', SHUTDOWN_DELAY_MS: '600', SHUTDOWN_TIMEOUT_MS: '5000' });
    // Finish the slow requests after the delay: they are in flight while the server closes.
    const r = await sigtermUnderLoad(api, 900);
    expect(r.readyDuringDrain?.status).toBe(503);
    expect(r.readyDuringDrain?.body.status).toBe('shutting_down');
    expect(r.slowResults).toEqual([1, 2, 3].map(() => ({ status: 404, connectionClose: true })));
    expect(r.exit.code).toBe(0);
    expect(r.exit.at - r.t0).toBeLessThan(5000);
    // Every request sent before the SIGTERM and during the propagation window was answered.
    expect(r.outcomes.filter((o) => o.at > r.t0).length).toBeGreaterThan(20);
    expect(r.outcomes.filter((o) => o.status !== 404)).toEqual([]);
    expect(api.output()).toContain('shutdown complete');
  });

  it('FAULT_EXIT_AFTER_MS: the process takes itself out as on SIGTERM once it has served that long (± 50 %) and exits 0', async () => {
    const t0 = Date.now();
    await using api = await spawnApi({ FAULT_EXIT_AFTER_MS: '600', SHUTDOWN_DELAY_MS: '800', SHUTDOWN_TIMEOUT_MS: '5000' });
    let unreadyAt = 0;
    while (!unreadyAt && Date.now() - t0 < 10_000) {
      const r = await fetch(`${api.url}/health/ready`).catch(() => null);
      if (r?.status === 503) unreadyAt = Date.now();
      else await sleep(50);
    }
    expect(unreadyAt).toBeGreaterThan(0);
    // Still serving while it drains (what lets readiness take it out of the Service first).
    const token = await mintToken();
    const during = await fetch(`${api.url}/api/v1/licenses/heartbeat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ session_id: '00000000-0000-4000-8000-000000000000' }),
    });
    expect(during.status).toBe(404);
    const exit = await api.exit;
    expect(exit.code).toBe(0);
    expect(exit.at - unreadyAt).toBeGreaterThanOrEqual(600);
    expect(api.output()).toMatch(/FAULT_EXIT_AFTER_MS/);
    expect(api.output()).toContain('shutdown complete');
  });

  it('naive: the same SIGTERM drops the in-flight requests (what the graceful drain prevents)', async () => {
    await using api = await spawnApi({ SHUTDOWN_MODE: 'naive', SHUTDOWN_DELAY_MS: '0', SHUTDOWN_TIMEOUT_MS: '5000' });
    const r = await sigtermUnderLoad(api, 300);
    expect(r.slowResults.map((s) => s.status)).toEqual([0, 0, 0]);
    // Traffic still routed to the pod during the propagation window fails.
    expect(r.outcomes.filter((o) => o.status === 0).length).toBeGreaterThan(0);
    expect(r.exit.code).toBe(0);
  });

  it('a process that cannot drain in time is forced out at the deadline with exit 1', async () => {
    // The stuck request's deadline (10 s) comes after the shutdown timeout: it holds the server open.
    await using api = await spawnApi({
      SHUTDOWN_MODE: 'graceful',
      SHUTDOWN_DELAY_MS: '200',
      SHUTDOWN_TIMEOUT_MS: '1500',
      REQUEST_DEADLINE_MS: '10000',
    });
    const token = await mintToken();
    const stuck = await slowRequest(api.port, token); // never finished: holds the server open
    const t0 = Date.now();
    api.child.kill('SIGTERM');
    const exit = await api.exit;
    expect(exit.code).toBe(1);
    expect(exit.at - t0).toBeGreaterThanOrEqual(1400);
    expect(exit.at - t0).toBeLessThan(4000);
    expect((await stuck.done).status).toBe(0);
    expect(api.output()).toContain('missed its 1500 ms deadline');
  });

  it('sockets that carry no request (nothing sent, partial headers) are closed after the delay, a body that never comes is answered 408 at its deadline: exit 0 long before the timeout', async () => {
    await using api = await spawnApi({
      SHUTDOWN_MODE: 'graceful',
      SHUTDOWN_DELAY_MS: '200',
      SHUTDOWN_TIMEOUT_MS: '8000',
      REQUEST_DEADLINE_MS: '1000',
      DB_STATEMENT_TIMEOUT_MS: '500',
    });
    const token = await mintToken();
    const open = (first: string) => {
      const s: Socket = connect({ host: '127.0.0.1', port: api.port });
      let text = '';
      s.on('data', (d) => {
        text += d.toString('latin1');
      });
      s.on('error', () => {});
      const done = new Promise<{ status: number; code?: string }>((resolve) =>
        s.on('close', () => {
          const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
          resolve({ status: m ? Number(m[1]) : 0, code: /"code":"([A-Z_]+)"/.exec(text)?.[1] });
        }),
      );
      s.once('connect', () => {
        if (first) s.write(first);
      });
      return done;
    };
    const silent = open('');
    const partialHeaders = open('POST /api/v1/licenses/heartbeat HTTP/1.1\r\nhost: x\r\ncontent-type: appl');
    const halfBody = slowRequest(api.port, token);
    await sleep(300);
    const t0 = Date.now();
    api.child.kill('SIGTERM');
    const exit = await api.exit;
    console.info(`drain with three stuck sockets: exit ${exit.code} after ${exit.at - t0} ms`);
    expect(exit.code).toBe(0);
    // Delay 200 ms + the request deadline (1 s) + closing: far from the 8 s timeout.
    expect(exit.at - t0).toBeLessThan(5000);
    expect(await silent).toEqual({ status: 0, code: undefined });
    expect(await partialHeaders).toEqual({ status: 0, code: undefined });
    expect((await (await halfBody).done).status).toBe(408);
    expect(api.output()).toContain('shutdown complete');
    expect(api.output()).not.toContain('missed its');
  });
});

/**
 * Writes the acquires for `hardwareIds` pipelined on one new connection and reads until the server
 * closes it: each answer's status, whether it carries Connection: close, and its session id.
 */
function pipelinedAcquires(port: number, token: string, hardwareIds: string[]) {
  const s: Socket = connect({ host: '127.0.0.1', port });
  let text = '';
  s.on('data', (d) => {
    text += d.toString('latin1');
  });
  s.on('error', () => {});
  const done = new Promise<Array<{ status: number; close: boolean; session?: string }>>((resolve) =>
    s.on('close', () => {
      const answers = text.split(/(?=HTTP\/1\.1 \d{3} )/).filter((a) => a.startsWith('HTTP/1.1'));
      resolve(
        answers.map((a) => ({
          status: Number(a.slice(9, 12)),
          close: /\r\nconnection: close\r\n/i.test(a),
          session: /"session_id":"([0-9a-f-]{36})"/.exec(a)?.[1],
        })),
      );
    }),
  );
  s.write(
    hardwareIds
      .map((hw) => {
        const body = JSON.stringify({ license_key: 'TEST-KEY', hardware_id: hw });
        return `POST /api/v1/licenses/acquire HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
      })
      .join(''),
  );
  return done;
}

/** `hardware_id=session id` of every session stored in the database at `url`, ordered by hardware id. */
async function storedSessions(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ id: string; hardware_id: string }>(
      'SELECT id, hardware_id FROM sessions ORDER BY hardware_id',
    );
    return rows.map((r) => `${r.hardware_id}=${r.id}`).join(',');
  } finally {
    await c.end();
  }
}

describe('requests in flight on one connection when the drain begins (issue 19, item 2)', () => {
  it('two pipelined acquires, shutdown 200 ms later: both answered, Connection: close only on the last, both sessions stored (20 of 20 runs)', async () => {
    const runs: string[] = [];
    for (let run = 0; run < 20; run++) {
      await using api = await startTestApi({ FAULT_EXTRA_LATENCY_MS: '600', SHUTDOWN_DELAY_MS: '0' });
      const answers = pipelinedAcquires(Number(new URL(api.url).port), api.token, [`X-1`, `X-2`]);
      await sleep(200);
      const drained = api.service.shutdown('test');
      const got = await answers;
      await drained;
      const stored = await storedSessions(api.databaseUrl);
      const answered = got.map((a, i) => `X-${i + 1}=${a.session}`).join(',');
      runs.push(
        got.map((a) => `${a.status}${a.close ? ' close' : ''}`).join(' | ') + (stored === answered ? '' : ` stored ${stored}`),
      );
    }
    console.info(
      `pipelined acquires across a drain: ${runs.filter((r) => r === '201 | 201 close').length} of 20 runs lost nothing`,
    );
    expect(runs).toEqual(runs.map(() => '201 | 201 close'));
  });

  it('the same across a real SIGTERM to the process', async () => {
    const db = await freshDatabase('proc');
    await using api = await spawnApi({
      DATABASE_URL: db,
      FAULT_EXTRA_LATENCY_MS: '600',
      SHUTDOWN_DELAY_MS: '300',
      SHUTDOWN_TIMEOUT_MS: '5000',
    });
    const answers = pipelinedAcquires(api.port, await mintToken(), ['P-1', 'P-2']);
    await sleep(200);
    api.child.kill('SIGTERM');
    const got = await answers;
    expect(got.map((a) => `${a.status}${a.close ? ' close' : ''}`)).toEqual(['201', '201 close']);
    expect((await api.exit).code).toBe(0);
    expect(await storedSessions(db)).toBe(`P-1=${got[0].session},P-2=${got[1].session}`);
  });
});

describe('clients that hold a drain hostage (issue 19, item 4)', () => {
  it('a client that pipelines and never reads, and 200 sockets with partial headers: exit 0 soon after the delay, not at the deadline', async () => {
    await using api = await spawnApi({ SHUTDOWN_DELAY_MS: '1000', SHUTDOWN_TIMEOUT_MS: '10000', LOG_LEVEL: 'warn' });
    const sockets: Socket[] = [];
    const open = (text: string, pause: boolean) => {
      const s = connect({ host: '127.0.0.1', port: api.port });
      if (pause) s.pause();
      s.on('error', () => {});
      s.once('connect', () => s.write(text));
      sockets.push(s);
      return s;
    };
    try {
      // 3,000 pipelined at once (the reviewer's client), and one that stays within the in-flight
      // limit but keeps sending until its unread answers fill the kernel's buffers.
      open('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3000), true);
      const patient = open('', true);
      for (let i = 0; i < 60; i++) {
        patient.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(8));
        await sleep(20);
      }
      for (let i = 0; i < 200; i++) open('POST /api/v1/licenses/heartbeat HTTP/1.1\r\nHost: x\r\nContent-Ty', false);
      await sleep(500);
      const t0 = Date.now();
      api.child.kill('SIGTERM');
      const exit = await api.exit;
      console.info(`drain with a non-reading pipeliner and 200 partial headers: exit ${exit.code} after ${exit.at - t0} ms`);
      expect({ code: exit.code, output: api.output().includes('missed its') }).toEqual({ code: 0, output: false });
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('a second SIGTERM during the drain does not cut it short: 20 requests in flight are all answered, exit 0', async () => {
    await using api = await spawnApi({ SHUTDOWN_DELAY_MS: '300', SHUTDOWN_TIMEOUT_MS: '8000' });
    const token = await mintToken();
    const slow = await Promise.all(Array.from({ length: 20 }, () => slowRequest(api.port, token)));
    await sleep(150);
    api.child.kill('SIGTERM');
    await sleep(100);
    api.child.kill('SIGTERM');
    await sleep(600);
    for (const s of slow) s.finish();
    const results = await Promise.all(slow.map((s) => s.done));
    const exit = await api.exit;
    console.info(`second SIGTERM: ${results.filter((r) => r.status === 404).length} of 20 in-flight requests answered`);
    expect(results).toEqual(results.map(() => ({ status: 404, connectionClose: true })));
    expect(exit.code).toBe(0);
    expect(api.output()).toContain('already shutting down');
  });

  it('a third signal ends the process at once, with exit 1', async () => {
    await using api = await spawnApi({ SHUTDOWN_DELAY_MS: '5000', SHUTDOWN_TIMEOUT_MS: '8000' });
    const t0 = Date.now();
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGTERM'] as const) {
      api.child.kill(sig);
      await sleep(100);
    }
    const exit = await api.exit;
    expect(exit.code).toBe(1);
    expect(exit.at - t0).toBeLessThan(4000);
    expect(api.output()).toContain('third signal');
  });
});

describe('SIGTERM during start-up', () => {
  const unreachable = async () => `postgres://postgres@127.0.0.1:${await freePort()}/nothing`;

  it('stops the start-up retries and exits 0 at once while Postgres is unreachable', async () => {
    await using api = await spawnApi(
      { DATABASE_URL: await unreachable(), SHUTDOWN_TIMEOUT_MS: '10000' },
      { waitFor: 'listening' },
    );
    const deadline = Date.now() + 10_000;
    while (!api.output().includes('start-up step failed') && Date.now() < deadline) await sleep(50);
    expect(api.output()).toContain('start-up step failed');
    expect((await fetch(`${api.url}/health/startup`)).status).toBe(503);
    const t0 = Date.now();
    api.child.kill('SIGTERM');
    const exit = await api.exit;
    console.info(`SIGTERM during start-up: exit ${exit.code ?? exit.signal} after ${exit.at - t0} ms`);
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    expect(exit.at - t0).toBeLessThan(3000);
  });

  // In a container the process is PID 1 of its PID namespace: the kernel delivers it no signal it
  // has no handler for, so without an early handler SIGTERM is ignored (docker stop: 10 s, then SIGKILL).
  const canUnshare = process.getuid?.() === 0 && existsSync('/usr/bin/unshare');
  it.skipIf(!canUnshare)(
    'as PID 1 of its own PID namespace (a container), SIGTERM during start-up ends it with exit 0',
    async () => {
      const port = await freePort();
      const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
      const child = spawn('/usr/bin/unshare', ['--pid', '--fork', '--kill-child', process.execPath, main], {
        env: {
          PATH: process.env.PATH ?? '',
          PORT: String(port),
          HOST: '127.0.0.1',
          DATABASE_URL: await unreachable(),
          REDIS_URL: inject('redisUrl'),
          JWT_SECRET: 'test-secret-test-secret-test-secret-0123',
          LOG_LEVEL: 'info',
          SHUTDOWN_TIMEOUT_MS: '10000',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        out += d;
      });
      const exit = new Promise<{ code: number | null; at: number }>((r) =>
        child.once('exit', (code) => r({ code, at: Date.now() })),
      );
      try {
        const until = Date.now() + 15_000;
        while (!out.includes('start-up step failed') && Date.now() < until) await sleep(50);
        expect(out).toContain('start-up step failed');
        // unshare's child is the node process, PID 1 inside the namespace.
        const inner = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
        expect(readFileSync(`/proc/${inner}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m);
        const t0 = Date.now();
        process.kill(inner, 'SIGTERM');
        const timeout = sleep(5000).then(() => ({ code: -1, at: Date.now() }));
        const done = await Promise.race([exit, timeout]);
        expect(done.code).toBe(0);
        expect(done.at - t0).toBeLessThan(3000);
      } finally {
        if (child.exitCode === null) {
          child.kill('SIGKILL');
          await exit;
        }
      }
    },
  );
});
