import { SignJWT, createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { newIssuerKey, startJwksServer } from './jwks-server.ts';

describe('the harness JWKS server', () => {
  it('serves the published keys, records each fetch with its address and key ids; tokens of both keys verify against the set', async () => {
    await using jwks = await startJwksServer({ host: '127.0.0.1' });
    const [k1, k2] = await Promise.all([newIssuerKey('k1'), newIssuerKey('k2')]);
    jwks.publish([k1.jwk]);
    expect(((await (await fetch(jwks.url)).json()) as { keys: unknown[] }).keys).toHaveLength(1);
    jwks.publish([k1.jwk, k2.jwk]);
    const res = await fetch(jwks.url);
    expect(res.headers.get('content-type')).toBe('application/jwk-set+json');
    const set = createLocalJWKSet((await res.json()) as { keys: [] });
    for (const k of [k1, k2]) {
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: k.alg, kid: k.kid })
        .setExpirationTime('1m')
        .sign(k.privateKey);
      expect((await jwtVerify(token, set)).protectedHeader.kid).toBe(k.kid);
    }
    expect(jwks.fetches.map((f) => [f.from, f.kids])).toEqual([
      ['127.0.0.1', ['k1']],
      ['127.0.0.1', ['k1', 'k2']],
    ]);
    // The private key never leaves: only public parameters are served.
    expect(JSON.stringify(k2.jwk)).not.toMatch(/"d"/);
    expect((await fetch(jwks.url.replace('jwks.json', 'other'))).status).toBe(404);
  });
});
