import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ok, startTestServer, status, type TestServer } from '../../lib/load/testing/servers.ts';

const verdict = resolve(import.meta.dirname, '../verdict.ts');
let dir: string;
let okServer: TestServer;
let badServer: TestServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-load-cli-'));
  okServer = await startTestServer(ok());
  badServer = await startTestServer(status(503));
});
afterAll(async () => {
  await okServer?.close();
  await badServer?.close();
  await rm(dir, { recursive: true, force: true });
});

function cli(
  args: string[],
  opts: { interruptOn?: RegExp } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [verdict, 'load', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '',
      interrupted = false;
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      // Interrupt once the run is visibly under way (not at a fixed time: start-up is slow on a busy machine).
      if (opts.interruptOn && !interrupted && opts.interruptOn.test(stderr)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('verdict load', () => {
  it('PASS: exit 0, summary table, JSON results and NDJSON ledger in --out, plain progress lines off a TTY', async () => {
    const out = join(dir, 'pass');
    const r = await cli([
      '--url',
      okServer.url,
      '--rate',
      '200/s',
      '--duration',
      '2s',
      '--out',
      out,
      '--ndjson',
      '--progress-every',
      '500ms',
      '--threshold',
      'http_req_duration: p(99)<1000',
      '--max-schedule-delay',
      '1s',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/verdict\s+PASS/);
    expect(r.stdout).toMatch(/http_req_duration/);
    expect(r.stderr).toMatch(/^load: .*target 200\/s/m);
    const saved = JSON.parse(await readFile(join(out, 'load-summary.json'), 'utf8'));
    expect(saved.assessment.verdict).toBe('PASS');
    expect(saved.summary.counts.scheduled).toBe(400);
    expect((await readFile(join(out, 'requests.ndjson'), 'utf8')).trim().split('\n')).toHaveLength(400);
  }, 60_000);

  it('a breached threshold exits 1 (FAIL)', async () => {
    const r = await cli(['--url', badServer.url, '--rate', '100/s', '--duration', '1s']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/default http_req_failed: rate<0.01/);
    expect(r.stdout).toMatch(/✗ http_req_failed: rate<0.01/);
  }, 60_000);

  it('too little data exits 2 (INCONCLUSIVE), as does Ctrl-C', async () => {
    const few = await cli(['--url', okServer.url, '--rate', '20/s', '--duration', '1s']);
    expect(few.code, few.stdout + few.stderr).toBe(2);
    expect(few.stdout).toMatch(/only 20 requests ended; at least 100/);
    const interrupted = await cli(['--url', okServer.url, '--rate', '100/s', '--duration', '20s', '--progress-every', '500ms'], {
      interruptOn: /^load: .*ok [1-9]/m,
    });
    expect(interrupted.code, interrupted.stdout + interrupted.stderr).toBe(2);
    expect(interrupted.stdout).toMatch(/run aborted before its end: interrupted by SIGINT/);
  }, 60_000);

  it('reads a k6-shaped config file', async () => {
    const file = join(dir, 'k6.json');
    await writeFile(
      file,
      JSON.stringify({
        scenarios: { s: { executor: 'constant-vus', vus: 2, duration: '1s' } },
        thresholds: { http_req_failed: ['rate<0.01'] },
        verdict: { url: okServer.url },
      }),
    );
    const r = await cli(['--config', file, '--max-schedule-delay', '1s']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/constant-vus/);
  }, 60_000);

  it('runs a scenario module, and bundles it into a load agent', async () => {
    const scenario = join(dir, 'scenario.ts');
    await writeFile(
      scenario,
      `
      import type { Scenario } from ${JSON.stringify(resolve(import.meta.dirname, '../../lib/load/index.ts'))};
      export default { flows: [{ name: 'probe', steps: [{ name: 'ready', path: '/health/ready' }] }] } satisfies Scenario;
    `,
    );
    const r = await cli([
      '--url',
      okServer.url,
      '--scenario',
      scenario,
      '--vus',
      '2',
      '--duration',
      '1s',
      '--max-schedule-delay',
      '1s',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const agent = join(dir, 'agent.mjs');
    const b = await cli(['--scenario', scenario, '--bundle', agent]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/load agent written to .*agent\.mjs/);
  }, 60_000);

  it('bad usage exits 64, and so does a target the guard refuses', async () => {
    // One case per way of failing (flag values, thresholds, scenario module, guard); the many ways each
    // can go wrong are unit-tested in lib/load (run-options via config-file.test.ts, thresholds, guard).
    for (const [args, message] of [
      [['--url', okServer.url, '--rate', 'fast', '--duration', '1s'], /--rate: "fast" is not a rate/],
      [
        ['--url', okServer.url, '--rate', '10/s', '--duration', '1s', '--threshold', 'http_req_latency: p(99)<1'],
        /unknown metric "http_req_latency"/,
      ],
      [['--url', okServer.url, '--scenario', join(dir, 'nope.ts'), '--rate', '5/s', '--duration', '1s'], /cannot load scenario/],
      [['--url', 'http://192.0.2.1:8080/', '--rate', '10/s', '--duration', '1s'], /--allow-remote/],
      // --agents: checked before any cluster is touched.
      [
        ['--agents', '0', '--url', okServer.url, '--rate', '10/s', '--duration', '1s'],
        /--agents must be a whole number from 1 to 100/,
      ],
      [
        ['--agents', '2', '--target', 'kind', '--url', okServer.url, '--rate', '10/s', '--duration', '1s'],
        /embedded only for now/,
      ],
      [
        [
          '--agents',
          '2',
          '--url',
          okServer.url,
          '--rate',
          '10/s',
          '--duration',
          '1s',
          '--agent-env',
          'VERDICT_TEST_UNSET_VARIABLE',
        ],
        /VERDICT_TEST_UNSET_VARIABLE is not set/,
      ],
      [
        ['--agents', '2', '--url', okServer.url, '--rate', '10/s', '--duration', '1s', '--state-dir', join(dir, 'no-cluster')],
        /none is running .*verdict cluster up/,
      ],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code, args.join(' ')).toBe(64);
      expect(r.stderr).toMatch(message);
    }
  }, 60_000);
});
