import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startScratchControlPlane,
  type ScratchControlPlane,
} from '../../cluster/embedded/proxy/testing/scratch-control-plane.ts';
import { k8s, mergePatch } from './client.ts';
import { history, pause, resume, RolloutRefusedError, undo } from './rollout-history.ts';

// history / undo / pause / resume against a real kube-apiserver and the real Deployment controller
// (kube-embedded, no node agent: the ReplicaSets, and so the revisions, exist without running pods).

const NS = 'rollout-history';
const NAME = 'api';
let cp: ScratchControlPlane | undefined;
let kc: k8s.KubeConfig;
let apps: k8s.AppsV1Api;

const image = async () =>
  (await apps.readNamespacedDeployment({ namespace: NS, name: NAME })).spec!.template.spec!.containers[0].image;

/** Until the controller has given the Deployment's current template revision `n` (a ReplicaSet of its own). */
async function waitForRevision(n: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const d = await apps.readNamespacedDeployment({ namespace: NS, name: NAME });
    const observed = (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
    if (observed && d.metadata?.annotations?.['deployment.kubernetes.io/revision'] === String(n)) {
      if ((await history(kc, NS, NAME)).some((r) => r.revision === n && r.current)) return;
    }
    if (Date.now() > deadline)
      throw new Error(
        `revision ${n} not reached: ${JSON.stringify(d.metadata?.annotations)} generation ${d.metadata?.generation}/${d.status?.observedGeneration}`,
      );
    await sleep(200);
  }
}

async function setImage(tag: string): Promise<void> {
  await apps.patchNamespacedDeployment(
    {
      namespace: NS,
      name: NAME,
      body: {
        metadata: { annotations: { 'kubernetes.io/change-cause': `deploy ${tag}` } },
        spec: { template: { spec: { containers: [{ name: 'api', image: `license-api:${tag}` }] } } },
      },
    },
    mergePatch,
  );
}

const refused = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    if (e instanceof RolloutRefusedError) return { reason: e.reason, message: e.message };
    throw e;
  }
  throw new Error('expected a refusal');
};

beforeAll(async () => {
  cp = await startScratchControlPlane();
  kc = cp.kubeConfig;
  apps = kc.makeApiClient(k8s.AppsV1Api);
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: {
      metadata: { name: NAME, annotations: { 'kubernetes.io/change-cause': 'deploy v1' } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: NAME } },
        template: { metadata: { labels: { app: NAME } }, spec: { containers: [{ name: 'api', image: 'license-api:v1' }] } },
      },
    },
  });
  await waitForRevision(1);
  await setImage('v2');
  await waitForRevision(2);
  await setImage('v3');
  await waitForRevision(3);
}, 180_000);

afterAll(async () => {
  await cp?.stop();
});

describe('rollout history, undo, pause, resume on a real control plane', () => {
  it('history lists the three revisions with their images and change-causes', async () => {
    const h = await history(kc, NS, NAME);
    expect(h.map((r) => [r.revision, r.images, r.changeCause, r.current])).toEqual([
      [1, ['api=license-api:v1'], 'deploy v1', false],
      [2, ['api=license-api:v2'], 'deploy v2', false],
      [3, ['api=license-api:v3'], 'deploy v3', true],
    ]);
  });

  it('undo goes back to the previous revision, which the controller rolls out as revision 4', async () => {
    expect(await undo(kc, NS, NAME)).toMatchObject({ action: 'rollback', revision: 2 });
    expect(await image()).toBe('license-api:v2');
    await waitForRevision(4);
    const h = await history(kc, NS, NAME);
    expect(h.map((r) => [r.revision, r.images[0], r.current])).toEqual([
      [1, 'api=license-api:v1', false],
      [3, 'api=license-api:v3', false],
      [4, 'api=license-api:v2', true],
    ]);
    // The change-cause came back with the template (copied from the ReplicaSet, as kubectl does).
    expect(
      (await apps.readNamespacedDeployment({ namespace: NS, name: NAME })).metadata?.annotations?.['kubernetes.io/change-cause'],
    ).toBe('deploy v2');
  });

  it('undo --to-revision 1 goes to that revision', async () => {
    expect(await undo(kc, NS, NAME, { toRevision: 1 })).toMatchObject({ action: 'rollback', revision: 1 });
    expect(await image()).toBe('license-api:v1');
    await waitForRevision(5);
    expect((await history(kc, NS, NAME)).map((r) => r.revision)).toEqual([3, 4, 5]);
  });

  it('undo to the revision already rolled out is skipped; a missing revision is refused', async () => {
    expect(await undo(kc, NS, NAME, { toRevision: 5 })).toEqual({
      action: 'skip',
      revision: 5,
      replicaSet: expect.any(String),
      message: 'skipped rollback (current template already matches revision 5)',
    });
    expect(await refused(undo(kc, NS, NAME, { toRevision: 2 }))).toMatchObject({ reason: 'revision-not-found' });
    expect(await image()).toBe('license-api:v1');
  });

  it('a paused Deployment: undo is refused; pause and resume are errors when already so', async () => {
    await pause(kc, NS, NAME);
    expect((await apps.readNamespacedDeployment({ namespace: NS, name: NAME })).spec?.paused).toBe(true);
    expect(await refused(undo(kc, NS, NAME))).toMatchObject({
      reason: 'paused',
      message: expect.stringMatching(/^you cannot rollback a paused deployment; resume it first/),
    });
    expect(await image()).toBe('license-api:v1');
    expect(await refused(pause(kc, NS, NAME))).toEqual({
      reason: 'already-paused',
      message: 'deployments.apps "api" is already paused',
    });
    await resume(kc, NS, NAME);
    expect((await apps.readNamespacedDeployment({ namespace: NS, name: NAME })).spec?.paused).toBeFalsy();
    expect(await refused(resume(kc, NS, NAME))).toEqual({
      reason: 'not-paused',
      message: 'deployments.apps "api" is not paused',
    });
    expect(await undo(kc, NS, NAME)).toMatchObject({ action: 'rollback', revision: 4 });
  });

  it('a Deployment that does not exist: refused, naming the flags to check', async () => {
    expect(await refused(history(kc, NS, 'nope'))).toEqual({
      reason: 'not-found',
      message: 'deployment rollout-history/nope not found (check --deployment <namespace>/<name> and --context)',
    });
  });
});
