import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken, startTestApi, type TestApi } from './harness.ts';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({
    SESSION_TTL_SECONDS: '2',
    HEARTBEAT_INTERVAL_SECONDS: '1',
    LICENSE_SEED: 'TEST-KEY=3,ONE-SEAT=1,EXPIRY=1,SHARED-HW=5',
    ACTIVE_SESSIONS_REFRESH_SECONDS: '1',
  });
});
afterAll(async () => {
  await api?.[Symbol.asyncDispose]();
});

describe('session lifecycle', () => {
  it('acquires, heartbeats and releases a seat', async () => {
    const a = await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'hw-life' });
    expect(a.status).toBe(201);
    expect(a.body.session_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.body.heartbeat_interval_seconds).toBe(1);
    expect(Date.parse(a.body.expires_at)).toBeGreaterThan(Date.now());
    expect(a.headers.get('x-served-by')).toBe('test-pod');
    expect(a.headers.get('x-app-version')).toBe('test');

    const h = await api.post('/api/v1/licenses/heartbeat', { session_id: a.body.session_id });
    expect(h.status).toBe(200);
    expect(h.body).toMatchObject({ success: true });
    expect(Date.parse(h.body.expires_at)).toBeGreaterThanOrEqual(Date.parse(a.body.expires_at));

    const r = await api.post('/api/v1/licenses/release', { session_id: a.body.session_id });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ success: true });
    // Releasing twice is idempotent; a heartbeat on a released session says so.
    expect((await api.post('/api/v1/licenses/release', { session_id: a.body.session_id })).status).toBe(200);
    const h2 = await api.post('/api/v1/licenses/heartbeat', { session_id: a.body.session_id });
    expect(h2.status).toBe(410);
    expect(h2.body.error.code).toBe('SESSION_RELEASED');
  });

  it('re-acquiring with the same hardware id returns the same session', async () => {
    const a = await api.post('/api/v1/licenses/acquire', { license_key: 'ONE-SEAT', hardware_id: 'hw-same' });
    const b = await api.post('/api/v1/licenses/acquire', { license_key: 'ONE-SEAT', hardware_id: 'hw-same' });
    expect(a.status).toBe(201);
    expect(b.status).toBe(200);
    expect(b.body.session_id).toBe(a.body.session_id);
    const c = await api.post('/api/v1/licenses/acquire', { license_key: 'ONE-SEAT', hardware_id: 'hw-other' });
    expect(c.status).toBe(409);
    expect(c.body.error.code).toBe('NO_SEAT_AVAILABLE');
    await api.post('/api/v1/licenses/release', { session_id: a.body.session_id });
    expect((await api.post('/api/v1/licenses/acquire', { license_key: 'ONE-SEAT', hardware_id: 'hw-other' })).status).toBe(201);
  });

  it("another subject acquiring a hardware id that holds a seat gets 409 HARDWARE_IN_USE, never the holder's session", async () => {
    const a = await api.post('/api/v1/licenses/acquire', { license_key: 'SHARED-HW', hardware_id: 'hw-taken' });
    expect(a.status).toBe(201);
    const intruder = await mintToken('subject-b');
    const b = await api.post('/api/v1/licenses/acquire', { license_key: 'SHARED-HW', hardware_id: 'hw-taken' }, intruder);
    expect(b.status).toBe(409);
    expect(b.body.error.code).toBe('HARDWARE_IN_USE');
    expect(JSON.stringify(b.body)).not.toContain(a.body.session_id);
    expect(b.body).not.toHaveProperty('expires_at');
    // The holder's session was not extended by the intruder's attempt, and stays the holder's.
    const again = await api.post('/api/v1/licenses/acquire', { license_key: 'SHARED-HW', hardware_id: 'hw-taken' });
    expect(again.status).toBe(200);
    expect(again.body.session_id).toBe(a.body.session_id);
    // Once the holder releases, the hardware id is free for anyone.
    await api.post('/api/v1/licenses/release', { session_id: a.body.session_id });
    const b2 = await api.post('/api/v1/licenses/acquire', { license_key: 'SHARED-HW', hardware_id: 'hw-taken' }, intruder);
    expect(b2.status).toBe(201);
    expect(b2.body.session_id).not.toBe(a.body.session_id);
  });

  it('expires sessions that miss heartbeats and gives their seat back', async () => {
    const a = await api.post('/api/v1/licenses/acquire', { license_key: 'EXPIRY', hardware_id: 'hw-exp-1' });
    expect(a.status).toBe(201);
    expect((await api.post('/api/v1/licenses/acquire', { license_key: 'EXPIRY', hardware_id: 'hw-exp-2' })).status).toBe(409);
    await new Promise((r) => setTimeout(r, 2300));
    const h = await api.post('/api/v1/licenses/heartbeat', { session_id: a.body.session_id });
    expect(h.status).toBe(410);
    expect(h.body.error.code).toBe('SESSION_EXPIRED');
    expect((await api.post('/api/v1/licenses/acquire', { license_key: 'EXPIRY', hardware_id: 'hw-exp-2' })).status).toBe(201);
  });

  it('answers unknown sessions and licenses with 404 and an error code', async () => {
    const h = await api.post('/api/v1/licenses/heartbeat', { session_id: 'test-session-id' });
    expect(h.status).toBe(404);
    expect(h.body.error.code).toBe('SESSION_NOT_FOUND');
    const u = await api.post('/api/v1/licenses/heartbeat', { session_id: '00000000-0000-4000-8000-000000000000' });
    expect(u.status).toBe(404);
    const l = await api.post('/api/v1/licenses/acquire', { license_key: 'NO-SUCH-KEY', hardware_id: 'hw' });
    expect(l.status).toBe(404);
    expect(l.body.error.code).toBe('LICENSE_NOT_FOUND');
  });

  it("does not let one subject touch another subject's session", async () => {
    const a = await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'hw-owner' });
    const other = await mintToken('someone-else');
    expect((await api.post('/api/v1/licenses/heartbeat', { session_id: a.body.session_id }, other)).status).toBe(404);
    expect((await api.post('/api/v1/licenses/release', { session_id: a.body.session_id }, other)).status).toBe(404);
    expect((await api.post('/api/v1/licenses/heartbeat', { session_id: a.body.session_id })).status).toBe(200);
  });
});

describe('metrics', () => {
  it('counts requests under route templates and exposes license metrics', async () => {
    await api.post('/api/v1/licenses/heartbeat', { session_id: 'x' });
    await fetch(`${api.url}/no/such/path/123`);
    const text = await (await fetch(`${api.url}/metrics`)).text();
    expect(text).toMatch(/http_requests_total\{[^}]*method="POST"[^}]*route="\/api\/v1\/licenses\/heartbeat"[^}]*status="404"/);
    expect(text).toMatch(/http_requests_total\{[^}]*route="unmatched"/);
    expect(text).not.toContain('/no/such/path/123');
    expect(text).toMatch(/http_request_duration_seconds_bucket\{/);
    expect(text).toMatch(/license_acquire_total\{[^}]*result="granted"/);
    expect(text).toMatch(/license_active_sessions\{[^}]*\} \d+/);
    expect(text).toMatch(/process_cpu_user_seconds_total/);
  });

  it('a scrape never queries Postgres; the active-sessions gauge is recounted in the background', async () => {
    const store = api.service.app.store;
    const count = store.countActive.bind(store);
    let calls = 0;
    store.countActive = async () => {
      calls++;
      return await count();
    };
    try {
      for (let i = 0; i < 20; i++) expect((await fetch(`${api.url}/metrics`)).status).toBe(200);
      // At most the background recount (once a second here) ran meanwhile, never one per scrape.
      expect(calls).toBeLessThanOrEqual(2);
      const gauge = async () =>
        Number(/license_active_sessions\{[^}]*\} (\d+)/.exec(await (await fetch(`${api.url}/metrics`)).text())?.[1]);
      // Current within a refresh interval (sessions expire meanwhile here: compare with a fresh count).
      const held = await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'hw-gauge' });
      const start = Date.now();
      let matched = false;
      while (!matched && Date.now() - start < 10_000) {
        await api.post('/api/v1/licenses/heartbeat', { session_id: held.body.session_id }); // keep one session live
        matched = (await gauge()) === (await count()) && (await count()) > 0;
        if (!matched) await new Promise((r) => setTimeout(r, 100));
      }
      expect(matched).toBe(true);
    } finally {
      store.countActive = count;
    }
  });

  it('a scrape flood renders the registry at most once a second (the rest share that rendering)', async () => {
    const registry = api.service.app.metrics.registry;
    const render = registry.metrics.bind(registry);
    let renders = 0;
    registry.metrics = async () => {
      renders++;
      return await render();
    };
    try {
      await new Promise((r) => setTimeout(r, 1100)); // past any earlier rendering
      const t0 = Date.now();
      const texts = await Promise.all(Array.from({ length: 50 }, () => fetch(`${api.url}/metrics`).then((r) => r.text())));
      for (const t of texts) expect(t).toMatch(/license_active_sessions/);
      expect(renders).toBeLessThanOrEqual(1 + Math.floor((Date.now() - t0) / 1000));
    } finally {
      registry.metrics = render;
    }
  });
});
