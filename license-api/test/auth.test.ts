import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken, startTestApi, TEST_SECRET, type TestApi } from './harness.ts';

const body = { license_key: 'TEST-KEY', hardware_id: 'hw-auth' };

describe('HS256 bearer tokens', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
  });

  const call = async (authorization?: string) => {
    const res = await fetch(`${api.url}/api/v1/licenses/acquire`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    });
    return { status: res.status, body: (await res.json()) as any, www: res.headers.get('www-authenticate') };
  };

  it('accepts a valid token', async () => {
    expect((await call(`Bearer ${await mintToken()}`)).status).toBe(201);
  });

  it('refuses missing, malformed, forged, expired and unsigned tokens with 401', async () => {
    const cases: Array<[string, string | undefined, string]> = [
      ['no header', undefined, 'UNAUTHENTICATED'],
      ['empty bearer', 'Bearer ', 'UNAUTHENTICATED'],
      ['basic scheme', 'Basic dXNlcjpwYXNz', 'UNAUTHENTICATED'],
      ['garbage', 'Bearer not-a-jwt', 'INVALID_TOKEN'],
      ['wrong secret', `Bearer ${await mintToken('u', { secret: 'another-secret-another-secret-another-1' })}`, 'INVALID_TOKEN'],
      [
        'expired',
        `Bearer ${await new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('u')
          .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
          .sign(new TextEncoder().encode(TEST_SECRET))}`,
        'TOKEN_EXPIRED',
      ],
      ['alg none', `Bearer ${new UnsecuredJWT({ sub: 'u' }).setExpirationTime('5m').encode()}`, 'INVALID_TOKEN'],
      ['HS512 with the right secret', `Bearer ${await mintToken('u', { alg: 'HS512' })}`, 'INVALID_TOKEN'],
      [
        'no subject',
        `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(TEST_SECRET))}`,
        'INVALID_TOKEN',
      ],
    ];
    for (const [name, header, code] of cases) {
      const r = await call(header);
      expect([name, r.status, r.body?.error?.code]).toEqual([name, 401, code]);
      expect(r.www).toMatch(/^Bearer/);
    }
  });
});

describe('token expiry is required and bounded', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ JWT_MAX_LIFETIME_SECONDS: '3600' });
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
  });
  const sign = (exp?: number | string) => {
    const jwt = new SignJWT({ licenses: ['*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('exp-user').setIssuedAt();
    if (exp !== undefined) jwt.setExpirationTime(exp);
    return jwt.sign(new TextEncoder().encode(TEST_SECRET));
  };

  it('refuses a token without exp, and one that expires further out than JWT_MAX_LIFETIME_SECONDS', async () => {
    const none = await api.post('/api/v1/licenses/acquire', body, await sign());
    expect([none.status, none.body.error?.code]).toEqual([401, 'INVALID_TOKEN']);
    expect(none.body.error.message).toMatch(/exp/);
    const tooLong = await api.post('/api/v1/licenses/acquire', body, await sign('2h'));
    expect([tooLong.status, tooLong.body.error?.code]).toEqual([401, 'INVALID_TOKEN']);
    expect(tooLong.body.error.message).toMatch(/3600 s/);
    const tenYears = await api.post(
      '/api/v1/licenses/acquire',
      body,
      await sign(Math.floor(Date.now() / 1000) + 10 * 365 * 86_400),
    );
    expect(tenYears.status).toBe(401);
    expect((await api.post('/api/v1/licenses/acquire', body, await sign('59m'))).status).toBe(201);
  });
});

describe('the issued-at claim (issue 19, item 7)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
  });
  const issuedAt = (secondsFromNow: number) =>
    new SignJWT({ licenses: ['*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('iat-user')
      .setIssuedAt(Math.floor(Date.now() / 1000) + secondsFromNow)
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(TEST_SECRET));
  const session = { session_id: '00000000-0000-4000-8000-000000000000' };

  it('refuses a token issued in the future beyond the clock tolerance (5 s) with 401, accepts one within it', async () => {
    for (const ahead of [365 * 86_400, 3600, 60]) {
      const r = await api.post('/api/v1/licenses/heartbeat', session, await issuedAt(ahead));
      expect([ahead, r.status, r.body.error?.code]).toEqual([ahead, 401, 'INVALID_TOKEN']);
      expect(r.body.error.message).toMatch(/iat/);
    }
    expect((await api.post('/api/v1/licenses/heartbeat', session, await issuedAt(3))).status).toBe(404);
    expect((await api.post('/api/v1/licenses/heartbeat', session, await issuedAt(-60))).status).toBe(404);
  });
});

describe('the subject claim', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
  });

  it('refuses subjects Postgres cannot store as they are (NUL, control characters, lone surrogates, U+FFFD, too long) with 401', async () => {
    for (const sub of [
      'a\u0000b',
      '\u0000',
      'tab\there',
      'new\nline',
      'del\u007f',
      'c1\u0085',
      'lone\ud800',
      'bad\ufffdutf8',
      'x'.repeat(257),
    ]) {
      const r = await api.post(
        '/api/v1/licenses/heartbeat',
        { session_id: '00000000-0000-4000-8000-000000000000' },
        await mintToken(sub),
      );
      expect([JSON.stringify(sub).slice(0, 20), r.status, r.body.error.code]).toEqual([
        JSON.stringify(sub).slice(0, 20),
        401,
        'INVALID_TOKEN',
      ]);
    }
    // Ordinary Unicode subjects are fine.
    for (const sub of ['ünïcødé', 'user@example.com', 'auth0|5f7c8ec7c33c6c004bbafe82', '用户']) {
      expect(
        (
          await api.post(
            '/api/v1/licenses/heartbeat',
            { session_id: '00000000-0000-4000-8000-000000000000' },
            await mintToken(sub),
          )
        ).status,
      ).toBe(404);
    }
  });
});

describe('JWKS (asymmetric) tokens', () => {
  let api: TestApi;
  let jwks: Server;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  beforeAll(async () => {
    keys = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(keys.publicKey)), alg: 'RS256', kid: 'k1', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    api = await startTestApi({
      JWT_SECRET: '',
      JWT_JWKS_URL: url,
      JWT_ISSUER: 'https://issuer.test',
      JWT_AUDIENCE: 'license-api',
    });
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
    jwks?.close();
  });

  it('accepts an RS256 token from the JWKS and refuses algorithm confusion', async () => {
    const good = await new SignJWT({ licenses: ['*'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('u')
      .setIssuer('https://issuer.test')
      .setAudience('license-api')
      .setExpirationTime('5m')
      .sign(keys.privateKey);
    expect((await api.post('/api/v1/licenses/acquire', body, good)).status).toBe(201);

    const wrongAudience = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('u')
      .setIssuer('https://issuer.test')
      .setAudience('someone-else')
      .setExpirationTime('5m')
      .sign(keys.privateKey);
    expect((await api.post('/api/v1/licenses/acquire', body, wrongAudience)).status).toBe(401);

    const noExp = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('u')
      .setIssuer('https://issuer.test')
      .setAudience('license-api')
      .sign(keys.privateKey);
    expect((await api.post('/api/v1/licenses/acquire', body, noExp)).status).toBe(401);

    // The classic confusion: HS256 "signed" with the public key's bytes must not verify.
    const spki = new TextEncoder().encode(JSON.stringify(await exportJWK(keys.publicKey)));
    const confused = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setSubject('u')
      .setIssuer('https://issuer.test')
      .setAudience('license-api')
      .setExpirationTime('5m')
      .sign(spki);
    const r = await api.post('/api/v1/licenses/acquire', body, confused);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('INVALID_TOKEN');
  });
});
