import pg from 'pg';
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { docker } from '../lib/docker/cli.ts';
import { findEngine } from '../lib/docker/engine.ts';
import { depsMode, startTestDependencies, type TestDependencies } from './dependencies.ts';

async function check(deps: TestDependencies) {
  const c = new pg.Client({ connectionString: deps.postgresUrl });
  await c.connect();
  const v = (await c.query('SHOW server_version')).rows[0].server_version as string;
  await c.end();
  const r = createClient({ url: deps.redisUrl });
  await r.connect();
  const pong = await r.ping();
  await r.quit();
  return { postgres: v, redis: pong };
}

const saved = { ...process.env };
afterEach(() => {
  for (const k of ['VERDICT_POSTGRES_IMAGE', 'VERDICT_REDIS_IMAGE', 'VERDICT_TEST_PULL', 'DOCKER_HOST']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe('the test dependencies fixture', () => {
  it('reads VERDICT_TEST_DEPS: auto, containers or host (default host)', () => {
    expect(depsMode(undefined)).toBe('host');
    expect(depsMode('auto')).toBe('auto');
    expect(depsMode('containers')).toBe('containers');
    expect(() => depsMode('docker')).toThrow(/use auto, containers or host/);
  });

  it('host: PostgreSQL and Redis as host processes', async () => {
    await using deps = await startTestDependencies('host');
    expect(deps.strategy).toBe('host');
    expect(await check(deps)).toEqual({ postgres: expect.stringMatching(/^\d+\./), redis: 'PONG' });
  });

  it('containers: PostgreSQL and Redis through testcontainers (local images here), removed on stop', async () => {
    const deps = await startTestDependencies('containers');
    const engine = await findEngine();
    try {
      expect(deps.strategy).toBe('containers');
      console.info(`containers: ${deps.detail}, started in ${deps.startMs} ms`);
      expect(await check(deps)).toEqual({ postgres: expect.stringMatching(/^15\./), redis: 'PONG' });
      const ours = (
        await docker(engine!, ['ps', '--filter', `label=verdict.test-deps=${process.pid}`, '--format', '{{.Image}}'])
      ).stdout
        .trim()
        .split('\n')
        .sort();
      expect(ours).toHaveLength(2);
    } finally {
      await deps.stop();
    }
    const left = await findEngine();
    if (left)
      expect(
        (await docker(left, ['ps', '-a', '--filter', `label=verdict.test-deps=${process.pid}`, '--quiet'])).stdout.trim(),
      ).toBe('');
  }, 600_000); // the first time on a machine it builds the local postgres and redis images (about 30 s)

  it('never pulls: a configured image that is not present fails containers with the reason, and auto falls back to host processes', async () => {
    process.env.VERDICT_POSTGRES_IMAGE = 'verdict/missing-postgres:0';
    await expect(startTestDependencies('containers')).rejects.toThrow(
      /no PostgreSQL and Redis for the tests \(VERDICT_TEST_DEPS=containers\); each way failed:\n {2}containers: VERDICT_POSTGRES_IMAGE=verdict\/missing-postgres:0 is not present in the engine .* pulls are off/,
    );
    await using deps = await startTestDependencies('auto');
    expect(deps.strategy).toBe('host');
    expect((await check(deps)).redis).toBe('PONG');
  });
});
