import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startRedis } from '../../lib/services/redis.ts';
import { loadConfig } from '../src/config.ts';
import { startTestApi } from './harness.ts';

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await fn()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

describe('dependency outage', () => {
  it('Redis down: ready 503 with detail, live 200, rate-limited acquire 503 + Retry-After; Redis back: ready 200 without a restart', async () => {
    await using redis = await startRedis();
    await using api = await startTestApi({ REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: '1000', DEPENDENCY_TIMEOUT_MS: '300' });
    const ready = () => fetch(`${api.url}/health/ready`).then(async (r) => ({ status: r.status, body: await r.json() as any }));
    expect((await ready()).status).toBe(200);
    expect((await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'hw-dep' })).status).toBe(201);

    await redis.pause();
    await waitFor('readiness 503', async () => (await ready()).status === 503);
    const r = await ready();
    expect(r.body.status).toBe('not_ready');
    expect(r.body.checks.database).toBe('ok');
    expect(r.body.checks.redis).toMatch(/^error/);
    expect((await fetch(`${api.url}/health/live`)).status).toBe(200);
    const a = await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'hw-dep-2' });
    expect(a.status).toBe(503);
    expect(a.body.error.code).toBe('DEPENDENCY_UNAVAILABLE');
    expect(a.headers.get('retry-after')).toBe('1');
    // Postgres still answers: heartbeats do not need Redis.
    expect((await api.post('/api/v1/licenses/heartbeat', { session_id: 'x' })).status).toBe(404);

    await redis.start();
    await waitFor('readiness 200 again', async () => (await ready()).status === 200);
    expect((await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'hw-dep-2' })).status).toBe(201);
  });
});

describe('configuration', () => {
  it('a bad value stops start-up with exit 78 and names the variable', async () => {
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    const child = spawn(process.execPath, [main], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: 'mysql://nope', REDIS_URL: 'redis://127.0.0.1:1', JWT_SECRET: 'short', PORT: 'eighty' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(78);
    expect(err).toContain('DATABASE_URL: must be a postgres:// URL');
    expect(err).toContain('JWT_SECRET: must be at least 32 characters');
    expect(err).toMatch(/PORT: .*eighty/);
    expect(err).not.toContain('    at '); // no stack trace
  });

  it('the statement timeout must be shorter than the request deadline', () => {
    const base = { DATABASE_URL: 'postgres://x', REDIS_URL: 'redis://x', JWT_SECRET: 'y'.repeat(32) };
    expect(loadConfig(base).REQUEST_DEADLINE_MS).toBe(5000);
    expect(loadConfig(base).DB_STATEMENT_TIMEOUT_MS).toBeLessThan(5000);
    expect(() => loadConfig({ ...base, REQUEST_DEADLINE_MS: '3000', DB_STATEMENT_TIMEOUT_MS: '3000' }))
      .toThrow('DB_STATEMENT_TIMEOUT_MS: must be shorter than REQUEST_DEADLINE_MS');
  });
});
