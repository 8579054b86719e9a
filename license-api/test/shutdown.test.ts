import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { mintToken, spawnApi, type ApiProcess } from './harness.ts';

/**
 * A request that is in flight for as long as we like: headers and half the body now, the rest
 * when `finish()` is called. Resolves with the response status (0 when the server dropped us).
 */
async function slowRequest(port: number, token: string) {
  const body = JSON.stringify({ session_id: '00000000-0000-4000-8000-000000000000' });
  const s: Socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((r) => s.once('connect', () => r()));
  let text = '';
  s.on('data', (d) => { text += d.toString('latin1'); });
  s.on('error', () => {});
  const done = new Promise<{ status: number; connectionClose: boolean }>((resolve) => s.on('close', () => {
    const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
    resolve({ status: m ? Number(m[1]) : 0, connectionClose: /\r\nconnection: close\r\n/i.test(text) });
  }));
  s.write(`POST /api/v1/licenses/heartbeat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
  return { finish: () => { if (!s.destroyed) s.write(body.slice(10)); }, done };
}

/** Keep-alive clients hammering heartbeat until told to stop; every failure is kept with its error. */
function keepAliveLoad(url: string, token: string, workers: number) {
  const agent = new Agent({ connections: workers, pipelining: 1 });
  let running = true;
  const outcomes: Array<{ status: number; error?: string; at: number }> = [];
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const at = Date.now();
      try {
        const r = await request(`${url}/api/v1/licenses/heartbeat`, {
          method: 'POST', dispatcher: agent, body: '{"session_id":"x"}',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        });
        await r.body.dump();
        outcomes.push({ status: r.statusCode, at });
      } catch (err) {
        outcomes.push({ status: 0, error: (err as { code?: string }).code ?? String(err), at });
        await sleep(5);
      }
    }
  });
  return { outcomes, stop: async () => { running = false; await Promise.all(loops); await agent.close(); } };
}

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
  const readyDuringDrain = await fetch(`${api.url}/health/ready`).then(async (r) => ({ status: r.status, body: await r.json() as any }), () => null);
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

  it('naive: the same SIGTERM drops the in-flight requests (what the graceful drain prevents)', async () => {
    await using api = await spawnApi({ SHUTDOWN_MODE: 'naive', SHUTDOWN_DELAY_MS: '0', SHUTDOWN_TIMEOUT_MS: '5000' });
    const r = await sigtermUnderLoad(api, 300);
    expect(r.slowResults.map((s) => s.status)).toEqual([0, 0, 0]);
    // Traffic still routed to the pod during the propagation window fails.
    expect(r.outcomes.filter((o) => o.status === 0).length).toBeGreaterThan(0);
    expect(r.exit.code).toBe(0);
  });

  it('a process that cannot drain in time is forced out at the deadline with exit 1', async () => {
    await using api = await spawnApi({ SHUTDOWN_MODE: 'graceful', SHUTDOWN_DELAY_MS: '200', SHUTDOWN_TIMEOUT_MS: '1500' });
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
});
