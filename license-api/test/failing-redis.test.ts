import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../lib/services/redis.ts';
import { mintToken, startTestApi, type TestApi } from './harness.ts';

/** Redis killed under the license API (a Redis server of this file's own), with and without the rate limiter. */

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

const ready = (api: TestApi) =>
  fetch(`${api.url}/health/ready`).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
const redisSeen = (api: TestApi, state: 'down' | 'up') => async () => {
  const r = await ready(api);
  return state === 'down' ? String(r.body.checks?.redis ?? '').startsWith('error') : r.body.checks?.redis === 'ok';
};

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
beforeEach(async () => {
  await redis.start();
}); // whatever the test before left

describe('Redis down', () => {
  it('with the rate limiter on, acquire answers a typed 503 at once (no command waits for its timeout); heartbeats are unaffected; Redis back: 201 without a restart', async () => {
    // A long Redis timeout: a command sent to a disconnected client would wait all of it.
    await using api = await startTestApi({ REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: '1000', DEPENDENCY_TIMEOUT_MS: '3000' });
    const a = await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'limited-1' });
    expect(a.status).toBe(201);

    await redis.pause();
    await waitFor('the API to see Redis down', redisSeen(api, 'down'));
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const r = await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: `limited-down-${i}` });
      times.push(Date.now() - t0);
      expect([r.status, r.body.error?.code, r.headers.get('retry-after')]).toEqual([503, 'DEPENDENCY_UNAVAILABLE', '1']);
    }
    console.info(`Redis down, limiter on: acquire 503 after ${times.join('/')} ms`);
    // "At once": far below the 3 s Redis timeout, with room for a busy machine.
    for (const t of times) expect(t).toBeLessThan(1000);
    expect((await api.post('/api/v1/licenses/heartbeat', { session_id: a.body.session_id })).status).toBe(200);

    await redis.start();
    await waitFor(
      'acquire 201 again',
      async () =>
        (await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'limited-2' })).status === 201,
    );
  });

  it('no pod turns unready for a Redis outage: with the limiter off clients see nothing; with it on only acquire answers 503', async () => {
    await using off = await startTestApi({ REDIS_URL: redis.url, DEPENDENCY_TIMEOUT_MS: '300' });
    await using on = await startTestApi({ REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: '1000', DEPENDENCY_TIMEOUT_MS: '300' });
    const token = await mintToken('outage');
    for (const api of [off, on]) {
      expect((await ready(api)).status).toBe(200);
      expect((await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'before' }, token)).status).toBe(
        201,
      );
    }

    await redis.pause();
    for (const api of [off, on]) await waitFor('the API to see Redis down', redisSeen(api, 'down'));
    for (const api of [off, on]) {
      const r = await ready(api);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'ready', checks: { database: 'ok' }, degraded: ['redis'] });
      expect(r.body.checks.redis).toMatch(/^error/);
      expect((await fetch(`${api.url}/health/live`)).status).toBe(200);
    }
    // Limiter off: the outage is invisible to clients.
    const got = await off.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'during' }, token);
    expect(got.status).toBe(201);
    expect((await off.post('/api/v1/licenses/heartbeat', { session_id: got.body.session_id }, token)).status).toBe(200);
    expect((await off.post('/api/v1/licenses/release', { session_id: got.body.session_id }, token)).status).toBe(200);
    // Limiter on: acquire cannot count attempts, so it answers a typed 503; heartbeats and releases go on.
    const refused = await on.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'during' }, token);
    expect([refused.status, refused.body.error.code, refused.headers.get('retry-after')]).toEqual([
      503,
      'DEPENDENCY_UNAVAILABLE',
      '1',
    ]);

    await redis.start();
    for (const api of [off, on]) await waitFor('Redis seen up again', redisSeen(api, 'up'));
    expect((await ready(on)).body.degraded).toEqual([]);
    expect((await on.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'during' }, token)).status).toBe(
      201,
    );
  });
});

describe('the liveness fault (FAULT_LIVENESS_CHECKS_DEPENDENCIES, for the outage rehearsals)', () => {
  const live = (api: TestApi) => fetch(`${api.url}/health/live`).then((r) => r.status);
  it('shipped, /health/live answers 200 while Redis is away; with the fault it answers 503 (the seed naive liveness), 200 once Redis is back', async () => {
    await using shipped = await startTestApi({ REDIS_URL: redis.url });
    await using broken = await startTestApi({ REDIS_URL: redis.url, FAULT_LIVENESS_CHECKS_DEPENDENCIES: 'true' });
    await waitFor('Redis seen up', redisSeen(broken, 'up'));
    expect([await live(shipped), await live(broken)]).toEqual([200, 200]);
    await redis.pause();
    await waitFor('Redis seen down', redisSeen(broken, 'down'));
    expect([await live(shipped), await live(broken)]).toEqual([200, 503]);
    await redis.start();
    await waitFor('liveness back', async () => (await live(broken)) === 200);
  });
});
