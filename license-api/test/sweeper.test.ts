import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({
    SESSION_TTL_SECONDS: '2',
    HEARTBEAT_INTERVAL_SECONDS: '1',
    SESSION_SWEEP_INTERVAL_SECONDS: '1',
    SESSION_RETENTION_HOURS: '0',
    LICENSE_SEED: 'SWEEP=10,BATCHES=1',
  });
});
afterAll(async () => {
  await api?.[Symbol.asyncDispose]();
});

const pool = () => api.service.app.store['pool'];
const rows = async (key: string) =>
  (
    await pool().query<{ id: string; ended_at: Date | null; end_reason: string | null }>(
      'SELECT s.id, s.ended_at, s.end_reason FROM sessions s JOIN licenses l ON l.id = s.license_id WHERE l.license_key = $1',
      [key],
    )
  ).rows;

describe('session sweeper', () => {
  it('ends expired sessions and deletes ended ones past the retention in the background; live sessions stay', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await api.post('/api/v1/licenses/acquire', { license_key: 'SWEEP', hardware_id: `sweep-${i}` })).body.session_id);
    await api.post('/api/v1/licenses/release', { session_id: ids[0] });
    await api.post('/api/v1/licenses/release', { session_id: ids[1] });
    // ids[4] is kept alive by heartbeats; ids[2] and ids[3] stop and expire (TTL 2 s).
    const until = Date.now() + 15_000;
    let left = await rows('SWEEP');
    while (Date.now() < until && left.length > 1) {
      await api.post('/api/v1/licenses/heartbeat', { session_id: ids[4] });
      await sleep(300);
      left = await rows('SWEEP');
    }
    expect(left.map((r) => r.id)).toEqual([ids[4]]);
    expect(left[0].ended_at).toBeNull();
  });

  it('works off a backlog in bounded batches (LIMIT per statement, a bounded number of statements per pass)', async () => {
    const {
      rows: [lic],
    } = await pool().query<{ id: string }>("SELECT id FROM licenses WHERE license_key = 'BATCHES'");
    // 50 sessions that ended a year ago (ended rows do not count against seats).
    await pool().query(
      `INSERT INTO sessions (id, license_id, hardware_id, subject, expires_at, ended_at, end_reason)
      SELECT id, $1, 'old-' || i, 'u', now() - interval '1 year', now() - interval '1 year', 'released'
      FROM unnest($2::uuid[]) WITH ORDINALITY AS t(id, i)`,
      [lic.id, Array.from({ length: 50 }, () => randomUUID())],
    );
    const store = api.service.app.store;
    const passes: number[] = [];
    for (let i = 0; i < 4; i++) passes.push((await store.sweep(3600, 10, 2)).deleted);
    // The background sweeper (every second) may take some too: what one pass removes is bounded, and the backlog goes.
    for (const n of passes) expect(n).toBeLessThanOrEqual(20);
    expect((await rows('BATCHES')).length).toBe(0);
  });
});
