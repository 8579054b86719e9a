import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker } from '../../lib/docker/cli.ts';
import { useEngine, type DockerEngine } from '../../lib/docker/engine.ts';
import { ensureBaseImage, imagePresent } from '../../lib/docker/images.ts';

const verdict = resolve(import.meta.dirname, '../verdict.ts');
const dir = mkdtempSync(join(tmpdir(), 'verdict-image-cli-'));
// The image store must be enterable by the pods' non-root users.
chmodSync(dir, 0o755);

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [verdict, 'image', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: 'true', ...env },
    });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.once('error', rej);
    child.once('exit', (code) => res({ code, stdout, stderr }));
  });
}

let engine: DockerEngine;
beforeAll(async () => {
  engine = await useEngine();
  await ensureBaseImage(engine);
}, 600_000);
afterAll(async () => {
  await docker(engine, ['image', 'rm', '--force', 'license-api:cli-test']).catch(() => {});
  await engine.release();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('verdict image build', () => {
  it('builds with Docker when an engine answers, and says so', async () => {
    const r = await cli(['build', '--tag', 'cli-test', '--state-dir', join(dir, 'state')], { DOCKER_HOST: engine.host });
    expect(r.stderr + r.stdout, r.stderr).toMatch(
      /a Docker engine answers at unix:\/\/.* docker build -t license-api:cli-test \(classic builder, NODE_IMAGE=verdict\/node:24-bookworm-local, never pulls\)/,
    );
    expect(r.stdout).toMatch(/^built license-api:cli-test with Docker in \d+ ms: sha256:[0-9a-f]{12}, \d+ MB/m);
    expect(r.code).toBe(0);
    expect(await imagePresent(engine, 'license-api:cli-test')).toBe(true);
    expect(existsSync(join(dir, 'state'))).toBe(false);
  }, 300_000);

  it('builds into the embedded image store when no engine answers, and says so', async () => {
    const env = { DOCKER_HOST: `unix://${join(dir, 'no-engine.sock')}`, VERDICT_DOCKER_ROOT: join(dir, 'no-engine') };
    const r = await cli(['build', '--tag', 'cli-store', '--state-dir', join(dir, 'state')], env);
    expect(r.stderr).toContain("no Docker engine answers: building into the embedded cluster's image store");
    expect(r.stdout, r.stderr).toMatch(/^built license-api:cli-store into the embedded image store in \d+ ms/m);
    expect(r.code).toBe(0);
    const forced = await cli(['build', '--tag', 'cli-store', '--builder', 'docker', '--state-dir', join(dir, 'state')], env);
    expect(forced.code).not.toBe(0);
    expect(forced.stderr).toMatch(/--builder docker: no Docker engine answers .* or use --builder store/);
  }, 300_000);
});
