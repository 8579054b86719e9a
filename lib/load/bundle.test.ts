import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleLoadAgent } from './bundle.ts';
import { ok, startTestServer, type TestServer } from './testing/servers.ts';

let dir: string;
let server: TestServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-agent-'));
  server = await startTestServer(ok('agent-target', '3.1.4'));
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

function runNode(file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    // cwd outside the repository: the bundle must not need node_modules.
    const child = spawn(process.execPath, [file, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('load agent bundle', () => {
  it('runs engine + scenario as one file with plain node', async () => {
    const scenario = join(dir, 'scenario.ts');
    await writeFile(
      scenario,
      `
      import type { Scenario } from ${JSON.stringify(resolve(import.meta.dirname, 'index.ts'))};
      const scenario: Scenario = { flows: [{ name: 'ping', steps: [{ name: 'ping', path: '/ping', check: (r) => r.text() === 'ok\\n' }] }] };
      export default scenario;
    `,
    );
    const out = await bundleLoadAgent({ scenario, outfile: join(dir, 'load-agent.mjs') });
    expect(out.bytes).toBeGreaterThan(10_000);
    const r = await runNode(out.outfile, [
      '--url',
      server.url,
      '--rate',
      '100/s',
      '--duration',
      '1s',
      '--threshold',
      'http_req_failed: rate<0.01',
      '--min-requests',
      '50',
      '--max-schedule-delay',
      '1s',
      '--quiet',
      '--backend-header',
      'x-served-by',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.assessment.verdict).toBe('PASS');
    expect(result.summary.counts).toMatchObject({ scheduled: 100, succeeded: 100 });
    expect(result.summary.byName).toHaveProperty('ping');
    expect(result.summary.servedBy).toEqual({ 'agent-target': 100 });
    expect(server.requests()).toBe(100);
  }, 30_000);

  it('keeps the target guard and the exit codes', async () => {
    const out = await bundleLoadAgent({ outfile: join(dir, 'plain-agent.mjs') });
    const refused = await runNode(out.outfile, ['--url', 'http://192.0.2.1/', '--rate', '5/s', '--duration', '1s']);
    expect(refused.code).toBe(64);
    expect(refused.stderr).toMatch(/--allow-remote/);
    const fail = await runNode(out.outfile, [
      '--url',
      server.url,
      '--rate',
      '50/s',
      '--duration',
      '500ms',
      '--threshold',
      'http_req_duration: max<0.001',
      '--quiet',
    ]);
    expect(fail.code).toBe(1);
  }, 30_000);
});
