import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken, startTestApi, type TestApi } from './harness.ts';

// Sessions live 180 s here, so no seat can expire and come back while a round runs.
let api: TestApi;
beforeAll(async () => { api = await startTestApi({ SESSION_TTL_SECONDS: '180' }); });
afterAll(async () => { await api?.[Symbol.asyncDispose](); });

describe('seat limits under concurrency', () => {
  it('never grants more seats than a license has (500 concurrent acquires on 10 seats, 3 rounds)', async () => {
    for (let round = 0; round < 3; round++) {
      const key = `RACE-${round}`;
      // eslint-disable-next-line no-await-in-loop
      await api.service.app.store.ensureLicenses([{ key, seats: 10 }]);
      const results = await Promise.all(Array.from({ length: 500 }, (_, i) =>
        api.post('/api/v1/licenses/acquire', { license_key: key, hardware_id: `hw-${round}-${i % 250}` })));
      const granted = results.filter((r) => r.status === 201 || r.status === 200);
      const refused = results.filter((r) => r.status === 409);
      expect(results.filter((r) => r.status >= 500)).toEqual([]);
      expect(granted.length + refused.length).toBe(500);
      const distinct = new Set(granted.map((r) => r.body.session_id));
      expect(distinct.size).toBe(10);
      expect(await openSessions(key)).toBe(10);
    }
  });
});

async function openSessions(key: string): Promise<number> {
  const { rows } = await api.service.app.store['pool'].query(
    `SELECT count(*)::int AS n FROM sessions s JOIN licenses l ON l.id = s.license_id
     WHERE l.license_key = $1 AND s.ended_at IS NULL AND s.expires_at > now()`, [key]);
  return rows[0].n;
}

describe('heartbeats under concurrency', () => {
  it('coalesced heartbeats answer each caller for its own session only', async () => {
    await api.service.app.store.ensureLicenses([{ key: 'HB-BATCH', seats: 50 }]);
    const sessions = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      api.post('/api/v1/licenses/acquire', { license_key: 'HB-BATCH', hardware_id: `hb-${i}` }).then((r) => r.body.session_id as string)));
    const intruder = await mintToken('intruder');
    // 400 concurrent heartbeats: every session ten times, plus the same ids under another subject.
    const calls = Array.from({ length: 400 }, (_, i) => {
      const id = sessions[i % sessions.length];
      return i % 10 === 9
        ? api.post('/api/v1/licenses/heartbeat', { session_id: id }, intruder).then((r) => ['intruder', r.status])
        : api.post('/api/v1/licenses/heartbeat', { session_id: id }).then((r) => ['owner', r.status]);
    });
    const results = await Promise.all(calls);
    expect(results.filter(([who, s]) => who === 'owner' && s !== 200)).toEqual([]);
    expect(results.filter(([who, s]) => who === 'intruder' && s !== 404)).toEqual([]);
    expect(results.filter(([who]) => who === 'owner').length).toBe(360);
  });
});
