import { setTimeout as sleep } from 'node:timers/promises';
import type { Target } from '../../cluster/target.ts';
import { isNotFound, k8s } from '../../lib/kube/client.ts';
import type { Workload } from '../app-profile.ts';

/**
 * Between two cluster tests on one cluster: the previous test's workload removed at once, so that
 * the next experiment's setup deploys its release on an empty namespace instead of rolling over the
 * last one and waiting for every old pod's drain (preStop 5 s + the app's 3 s delay, ~9 s a test;
 * up to the 30 s grace period for a broken release). Only the setup of the next experiment changes
 * (it is not judged): its own deploys, disruptions and gates run as before.
 *
 * The Deployment and its ReplicaSets go first, their pods orphaned (a Deployment or ReplicaSet
 * being deleted is left alone by its controller, so nothing replaces a pod), then the pods are
 * force-deleted (`kubectl delete --grace-period=0 --force`). Returns once neither a pod, a
 * ReplicaSet nor the Deployment of the workload is left: an object still being deleted that the
 * next deploy met would be patched, then vanish under it. Services, the PodDisruptionBudget, config
 * and secrets stay.
 */
export async function removeWorkload(target: Target, w: Workload, timeoutMs = 60_000): Promise<void> {
  const apps = target.kubeConfig.makeApiClient(k8s.AppsV1Api);
  const core = target.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const { namespace, selector: labelSelector } = w;
  await apps.deleteNamespacedDeployment({ namespace, name: w.deployment, propagationPolicy: 'Orphan' }).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
  await apps.deleteCollectionNamespacedReplicaSet({ namespace, labelSelector, propagationPolicy: 'Orphan' });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pods = (await core.listNamespacedPod({ namespace, labelSelector })).items;
    // With its pods orphaned, a Deployment or ReplicaSet lives on (deleting, with the orphan
    // finalizer) until the garbage collector has released them: the next deploy must not meet it.
    const deployment = await apps.readNamespacedDeployment({ namespace, name: w.deployment }).then(
      () => true,
      (err: unknown) => {
        if (isNotFound(err)) return false;
        throw err;
      },
    );
    const replicaSets = (await apps.listNamespacedReplicaSet({ namespace, labelSelector })).items.length;
    if (pods.length === 0 && !deployment && replicaSets === 0) return;
    // No controller acts on a Deployment or ReplicaSet that is being deleted, so none replaces these.
    if (pods.length) await core.deleteCollectionNamespacedPod({ namespace, labelSelector, gracePeriodSeconds: 0 });
    if (Date.now() > deadline)
      throw new Error(
        `the previous test's workload ${labelSelector} in ${namespace} was not gone within ${timeoutMs / 1000} s: ${pods.length} pods (${pods.map((p) => p.metadata?.name).join(', ')}), ${deployment ? 'the Deployment, ' : ''}${replicaSets} ReplicaSets`,
      );
    await sleep(200);
  }
}
