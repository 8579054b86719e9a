import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deadline } from '../src/deadline.ts';
import { HeartbeatBatcher } from '../src/licenses/heartbeat-batcher.ts';
import { mintToken, startTestApi, type TestApi } from './harness.ts';

// Sessions live 180 s here, so no seat can expire and come back while a round runs.
let api: TestApi;
// A long request deadline: 500 acquires queued on one license's row lock, on a busy machine, may
// take longer than the default 5 s, and these tests are about seat counts, not deadlines.
beforeAll(async () => {
  api = await startTestApi({ SESSION_TTL_SECONDS: '180', REQUEST_DEADLINE_MS: '20000', DB_STATEMENT_TIMEOUT_MS: '10000' });
});
afterAll(async () => {
  await api?.[Symbol.asyncDispose]();
});

describe('seat limits under concurrency', () => {
  it('never grants more seats than a license has (500 concurrent acquires on 10 seats, 3 rounds)', async () => {
    for (let round = 0; round < 3; round++) {
      const key = `RACE-${round}`;
      // eslint-disable-next-line no-await-in-loop
      await api.service.app.store.ensureLicenses([{ key, seats: 10 }]);
      const results = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          api.post('/api/v1/licenses/acquire', { license_key: key, hardware_id: `hw-${round}-${i % 250}` }),
        ),
      );
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
     WHERE l.license_key = $1 AND s.ended_at IS NULL AND s.expires_at > now()`,
    [key],
  );
  return rows[0].n;
}

describe('heartbeats under concurrency', () => {
  it('coalesced heartbeats answer each caller for its own session only', async () => {
    await api.service.app.store.ensureLicenses([{ key: 'HB-BATCH', seats: 50 }]);
    const sessions = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        api
          .post('/api/v1/licenses/acquire', { license_key: 'HB-BATCH', hardware_id: `hb-${i}` })
          .then((r) => r.body.session_id as string),
      ),
    );
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

describe('one bad value never fails a batch', () => {
  it('tokens whose sub holds a NUL are refused at the door: 600 concurrent victims keep their heartbeats', async () => {
    await api.service.app.store.ensureLicenses([{ key: 'POISON', seats: 600 }]);
    const victims: Array<{ token: string; session: string }> = [];
    for (let chunk = 0; chunk < 600; chunk += 50) {
      victims.push(
        ...(await Promise.all(
          Array.from({ length: 50 }, async (_, j) => {
            const i = chunk + j;
            const token = await mintToken(`victim-${i}`);
            const r = await api.post('/api/v1/licenses/acquire', { license_key: 'POISON', hardware_id: `victim-${i}` }, token);
            expect(r.status).toBe(201);
            return { token, session: r.body.session_id as string };
          }),
        )),
      );
    }
    const poison = await mintToken('evil\u0000subject');
    const calls = [
      ...victims.map((v) =>
        api.post('/api/v1/licenses/heartbeat', { session_id: v.session }, v.token).then((r) => ['victim', r.status]),
      ),
      ...Array.from({ length: 60 }, () =>
        api.post('/api/v1/licenses/heartbeat', { session_id: victims[0].session }, poison).then((r) => ['poison', r.status]),
      ),
    ];
    const results = await Promise.all(calls);
    expect(results.filter(([who, s]) => who === 'victim' && s !== 200)).toEqual([]);
    expect(results.filter(([who, s]) => who === 'poison' && s !== 401)).toEqual([]);
  });

  it('the batcher splits a batch Postgres refuses for its values, so only the heartbeat with the bad value fails', async () => {
    const pool = api.service.app.store['pool'];
    await api.service.app.store.ensureLicenses([{ key: 'SPLIT', seats: 50 }]);
    const sessions = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        api
          .post('/api/v1/licenses/acquire', { license_key: 'SPLIT', hardware_id: `split-${i}` })
          .then((r) => r.body.session_id as string),
      ),
    );
    // Straight into the batcher: past the auth layer's checks, as a value it does not know about would be.
    const batcher = new HeartbeatBatcher(pool, 180, { maxBatch: 256, statementTimeoutMs: 2000 });
    const deadline = () => new Deadline(10_000);
    const good = sessions.map((id) =>
      batcher.extend(id, 'user-1', deadline()).then(
        (d) => (d ? 'extended' : 'not-live'),
        (e) => `failed: ${e}`,
      ),
    );
    const bad = batcher.extend(sessions[0], 'bad\u0000subject', deadline()).then(
      () => 'resolved',
      () => 'failed',
    );
    expect(await Promise.all(good)).toEqual(sessions.map(() => 'extended'));
    expect(await bad).toBe('failed');
  });
});
