import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mintToken, startTestApi, type TestApi } from './harness.ts';

const LIMIT = 3;
let api: TestApi;
const redis = createClient({ url: inject('redisUrl') });
beforeAll(async () => {
  api = await startTestApi({ RATE_LIMIT_PER_MINUTE: String(LIMIT) });
  await redis.connect();
});
afterAll(async () => {
  await api?.[Symbol.asyncDispose]();
  await redis.close();
});

const minute = () => Math.floor(Date.now() / 60_000);

/** Runs `round` again (with fresh names) if a minute boundary fell inside it: the window restarted mid-round. */
async function withinOneWindow<T>(round: (tag: string) => Promise<T>): Promise<T> {
  for (;;) {
    const before = minute();
    const result = await round(randomBytes(4).toString('hex'));
    if (minute() === before) return result;
  }
}

describe('acquire rate limit', () => {
  it("is counted per subject and license: subject B spending its budget on license K leaves A's intact", async () => {
    const a = await mintToken('subject-a');
    const b = await mintToken('subject-b');
    const r = await withinOneWindow(async (tag) => {
      const key = `RL-${tag}`;
      await api.service.app.store.ensureLicenses([{ key, seats: 100 }]);
      const byB: number[] = [];
      for (let i = 0; i <= LIMIT; i++)
        byB.push((await api.post('/api/v1/licenses/acquire', { license_key: key, hardware_id: `b-${i}` }, b)).status);
      const byA = await api.post('/api/v1/licenses/acquire', { license_key: key, hardware_id: 'a-0' }, a);
      const limited = await api.post('/api/v1/licenses/acquire', { license_key: key, hardware_id: 'b-9' }, b);
      return { byB, byA, limited };
    });
    expect(r.byB).toEqual([201, 201, 201, 429]);
    expect(r.byA.status).toBe(201);
    expect(r.limited.status).toBe(429);
    expect(r.limited.body.error.message).toContain('for this subject and license');
    expect(Number(r.limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('made-up license keys create no Redis key (404 before anything is counted)', async () => {
    const tag = randomBytes(4).toString('hex');
    const token = await mintToken('sprayer');
    for (let i = 0; i < 20; i++) {
      const r = await api.post('/api/v1/licenses/acquire', { license_key: `MADE-UP-${tag}-${i}`, hardware_id: 'h' }, token);
      expect([r.status, r.body.error.code]).toEqual([404, 'LICENSE_NOT_FOUND']);
    }
    const keys: string[] = [];
    for await (const batch of redis.scanIterator({ MATCH: `*MADE-UP-${tag}*`, COUNT: 1000 })) keys.push(...batch);
    expect(keys).toEqual([]);
  });
});
