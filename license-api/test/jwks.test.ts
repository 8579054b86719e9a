import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT, exportJWK, generateKeyPair, jwtVerify, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DependencyError } from '../src/errors.ts';
import { JwksKeys } from '../src/jwks.ts';
import { startTestApi } from './harness.ts';

type Mode = 'ok' | '503' | 'redirect' | 'garbage' | 'not-a-key-set' | 'hang' | 'huge' | 'huge-unannounced';

/** A JWKS endpoint on loopback whose answer the test switches: the identity provider, up or failing in each way. */
class JwksServer {
  mode: Mode = 'ok';
  keys: JWK[] = [];
  /** Bytes written in answers (a client that stops reading early makes this small). */
  bytesSent = 0;
  requests = 0;
  private server: Server;
  private hanging = new Set<() => void>();
  constructor() {
    this.server = createServer((req, res) => {
      this.requests++;
      const send = (status: number, body: string, headers: Record<string, string> = {}) => {
        this.bytesSent += body.length;
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
      };
      switch (this.mode) {
        case 'ok':
          return send(200, JSON.stringify({ keys: this.keys }));
        case '503':
          return send(503, '{"error":"unavailable"}');
        case 'redirect':
          return send(302, '', { location: `${this.url}/elsewhere` });
        case 'garbage':
          return send(200, '<html>maintenance</html>');
        case 'not-a-key-set':
          return send(200, JSON.stringify({ kyes: this.keys }));
        case 'hang':
          // Headers and then nothing: a stalled identity provider.
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"keys":[');
          this.hanging.add(() => res.destroy());
          return;
        case 'huge':
        case 'huge-unannounced': {
          // 64 MiB of valid-looking JSON, streamed as fast as the client takes it.
          const total = 64 * 1024 * 1024;
          const chunk = Buffer.alloc(64 * 1024, 0x20);
          res.writeHead(200, {
            'content-type': 'application/json',
            ...(this.mode === 'huge' ? { 'content-length': String(total + 11) } : {}),
          });
          let sent = 0;
          res.write('{"keys":[]');
          const pump = () => {
            while (sent < total) {
              sent += chunk.length;
              this.bytesSent += chunk.length;
              if (!res.write(chunk)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end('}');
          };
          res.on('close', () => res.removeAllListeners('drain'));
          pump();
          return;
        }
      }
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
  }

  async stop(): Promise<void> {
    for (const h of this.hanging) h();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'license-api';
let signer: { privateKey: CryptoKey; jwk: JWK };
let jwks: JwksServer;

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  signer = { privateKey, jwk: { ...(await exportJWK(publicKey)), alg: 'RS256', kid: 'k1', use: 'sig' } };
  jwks = new JwksServer();
  jwks.keys = [signer.jwk];
  await jwks.start();
});
afterAll(async () => {
  await jwks?.stop();
});

let n = 0;
/** A valid token the API has not seen yet (so it is verified, not served from the verified-token cache). */
function validToken(kid = 'k1', key = signer.privateKey): Promise<string> {
  return new SignJWT({ licenses: ['*'] })
    .setProtectedHeader({ alg: 'RS256', kid })
    .setSubject(`jwks-user-${++n}`)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);
}

const acquire = (api: Awaited<ReturnType<typeof startTestApi>>, token: string) =>
  api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: `hw-${n}` }, token);

const jwksEnv = (extra: Record<string, string> = {}) => ({
  JWT_SECRET: '',
  JWT_JWKS_URL: `${jwks.url}/jwks.json`,
  JWT_ISSUER: ISSUER,
  JWT_AUDIENCE: AUDIENCE,
  LICENSE_SEED: 'TEST-KEY=1000',
  ...extra,
});

describe('a JWKS endpoint that fails before any key was fetched (issue 19, item 3)', () => {
  const cases: Array<[Mode, string]> = [
    ['503', 'DEPENDENCY_UNAVAILABLE'],
    ['redirect', 'DEPENDENCY_UNAVAILABLE'],
    ['garbage', 'DEPENDENCY_UNAVAILABLE'],
    ['not-a-key-set', 'DEPENDENCY_UNAVAILABLE'],
    ['hang', 'DEPENDENCY_TIMEOUT'],
  ];
  for (const [mode, code] of cases) {
    it(`${mode}: a valid token gets 503 ${code} with Retry-After, never 401`, async () => {
      jwks.mode = mode;
      await using api = await startTestApi(jwksEnv());
      const r = await acquire(api, await validToken());
      expect([r.status, r.body.error?.code]).toEqual([503, code]);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      jwks.mode = 'ok';
    });
  }

  it('a key set larger than 1 MiB is refused without reading it all (announced or not)', async () => {
    for (const mode of ['huge', 'huge-unannounced'] as const) {
      jwks.mode = mode;
      jwks.bytesSent = 0;
      await using api = await startTestApi(jwksEnv());
      const t0 = Date.now();
      const r = await acquire(api, await validToken());
      const ms = Date.now() - t0;
      await sleep(200);
      console.info(
        `${mode} JWKS (64 MiB): ${r.status} ${r.body.error?.code} after ${ms} ms; ${(jwks.bytesSent / 1048576).toFixed(1)} MiB sent`,
      );
      expect([mode, r.status, r.body.error?.code]).toEqual([mode, 503, 'DEPENDENCY_UNAVAILABLE']);
      // What the server managed to write before we stopped reading: the kernel's buffers, not 64 MiB.
      expect(jwks.bytesSent).toBeLessThan(16 * 1024 * 1024);
    }
    jwks.mode = 'ok';
  });
});

describe('a JWKS outage after keys were fetched', () => {
  it('tokens keep verifying with the last good key set until JWT_JWKS_STALE_MAX_SECONDS, then 503; the set is used again once the endpoint answers', async () => {
    jwks.mode = 'ok';
    await using api = await startTestApi(jwksEnv({ JWT_JWKS_REFRESH_SECONDS: '1', JWT_JWKS_STALE_MAX_SECONDS: '3' }));
    expect((await acquire(api, await validToken())).status).toBe(201);
    jwks.mode = '503';
    const t0 = Date.now();
    const during: number[] = [];
    // Past the refresh interval the set is stale and refetching fails: it still verifies.
    while (Date.now() - t0 < 2000) {
      during.push((await acquire(api, await validToken())).status);
      await sleep(250);
    }
    expect(during.filter((s) => s !== 201)).toEqual([]);
    await sleep(Math.max(0, 3300 - (Date.now() - t0)));
    const tooOld = await acquire(api, await validToken());
    expect([tooOld.status, tooOld.body.error?.code]).toEqual([503, 'DEPENDENCY_UNAVAILABLE']);
    jwks.mode = 'ok';
    await sleep(1100);
    expect((await acquire(api, await validToken())).status).toBe(201);
  });

  it('a token signed with a key the stale set does not have gets 503 during the outage (it may be a new key), 401 once the endpoint says it does not exist', async () => {
    jwks.mode = 'ok';
    await using api = await startTestApi(jwksEnv({ JWT_JWKS_REFRESH_SECONDS: '1', JWT_JWKS_STALE_MAX_SECONDS: '600' }));
    expect((await acquire(api, await validToken())).status).toBe(201);
    const other = await generateKeyPair('RS256');
    jwks.mode = '503';
    await sleep(1100);
    const unknown = await acquire(api, await validToken('k2', other.privateKey));
    expect([unknown.status, unknown.body.error?.code]).toEqual([503, 'DEPENDENCY_UNAVAILABLE']);
    jwks.mode = 'ok';
    await sleep(1100);
    const refused = await acquire(api, await validToken('k2', other.privateKey));
    expect([refused.status, refused.body.error?.code]).toEqual([401, 'INVALID_TOKEN']);
    expect((await acquire(api, await validToken())).status).toBe(201);
  });
});

describe('a signing key rotation (issue 21: key-rotation)', () => {
  it('a key set of two keys verifies the tokens of both by kid; with FAULT_JWKS_FIRST_KEY_ONLY the second key is refused (401)', async () => {
    const next = await generateKeyPair('RS256');
    const nextJwk = { ...(await exportJWK(next.publicKey)), alg: 'RS256', kid: 'k2', use: 'sig' };
    jwks.mode = 'ok';
    jwks.keys = [signer.jwk, nextJwk];
    try {
      await using api = await startTestApi(jwksEnv());
      expect((await acquire(api, await validToken('k1'))).status).toBe(201);
      expect((await acquire(api, await validToken('k2', next.privateKey))).status).toBe(201);
      await using broken = await startTestApi(jwksEnv({ FAULT_JWKS_FIRST_KEY_ONLY: 'true' }));
      expect((await acquire(broken, await validToken('k1'))).status).toBe(201);
      const refused = await acquire(broken, await validToken('k2', next.privateKey));
      expect([refused.status, refused.body.error?.code]).toEqual([401, 'INVALID_TOKEN']);
    } finally {
      jwks.keys = [signer.jwk];
    }
  });
});

describe('a long JWKS outage, on a clock the test moves', () => {
  it('an outage of 30 minutes (and of hours) refuses no valid token; past the stale limit tokens get 503; the endpoint is asked about once per failed-fetch backoff', async () => {
    jwks.mode = 'ok';
    let clock = 1_000_000;
    const keys = new JwksKeys({ url: `${jwks.url}/jwks.json`, refreshMs: 600_000, staleMaxMs: 6 * 3600_000, now: () => clock });
    const verify = async () => {
      try {
        await jwtVerify(await validToken(), keys.getKey, { issuer: ISSUER, audience: AUDIENCE });
        return 'ok';
      } catch (err) {
        return err instanceof DependencyError ? err.code : (err as Error).name;
      }
    };
    expect(await verify()).toBe('ok');
    jwks.mode = '503';
    const start = clock;
    const fetchesBefore = keys.fetches;
    const outcomes = new Map<string, number>();
    // Every simulated minute for 35 minutes, then every simulated hour to 5 h 55 min.
    const steps = [
      ...Array.from({ length: 35 }, (_, i) => (i + 1) * 60_000),
      ...[1, 2, 3, 4, 5].map((h) => h * 3600_000 + 55 * 60_000),
    ];
    for (const at of steps) {
      clock = start + at;
      const r = await verify();
      outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
      await sleep(10); // let the background refetch (503) finish
    }
    console.info(
      `JWKS outage on a moved clock, 35 min then to 5 h 55 min: ${JSON.stringify(Object.fromEntries(outcomes))}, ${keys.fetches - fetchesBefore} fetches attempted`,
    );
    expect(Object.fromEntries(outcomes)).toEqual({ ok: steps.length });
    // The endpoint was asked once per step at most (each step is past the failed-fetch backoff), never once per token.
    expect(keys.fetches - fetchesBefore).toBeLessThanOrEqual(steps.length);
    clock = start + 6 * 3600_000 + 1000;
    expect(await verify()).toBe('DEPENDENCY_UNAVAILABLE');
    jwks.mode = 'ok';
    clock += 5000;
    expect(await verify()).toBe('ok');
  });
});
