import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyObjects } from '../../lib/kube/apply.ts';
import { isNotFound, k8s, mergePatch, statusOf } from '../../lib/kube/client.ts';
import { deployRelease, renderRelease } from '../../lib/kube/deploy.ts';
import { findKind, renderKustomization } from '../../lib/kube/render.ts';
import { upEmbedded, type EmbeddedCluster } from './embedded-cluster.ts';
import { licenseApi } from '../../apps/license-api/profile.ts';
import { addTestImages } from './testdata/test-images.ts';
import { errorText } from '../../lib/errors.ts';

const run = promisify(execFile);
const overlay = (o: string) => fileURLToPath(new URL(`../../license-api/kubernetes/overlays/${o}`, import.meta.url));
const STATE = '/var/lib/verdict/test-embedded';
const NS = 'coditect';

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last error: ${errorText(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const isReady = (p: k8s.V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** What of ours exists on the machine: namespaces, bridge, pod-CIDR routes, cluster listeners. */
async function leftovers(): Promise<string[]> {
  const out: string[] = [];
  const ns = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith('verdict-'));
  out.push(...ns.map((n) => `netns ${n}`));
  const links = (await run('ip', ['-o', 'link', 'show', 'type', 'bridge'])).stdout;
  if (/\bverdict0\b/.test(links)) out.push('bridge verdict0');
  const routes = (await run('ip', ['route'])).stdout.split('\n').filter((l) => /(^| )10\.244\.0\./.test(l));
  out.push(...routes.map((r) => `route ${r}`));
  const listeners = (await run('ss', ['-ltnH'])).stdout
    .split('\n')
    .filter((l) => /10\.244\.0\.1:|127\.0\.0\.1:(30080|30091)\s/.test(l));
  out.push(...listeners.map((l) => `listener ${l.trim()}`));
  // Only our processes: the control plane of a test state dir, and anything run from its images.
  const procs = (await run('ps', ['-eo', 'pid,args'])).stdout
    .split('\n')
    .filter((l) => l.includes(STATE) && !l.includes('ps -eo'));
  out.push(...procs.map((p) => `process ${p.trim()}`));
  return out;
}

describe('embedded cluster', () => {
  let cluster: EmbeddedCluster;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let policy: k8s.PolicyV1Api;
  const lifecycle: Array<{ at: number; pod: string; step: string; detail?: string }> = [];
  const marks = join(STATE, 'marks');

  beforeAll(async () => {
    cluster = await upEmbedded({
      name: 'verdict',
      stateDir: STATE,
      nodes: 3,
      backoffBaseMs: 1000,
      onLifecycle: (e) => lifecycle.push(e),
    });
    core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
    policy = cluster.kubeConfig.makeApiClient(k8s.PolicyV1Api);
    await cluster.images.load([licenseApi.image('v1'), licenseApi.image('v2')]);
    await addTestImages(cluster.imageStore);
    await rm(marks, { recursive: true, force: true }); // marks of an earlier run must not count
    await mkdir(marks, { recursive: true });
    await chmod(marks, 0o1777);
  }, 900_000);

  afterAll(async () => {
    await cluster?.close();
    expect(await leftovers()).toEqual([]);
  }, 120_000);

  const release = (tag: string) => ({
    kustomization: overlay('embedded'),
    deployment: 'license-api',
    container: 'license-api',
    image: `license-api:${tag}`,
    version: tag,
  });
  const apiPods = async () => (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=license-api' })).items;

  it('deploys the license API with 3 replicas on distinct pod addresses, reachable through the NodePort proxy', async () => {
    await deployRelease(cluster.kubeConfig, release('v1'), { timeoutMs: 180_000 });
    const pods = await apiPods();
    expect(pods.filter(isReady)).toHaveLength(3);
    const ips = pods.map((p) => p.status!.podIP!);
    expect(new Set(ips).size).toBe(3);
    for (const ip of ips) expect(ip).toMatch(/^10\.244\.0\.\d+$/);
    // The proxy applies endpoint changes after the endpoint lag measured on kube-proxy (1.1 s): the Service answers shortly after the rollout.
    const res = await waitFor(
      'the Service to answer',
      async () => {
        const r = await fetch(`${cluster.serviceUrl(30080)}/health/ready`).catch(() => undefined);
        return r?.status === 200 && r;
      },
      10_000,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-app-version')).toBe('v1');
    expect(pods.map((p) => p.metadata!.name)).toContain(res.headers.get('x-served-by'));
    const { stdout } = await run('kubectl', ['--kubeconfig', cluster.kubeconfigPath, 'get', 'pods', '-n', NS, '-o', 'wide']);
    for (const p of pods)
      expect(stdout).toMatch(
        new RegExp(
          `${p.metadata!.name}\\s+1/1\\s+Running\\s+0\\s+\\S+\\s+${p.status!.podIP!.replaceAll('.', '\\.')}\\s+verdict-node-\\d`,
        ),
      );
  }, 240_000);

  it('accepts every overlay in a server-side dry-run apply', async () => {
    for (const o of ['embedded', 'kind', 'gke']) {
      const results = await applyObjects(cluster.kubeConfig, await renderKustomization(overlay(o)), { dryRun: true });
      expect(results.length).toBeGreaterThan(4);
    }
    // A broken manifest is refused by the same dry run.
    const broken = await renderRelease(release('v1'));
    findKind(broken, 'Deployment')!.spec!.strategy!.rollingUpdate!.maxSurge = 0;
    await expect(applyObjects(cluster.kubeConfig, broken, { dryRun: true })).rejects.toThrow(
      /maxUnavailable|maxSurge|may not be 0/,
    );
  }, 60_000);

  it('rolls v1 → v2 with the real Deployment controller: ready pods never below 3, active pods never above 4', async () => {
    let minReady = Infinity;
    let maxActive = 0;
    let maxTotal = 0;
    let samples = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const pods = await apiPods();
        const active = pods.filter((p) => !p.metadata?.deletionTimestamp);
        minReady = Math.min(minReady, active.filter(isReady).length);
        maxActive = Math.max(maxActive, active.length);
        maxTotal = Math.max(maxTotal, pods.length);
        samples++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await deployRelease(cluster.kubeConfig, release('v2'), { timeoutMs: 240_000 });
    } finally {
      watching = false;
      await watcher;
    }
    // A rollout of 3 pods takes about 5 s now that pods are Ready a second after they listen.
    expect(samples).toBeGreaterThan(20);
    expect(minReady).toBeGreaterThanOrEqual(3);
    expect(maxActive).toBeLessThanOrEqual(4);
    expect(maxActive).toBe(4); // the surge pod did exist
    const pods = await waitFor(
      'old pods gone',
      async () => {
        const p = await apiPods();
        return p.length === 3 && p;
      },
      60_000,
    );
    for (const p of pods) expect(p.metadata!.labels!['app.kubernetes.io/version']).toBe('v2');
    const res = await fetch(`${cluster.serviceUrl(30080)}/health/ready`);
    expect(res.headers.get('x-app-version')).toBe('v2');
    process.stderr.write(
      `rollout v1→v2: ${samples} samples, min ready ${minReady}, max active ${maxActive}, max incl. terminating ${maxTotal}\n`,
    );
  }, 300_000);

  it('honours the PodDisruptionBudget: a second eviction on a cordoned node is refused with 429', async () => {
    // Start from a settled Deployment: 3 ready pods and none terminating (the PDB counts them all).
    const pods = await waitFor(
      'a settled Deployment',
      async () => {
        const all = await apiPods();
        return all.length === 3 && all.every((p) => isReady(p) && !p.metadata?.deletionTimestamp) && all;
      },
      60_000,
      500,
    );
    await waitFor(
      'PDB allows one disruption',
      async () =>
        (await policy.readNamespacedPodDisruptionBudget({ name: 'license-api', namespace: NS })).status?.disruptionsAllowed === 1,
      30_000,
    );
    const node = pods[0].spec!.nodeName!;
    await core.patchNode({ name: node, body: { spec: { unschedulable: true } } }, mergePatch);
    try {
      const evict = (p: k8s.V1Pod) =>
        core.createNamespacedPodEviction({
          name: p.metadata!.name!,
          namespace: NS,
          body: { metadata: { name: p.metadata!.name!, namespace: NS } },
        });
      await evict(pods[0]);
      let refused: unknown;
      try {
        await evict(pods[1]);
      } catch (err) {
        refused = err;
      }
      expect(statusOf(refused)).toBe(429);
      const pdb = await policy.readNamespacedPodDisruptionBudget({ name: 'license-api', namespace: NS });
      expect(pdb.status?.disruptionsAllowed).toBe(0);
      // The evicted pod's replacement avoids the cordoned node.
      await waitFor(
        '3 ready pods again',
        async () => (await apiPods()).filter((p) => isReady(p) && !p.metadata?.deletionTimestamp).length === 3,
        120_000,
        500,
      );
      const replacement = (await apiPods()).find((p) => !pods.some((q) => q.metadata!.uid === p.metadata!.uid));
      expect(replacement?.spec?.nodeName).not.toBe(node);
    } finally {
      await core.patchNode({ name: node, body: { spec: { unschedulable: false } } }, mergePatch);
    }
  }, 180_000);

  it('terminates a pod as the kubelet does: preStop, then SIGTERM, then SIGKILL at the grace deadline, then the object is gone', async () => {
    const name = 'term-ignorer';
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name },
        spec: {
          terminationGracePeriodSeconds: 3,
          containers: [
            {
              name: 'app',
              image: 'term-ignorer:v1',
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'MARK_DIR', value: marks },
                { name: 'PORT', value: '8080' },
              ],
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
              lifecycle: {
                preStop: { exec: { command: ['sh', '-c', `echo preStop $(date +%s%3N) >> ${marks}/${name}.log; sleep 1`] } },
              },
            },
          ],
        },
      },
    });
    await waitFor('term-ignorer ready', async () => isReady(await core.readNamespacedPod({ name, namespace: NS })), 60_000);
    const deletedAt = Date.now();
    await core.deleteNamespacedPod({ name, namespace: NS });
    await waitFor(
      'pod object gone',
      async () => {
        try {
          await core.readNamespacedPod({ name, namespace: NS });
          return false;
        } catch (err) {
          return isNotFound(err);
        }
      },
      30_000,
    );
    const log = (await readFile(join(marks, `${name}.log`), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => {
        const [what, at] = l.split(' ');
        return { what, at: Number(at) };
      });
    const preStop = log.find((l) => l.what === 'preStop')!;
    const sigterm = log.find((l) => l.what === 'SIGTERM')!;
    expect(preStop).toBeTruthy();
    expect(sigterm).toBeTruthy();
    expect(sigterm.at).toBeGreaterThanOrEqual(preStop.at + 900); // preStop (with its 1 s sleep) finished first
    const steps = lifecycle.filter((e) => e.pod === `${NS}/${name}`);
    const killed = steps.find((e) => e.step === 'SIGKILL');
    expect(killed, JSON.stringify(steps)).toBeTruthy();
    expect(killed!.at - deletedAt).toBeGreaterThanOrEqual(2800);
    expect(killed!.at - deletedAt).toBeLessThan(6000);
    expect(steps.map((e) => e.step)).toEqual(
      expect.arrayContaining(['terminating', 'preStop', 'preStopDone', 'SIGTERM', 'SIGKILL', 'deleted']),
    );
  }, 120_000);

  it('restarts a container whose liveness probe fails, with growing back-off, and counts the restarts', async () => {
    const name = 'liveness-flipper';
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'app',
              image: 'liveness-flipper:v1',
              env: [{ name: 'PORT', value: '8080' }],
              livenessProbe: { httpGet: { path: '/live', port: 8080 }, periodSeconds: 1, failureThreshold: 2 },
            },
          ],
        },
      },
    });
    try {
      const pod = await waitFor(
        'three restarts',
        async () => {
          const p = await core.readNamespacedPod({ name, namespace: NS });
          return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 3 && p;
        },
        90_000,
        500,
      );
      expect(pod.status!.containerStatuses![0].lastState?.terminated).toBeTruthy();
      const starts = lifecycle.filter((e) => e.pod === `${NS}/${name}` && e.step === 'Started').map((e) => e.at);
      expect(starts.length).toBeGreaterThanOrEqual(4);
      // Back-off: each gap between starts is at least as long as the one before (minus probe jitter).
      const gaps = starts.slice(1).map((t, i) => t - starts[i]);
      expect(gaps[2]).toBeGreaterThan(gaps[0] + 500);
      const events = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name}` });
      expect(events.items.map((e) => e.reason)).toEqual(expect.arrayContaining(['Unhealthy', 'Killing', 'Started']));
    } finally {
      await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 }).catch(() => {});
    }
  }, 120_000);

  it('removes a pod that fails readiness from the endpoints, and the proxy stops routing to it', async () => {
    const labels = { app: 'ready-switch' };
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: 'ready-switch' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [
                {
                  name: 'app',
                  image: 'ready-switch:v1',
                  ports: [{ name: 'http', containerPort: 8080 }],
                  env: [
                    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                    { name: 'MARK_DIR', value: marks },
                    { name: 'PORT', value: '8080' },
                    { name: 'HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                  ],
                  readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1, failureThreshold: 1 },
                },
              ],
            },
          },
        },
      },
    });
    await core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: 'ready-switch' },
        spec: { type: 'NodePort', selector: labels, ports: [{ port: 80, targetPort: 'http', nodePort: 30091 }] },
      },
    });
    try {
      const pods = await waitFor(
        '2 ready pods',
        async () => {
          const p = (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=ready-switch' })).items.filter(isReady);
          return p.length === 2 && p;
        },
        60_000,
      );
      const servedBy = async (n: number) => {
        const seen = new Map<string, number>();
        for (let i = 0; i < n; i++) {
          const r = await fetch(`${cluster.serviceUrl(30091)}/`, { headers: { connection: 'close' } });
          const who = r.headers.get('x-served-by')!;
          seen.set(who, (seen.get(who) ?? 0) + 1);
        }
        return seen;
      };
      await waitFor('both pods serve', async () => (await servedBy(10)).size === 2, 30_000);
      const victim = pods[0].metadata!.name!;
      await writeFile(join(marks, `${victim}.unready`), '');
      await waitFor(
        'endpoint not ready',
        async () => {
          const slices = await cluster.kubeConfig
            .makeApiClient(k8s.DiscoveryV1Api)
            .listNamespacedEndpointSlice({ namespace: NS, labelSelector: 'kubernetes.io/service-name=ready-switch' });
          return slices.items
            .flatMap((s) => s.endpoints ?? [])
            .some((e) => e?.targetRef?.name === victim && e?.conditions?.ready === false);
        },
        30_000,
      );
      await waitFor(
        'proxy routes only to the ready pod',
        async () => {
          const s = await servedBy(10);
          return s.size === 1 && !s.has(victim);
        },
        10_000,
      );
      const after = await servedBy(30);
      expect([...after.keys()]).toEqual([pods[1].metadata!.name]);
      await rm(join(marks, `${victim}.unready`));
      await waitFor('both pods serve again', async () => (await servedBy(20)).size === 2, 30_000);
    } finally {
      await apps.deleteNamespacedDeployment({ name: 'ready-switch', namespace: NS }).catch(() => {});
      await core.deleteNamespacedService({ name: 'ready-switch', namespace: NS }).catch(() => {});
    }
  }, 120_000);
});

describe('`verdict cluster up` detached, then `verdict cluster down`', () => {
  it('the detached daemon tears the cluster down itself (nothing left for down to clean)', async () => {
    const cli = fileURLToPath(new URL('../../cli/verdict.ts', import.meta.url));
    const state = `${STATE}-detached`;
    const up = await run(process.execPath, [cli, 'cluster', 'up', '--state-dir', state], { timeout: 120_000 });
    expect(up.stdout).toContain('export KUBECONFIG=');
    const status = await run(process.execPath, [cli, 'cluster', 'status', '--state-dir', state]);
    expect(status.stdout).toMatch(/verdict-node-1\s+Ready/);
    const down = await run(process.execPath, [cli, 'cluster', 'down', '--state-dir', state], { timeout: 120_000 });
    expect(down.stdout).toContain('is down');
    expect(down.stdout + down.stderr).not.toMatch(/leftover/);
    expect(await readFile(join(state, 'daemon.log'), 'utf8')).toContain('"stopped":true');
    expect(await leftovers()).toEqual([]);
  }, 240_000);
});

describe('interrupting `verdict cluster up`', () => {
  it('SIGINT during start-up leaves no process, namespace, bridge, route or listener behind', async () => {
    const cli = fileURLToPath(new URL('../../cli/verdict.ts', import.meta.url));
    const child = spawn(process.execPath, [cli, 'cluster', 'up', '--foreground', '--state-dir', `${STATE}-sigint`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    // Interrupt once the pod network exists and the control plane is starting.
    await waitFor('start-up under way', async () => err.includes('starting the control plane'), 120_000, 100);
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).not.toBe(0);
    await waitFor('nothing left', async () => (await leftovers()).length === 0, 30_000, 500).catch(async () => {
      expect(await leftovers()).toEqual([]);
    });
  }, 200_000);
});
