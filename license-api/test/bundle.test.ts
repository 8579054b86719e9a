import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildLicenseApi } from '../build.ts';
import { mintToken, spawnApi } from './harness.ts';

describe('the shipped bundle', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('runs from one file with plain node (no node_modules), migrates and serves', async () => {
    const out = await mkdtemp(join(tmpdir(), 'verdict-bundle-'));
    dirs.push(out);
    const { entry } = await buildLicenseApi(join(out, 'app'), { version: 'v-test' });
    // Run from a directory with no node_modules anywhere above it.
    await using api = await spawnApi({ APP_VERSION: 'v-bundle' }, entry);
    const token = await mintToken();
    const r = await fetch(`${api.url}/api/v1/licenses/acquire`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ license_key: 'TEST-KEY', hardware_id: 'bundle' }),
    });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-app-version')).toBe('v-bundle');
    api.child.kill('SIGTERM');
    expect((await api.exit).code).toBe(0);
  });
});
