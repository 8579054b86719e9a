import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mintToken, startTestApi, type TestApi } from './harness.ts';

const LIMIT = 3;
let api: TestApi;
const redis = createClient({ url: inject('redisUrl') });
beforeAll(async () => {
  api = await startTestApi({ RATE_LIMIT_PER_MINUTE: String(LIMIT), LICENSE_SEED: 'TEST-KEY=1000' });
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

  it('made-up license keys are limited per subject too (the 404 was an oracle): past the limit every acquire of that subject gets 429, and no Redis key is made per made-up key', async () => {
    const r = await withinOneWindow(async (tag) => {
      const token = await mintToken(`sprayer-${tag}`);
      const guesses: string[] = [];
      for (let i = 0; i < 20; i++) {
        const g = await api.post('/api/v1/licenses/acquire', { license_key: `MADE-UP-${tag}-${i}`, hardware_id: 'h' }, token);
        guesses.push(`${g.status} ${g.body.error.code}`);
      }
      // Once over its budget, a key that exists answers the same: 404 and 201 can no longer be told apart.
      const existing = await api.post(
        '/api/v1/licenses/acquire',
        { license_key: 'TEST-KEY', hardware_id: `sprayer-${tag}` },
        token,
      );
      const someoneElse = await api.post(
        '/api/v1/licenses/acquire',
        { license_key: 'TEST-KEY', hardware_id: `other-${tag}` },
        await mintToken(`other-${tag}`),
      );
      const keys: string[] = [];
      for await (const batch of redis.scanIterator({ MATCH: `*MADE-UP-${tag}*`, COUNT: 1000 })) keys.push(...batch);
      return { guesses, existing, someoneElse, keys };
    });
    expect(r.guesses).toEqual([
      ...Array.from({ length: LIMIT }, () => '404 LICENSE_NOT_FOUND'),
      ...Array.from({ length: 20 - LIMIT }, () => '429 RATE_LIMITED'),
    ]);
    expect([r.existing.status, r.existing.body.error?.code]).toEqual([429, 'RATE_LIMITED']);
    expect(r.existing.body.error.message).toContain('do not exist');
    expect(r.someoneElse.status).toBe(201);
    expect(r.keys).toEqual([]);
  });
});
