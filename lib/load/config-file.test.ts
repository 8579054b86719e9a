import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLoadConfig, readLoadConfig } from './config-file.ts';
import { loadOptionsFromFlags } from './run-options.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-load-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('k6-shaped config files', () => {
  it('reads a scenario, thresholds and our own settings', async () => {
    const file = join(dir, 'k6.json');
    await writeFile(
      file,
      JSON.stringify({
        scenarios: {
          steady: {
            executor: 'constant-arrival-rate',
            rate: 500,
            timeUnit: '1s',
            duration: '30s',
            preAllocatedVUs: 50,
            maxVUs: 200,
          },
        },
        thresholds: { http_req_failed: ['rate<0.01'], http_req_duration: [{ threshold: 'p(99)<250', abortOnFail: true }] },
        verdict: { url: 'http://127.0.0.1:30080/health/ready', connections: 16, timeout: '5s', scenario: 'flow.ts' },
      }),
    );
    const c = await readLoadConfig(file);
    expect(c.executor).toMatchObject({ executor: 'constant-arrival-rate', rate: 500, maxVUs: 200 });
    expect(c.thresholds?.http_req_duration).toEqual([{ threshold: 'p(99)<250', abortOnFail: true }]);
    expect(c).toMatchObject({
      url: 'http://127.0.0.1:30080/health/ready',
      connections: 16,
      timeout: '5s',
      scenario: join(dir, 'flow.ts'),
    });
  });

  it('reads YAML and the vus/duration and stages shortcuts', async () => {
    const file = join(dir, 'k6.yaml');
    await writeFile(file, 'vus: 5\nduration: 10s\nthresholds:\n  http_req_duration: ["p(95)<500"]\n');
    expect((await readLoadConfig(file)).executor).toEqual({ executor: 'constant-vus', vus: 5, duration: '10s' });
    expect(parseLoadConfig({ stages: [{ target: 10, duration: '5s' }] }).executor).toEqual({
      executor: 'ramping-vus',
      startVUs: 1,
      stages: [{ target: 10, duration: '5s' }],
    });
  });

  it('refuses what it would otherwise silently ignore', () => {
    expect(() =>
      parseLoadConfig({ scenarios: { a: { executor: 'constant-vus', vus: 1, duration: '1s', exec: 'main' } } }),
    ).toThrow(/exec/);
    expect(() => parseLoadConfig({ scenarios: { a: { executor: 'per-vu-iterations', vus: 1, iterations: 3 } } })).toThrow(
      /not a valid load configuration/,
    );
    expect(() => parseLoadConfig({ iterations: 100 })).toThrow(/iterations are not supported/);
    expect(() => parseLoadConfig({ vus: 3 })).toThrow(/needs a "duration"/);
    expect(() => parseLoadConfig({ thresholds: { http_req_duration: ['p95<1'] } })).toThrow(/not of the form/);
    expect(() =>
      parseLoadConfig({
        scenarios: {
          a: { executor: 'constant-vus', vus: 1, duration: '1s' },
          b: { executor: 'constant-vus', vus: 1, duration: '1s' },
        },
      }),
    ).toThrow(/one scenario per run/);
  });

  it('lets flags override the file and applies a default threshold when none is given', async () => {
    const file = join(dir, 'plain.json');
    await writeFile(
      file,
      JSON.stringify({
        scenarios: { s: { executor: 'constant-arrival-rate', rate: 50, duration: '1m' } },
        verdict: { url: 'http://127.0.0.1:1/' },
      }),
    );
    const r = await loadOptionsFromFlags({ config: file, duration: '5s' });
    expect(r.options.executor).toMatchObject({ executor: 'constant-arrival-rate', rate: 50, duration: '5s' });
    expect(r.defaultThresholds).toBe(true);
    expect(r.options.thresholds).toEqual({ http_req_failed: ['rate<0.01'] });
    const f = await loadOptionsFromFlags({
      url: 'http://127.0.0.1:1/',
      rate: '30000/m',
      duration: '2s',
      threshold: ['http_req_duration: p(99)<250'],
    });
    expect(f.options.executor).toMatchObject({ executor: 'constant-arrival-rate', rate: 500, duration: '2s' });
    expect(f.options.thresholds).toEqual({ http_req_duration: ['p(99)<250'] });
    await expect(loadOptionsFromFlags({ url: 'http://127.0.0.1:1/', rate: '5/s' })).rejects.toThrow(/--duration/);
    await expect(loadOptionsFromFlags({ url: 'http://127.0.0.1:1/', rate: '5/s', vus: '2', duration: '1s' })).rejects.toThrow(
      /exclude each other/,
    );
    await expect(
      loadOptionsFromFlags({ url: 'http://127.0.0.1:1/', rate: '5/s', duration: '1s', remoteRateCap: '100' }),
    ).rejects.toThrow(/only lower/);
  });
});
