import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken, startTestApi, type TestApi } from './harness.ts';

/**
 * Which licenses a subject may use comes from its token's `licenses` claim (issue 19, item 6):
 * any authenticated subject could take every seat of any license it named.
 */
describe('licenses bound to the token (the licenses claim)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ LICENSE_SEED: 'BOUND-A=5,BOUND-B=5' });
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
  });
  const acquire = (key: string, token: string, hw = 'hw-bound') =>
    api.post('/api/v1/licenses/acquire', { license_key: key, hardware_id: hw }, token);
  const answer = (r: { status: number; body: any }) => `${r.status}${r.body?.error ? ` ${r.body.error.code}` : ''}`;

  it('a token that names license A may acquire A, not B, and a key that does not exist gets the same 403 (nothing to learn)', async () => {
    const onlyA = await mintToken('bound-1', { licenses: ['BOUND-A'] });
    expect(answer(await acquire('BOUND-A', onlyA))).toBe('201');
    expect(answer(await acquire('BOUND-B', onlyA))).toBe('403 LICENSE_NOT_PERMITTED');
    expect(answer(await acquire('NO-SUCH-KEY', onlyA))).toBe('403 LICENSE_NOT_PERMITTED');
  });

  it('heartbeat and release of a session need a token that still names its license', async () => {
    const a = await acquire('BOUND-A', await mintToken('bound-2', { licenses: ['BOUND-A', 'BOUND-B'] }), 'hw-2');
    expect(a.status).toBe(201);
    const session = { session_id: a.body.session_id };
    const onlyB = await mintToken('bound-2', { licenses: ['BOUND-B'] });
    expect(answer(await api.post('/api/v1/licenses/heartbeat', session, onlyB))).toBe('403 LICENSE_NOT_PERMITTED');
    expect(answer(await api.post('/api/v1/licenses/release', session, onlyB))).toBe('403 LICENSE_NOT_PERMITTED');
    const onlyA = await mintToken('bound-2', { licenses: ['BOUND-A'] });
    expect(answer(await api.post('/api/v1/licenses/heartbeat', session, onlyA))).toBe('200');
    expect(answer(await api.post('/api/v1/licenses/release', session, onlyA))).toBe('200');
  });

  it('"*" grants every license (the harness and service clients)', async () => {
    const all = await mintToken('bound-3', { licenses: ['*'] });
    expect(answer(await acquire('BOUND-A', all, 'hw-3'))).toBe('201');
    expect(answer(await acquire('BOUND-B', all, 'hw-3'))).toBe('201');
    expect(answer(await acquire('NO-SUCH-KEY', all, 'hw-3'))).toBe('404 LICENSE_NOT_FOUND');
  });

  it('a token without the claim may use no license (JWT_LICENSES_CLAIM=required, the default)', async () => {
    const none = await mintToken('bound-4', { licenses: null });
    const r = await acquire('BOUND-A', none, 'hw-4');
    expect(answer(r)).toBe('403 LICENSE_NOT_PERMITTED');
    expect(r.body.error.message).toMatch(/licenses claim/);
    expect(
      answer(await api.post('/api/v1/licenses/heartbeat', { session_id: '00000000-0000-4000-8000-000000000000' }, none)),
    ).toBe('403 LICENSE_NOT_PERMITTED');
  });

  it('a malformed claim makes the token invalid (401)', async () => {
    for (const licenses of ['BOUND-A', [], [1], ['ok', ''], ['with space'], ['x'.repeat(129)], { a: 1 }, Array(1001).fill('K')]) {
      const r = await acquire('BOUND-A', await mintToken('bound-5', { licenses }), 'hw-5');
      expect([JSON.stringify(licenses).slice(0, 30), answer(r)]).toEqual([
        JSON.stringify(licenses).slice(0, 30),
        '401 INVALID_TOKEN',
      ]);
    }
  });
});

describe('JWT_LICENSES_CLAIM=optional (while an identity provider is changed to issue the claim)', () => {
  it('a token without the claim may use every license; one with it is still held to it', async () => {
    await using api = await startTestApi({ LICENSE_SEED: 'OPT-A=5,OPT-B=5', JWT_LICENSES_CLAIM: 'optional' });
    const none = await mintToken('opt-1', { licenses: null });
    expect((await api.post('/api/v1/licenses/acquire', { license_key: 'OPT-A', hardware_id: 'h' }, none)).status).toBe(201);
    const onlyA = await mintToken('opt-2', { licenses: ['OPT-A'] });
    expect((await api.post('/api/v1/licenses/acquire', { license_key: 'OPT-B', hardware_id: 'h2' }, onlyA)).status).toBe(403);
  });
});
