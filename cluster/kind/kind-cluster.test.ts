import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { licenseApi } from '../../apps/license-api/profile.ts';
import { kindStrategy, upKind } from './kind-cluster.ts';

/**
 * kind and Docker cannot run here (no node image can be pulled), so these tests put stand-ins for
 * the two CLIs first on PATH: they record every invocation and answer like the real ones. What is
 * checked is the exact command sequence the provider runs.
 */
let dir: string;
let savedPath: string | undefined;
const calls = async () => (await readFile(join(dir, 'calls.log'), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);

async function fakeCli(name: string, body: string) {
  await writeFile(join(dir, name), `#!/usr/bin/env bash\necho "${name} $*" >> "${dir}/calls.log"\n${body}\n`);
  await chmod(join(dir, name), 0o755);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-kind-'));
  savedPath = process.env.PATH;
  process.env.PATH = `${dir}:${savedPath}`;
  await fakeCli('kind', `case "$1 $2" in
  "get clusters") [[ -f "${dir}/created" ]] && echo verdict; exit 0 ;;
  "create cluster") touch "${dir}/created"; exit 0 ;;
  "get kubeconfig") echo "apiVersion: v1"; echo "kind: Config"; exit 0 ;;
  "delete cluster") rm -f "${dir}/created"; exit 0 ;;
esac
exit 0`);
  await fakeCli('docker', 'exit 0');
});
afterEach(async () => {
  process.env.PATH = savedPath;
  await rm(dir, { recursive: true, force: true });
});

describe('kind provider', () => {
  it('creates the cluster from kind-config.yaml, builds and loads real tags, deletes it on down', async () => {
    expect(await kindStrategy.available()).toEqual({ ok: true });
    const c = await upKind({ name: 'verdict', stateDir: join(dir, 'state') });
    expect(await readFile(c.kubeconfigPath, 'utf8')).toContain('kind: Config');
    expect(c.owned).toBe(true);
    await c.images!.load(licenseApi.image('v2'));
    expect(c.serviceUrl(30080)).toBe('http://127.0.0.1:30080');
    expect(() => c.serviceUrl(30091)).toThrow(/maps only nodePort 30080/);
    await c.close();
    const log = await calls();
    const create = log.find((l) => l.startsWith('kind create cluster'));
    expect(create).toMatch(/--name verdict --config \S+kind-config\.yaml --wait 180s/);
    const build = log.findIndex((l) => l.startsWith('docker build -t license-api:v2 --build-arg APP_VERSION=v2'));
    const load = log.findIndex((l) => l === 'kind load docker-image license-api:v2 --name verdict');
    expect(build).toBeGreaterThan(-1);
    expect(load).toBeGreaterThan(build);
    expect(log.at(-1)).toBe('kind delete cluster --name verdict');
  });

  it('says what to do when Docker does not answer', async () => {
    await fakeCli('docker', 'echo "Cannot connect to the Docker daemon" >&2; exit 1');
    const a = await kindStrategy.available();
    expect(a.ok).toBe(false);
    expect(!a.ok && a.reason).toMatch(/start Docker, or use --target embedded/);
  });

  it('a failing kind command surfaces its stderr', async () => {
    await fakeCli('kind', 'echo "ERROR: failed to create cluster: node image not found" >&2; exit 1');
    await expect(upKind({ name: 'verdict', stateDir: join(dir, 'state') })).rejects.toThrow(/node image not found/);
  });
});
