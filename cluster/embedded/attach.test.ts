import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TARGET_STRATEGIES } from '../strategies.ts';
import { openTarget, TargetUnavailableError } from '../target.ts';
import { attachEmbedded, EMBEDDED_PLATFORM } from './embedded-cluster.ts';
import type { ClusterStateFile } from './state.ts';

// `--target embedded` in attach mode (what `verdict load --agents` uses): the running cluster found by
// its state file, without starting or contacting one (the state names this test's own live pid).
// Each case calls attachEmbedded itself first: where attach mode is missing, openTarget would start a
// real embedded cluster, which a unit test must never do.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-attach-'));
  await chmod(dir, 0o755); // pods run as other users: the image store checks they can enter it
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: verdict-embedded, context: {cluster: c, user: u}}]
current-context: verdict-embedded
`;

describe('the embedded strategy, attached', () => {
  it('no cluster running under that state directory: TargetUnavailableError naming the fix', async () => {
    await expect(attachEmbedded({ name: 'x', stateDir: join(dir, 'none') })).rejects.toThrow(TargetUnavailableError);
    const err = await openTarget('embedded', TARGET_STRATEGIES, { attach: true, name: 'x', stateDir: join(dir, 'none') }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(TargetUnavailableError);
    expect(err.message).toMatch(/none is running as "x" .*verdict cluster up/);
  });

  it('a running one: its kubeconfig, image store and pod reach, left running by close()', async () => {
    const state: ClusterStateFile = {
      name: 'attached',
      pid: process.pid,
      kubeconfig: join(dir, 'kubeconfig'),
      startedAt: new Date().toISOString(),
      gateway: '10.244.0.1',
      clusterCidr: '10.244.0.0/16',
      endpointLagMs: 1100,
    };
    await writeFile(state.kubeconfig, KUBECONFIG);
    await writeFile(join(dir, 'cluster.json'), JSON.stringify(state));
    expect((await attachEmbedded({ name: 'attached', stateDir: dir })).owned).toBe(false);
    const t = await openTarget('embedded', TARGET_STRATEGIES, { attach: true, name: 'attached', stateDir: dir });
    expect(t).toMatchObject({
      kind: 'embedded',
      name: 'attached',
      owned: false,
      endpointLagMs: 1100,
      context: 'verdict-embedded',
    });
    // Host services at the state's gateway; NodePorts on 127.0.0.1 when the state names no address (slot 0, older files).
    expect(t.platform).toEqual({ ...EMBEDDED_PLATFORM, hostServicesAddress: '10.244.0.1' });
    expect(t.serviceUrl(30080)).toBe('http://127.0.0.1:30080');
    expect(t.podReach?.serviceUrl(30080)).toBe('http://10.244.0.1:30080');
    expect(t.podReach?.networks).toEqual(['10.244.0.0/16']);
    expect(t.dependencies).toBeUndefined(); // they live in the cluster's own process
    const said: string[] = [];
    await t.images!.load(
      [
        {
          ref: 'probe:v1',
          bundle: { cmd: ['node', 'main.mjs'], fill: (d) => writeFile(join(d, 'main.mjs'), 'console.log(1)\n') },
        },
      ],
      (m) => said.push(m),
    );
    expect(said).toEqual(['building probe:v1 into the embedded image store']);
    expect(await readFile(join(dir, 'images', 'probe', 'v1', 'main.mjs'), 'utf8')).toBe('console.log(1)\n');
    await t.close();
    expect(JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')).pid).toBe(process.pid);
  });

  it('a cluster on another network slot: its NodePort address and gateway from the state file', async () => {
    const slotDir = join(dir, 'slot1');
    await mkdir(slotDir);
    const state: ClusterStateFile = {
      name: 'slot1',
      pid: process.pid,
      kubeconfig: join(slotDir, 'kubeconfig'),
      startedAt: new Date().toISOString(),
      gateway: '10.244.16.1',
      clusterCidr: '10.244.16.0/20',
      nodePortHost: '127.0.1.1',
    };
    await writeFile(state.kubeconfig, KUBECONFIG);
    await writeFile(join(slotDir, 'cluster.json'), JSON.stringify(state));
    const t = await attachEmbedded({ name: 'slot1', stateDir: slotDir });
    expect(t.serviceUrl(30080)).toBe('http://127.0.1.1:30080');
    expect(t.podReach?.serviceUrl(30080)).toBe('http://10.244.16.1:30080');
    expect(t.platform.hostServicesAddress).toBe('10.244.16.1');
  });
});
