import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { KIND_APISERVER, KIND_APISERVER_MANIFEST, KIND_APISERVER_PARKED, kindControlPlane } from './control-plane.ts';

// kind is not run here: the node container is stood in for by a real `sh` whose paths are rebased
// into a temp folder, and the kubelet by a poll that says the apiserver answers while its manifest
// is in the manifest folder (what the kubelet's static-pod source does). The commands are the ones
// `docker exec` runs in the control-plane node.
const sh = promisify(execFile);
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function fakeNode() {
  const root = await mkdtemp(join(tmpdir(), 'kind-node-'));
  dirs.push(root);
  await mkdir(join(root, 'etc/kubernetes/manifests'), { recursive: true });
  await writeFile(join(root, KIND_APISERVER_MANIFEST), 'kind: Pod\n');
  const calls: string[] = [];
  const exec = async (node: string, cmd: string[]) => {
    calls.push(`${node}: ${cmd.join(' ')}`);
    const rebased = cmd.map((c) => c.replaceAll("'/etc/kubernetes", `'${root}/etc/kubernetes`));
    return (await sh(rebased[0], rebased.slice(1))).stdout;
  };
  const apiAnswers = async () => existsSync(join(root, KIND_APISERVER_MANIFEST));
  return { root, calls, exec, apiAnswers };
}

describe('kind control plane (the apiserver static pod away and back)', () => {
  it('moves the manifest out, waits until the API is gone, and recover() puts it back and waits for the API', async () => {
    const n = await fakeNode();
    const cp = kindControlPlane({ node: 'k-control-plane', exec: n.exec, apiAnswers: n.apiAnswers, pollMs: 10 });
    expect(cp.components()).toEqual([KIND_APISERVER]);
    const inj = await cp.stop(KIND_APISERVER);
    expect(await n.apiAnswers()).toBe(false);
    expect(existsSync(join(n.root, KIND_APISERVER_PARKED))).toBe(true);
    expect(inj.what).toMatch(/kube-apiserver static pod taken away/);
    await Promise.all([inj.recover(), inj.recover()]);
    expect(await n.apiAnswers()).toBe(true);
    expect(existsSync(join(n.root, KIND_APISERVER_PARKED))).toBe(false);
    expect(n.calls.every((c) => c.startsWith('k-control-plane: sh -c'))).toBe(true);
  });

  it('refuses another component, and fails (putting the manifest back) when the apiserver does not go away', async () => {
    const n = await fakeNode();
    const stubborn = kindControlPlane({ node: 'k', exec: n.exec, apiAnswers: async () => true, pollMs: 10, timeoutMs: 100 });
    await expect(stubborn.stop('etcd')).rejects.toThrow(/only its kube-apiserver/);
    await expect(stubborn.stop(KIND_APISERVER)).rejects.toThrow(/the kubelet did not stop kube-apiserver within 0.1 s/);
    expect(existsSync(join(n.root, KIND_APISERVER_MANIFEST))).toBe(true);
  });
});
