/**
 * The disruptions experiments make, as kubectl makes them: delete a pod with its grace period (or
 * force it), evict it through the Eviction API (a PodDisruptionBudget answers 429 and `kubectl
 * drain` waits and retries), cordon and uncordon a node.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isNotFound, k8s, messageOf, mergePatch, statusOf } from './client.ts';
import { currentTemplateHash } from './rollout.ts';

/** Deletes a pod; `graceSeconds` 0 is `kubectl delete --grace-period=0 --force`. Undefined: the pod's own grace period. */
export async function deletePod(kc: k8s.KubeConfig, namespace: string, name: string, graceSeconds?: number): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: graceSeconds });
  } catch (err) {
    if (!isNotFound(err)) throw new Error(`deleting pod ${namespace}/${name} failed: ${messageOf(err)}`);
  }
}

export interface EvictOptions {
  /** Give up after this long of 429s (kubectl drain's --timeout). Default 120 s. */
  timeoutMs?: number;
  /** Wait between retries after a 429 (kubectl drain: 5 s). Default 1 s. */
  retryMs?: number;
  signal?: AbortSignal;
  /** Called on each refusal by a disruption budget. */
  onBlocked?: (message: string) => void;
}

/**
 * Evicts a pod through the Eviction API. A 429 means a PodDisruptionBudget does not allow it now:
 * wait and retry, as `kubectl drain` does, until `timeoutMs`. Resolves with the number of refusals.
 */
export async function evictPod(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
  o: EvictOptions = {},
): Promise<{ refusals: number }> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  let refusals = 0;
  for (;;) {
    o.signal?.throwIfAborted();
    try {
      await core.createNamespacedPodEviction({
        namespace,
        name,
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } },
      });
      return { refusals };
    } catch (err) {
      if (isNotFound(err)) return { refusals };
      if (statusOf(err) !== 429) throw new Error(`evicting pod ${namespace}/${name} failed: ${messageOf(err)}`);
      refusals++;
      o.onBlocked?.(messageOf(err));
      if (Date.now() > deadline)
        throw new Error(
          `evicting pod ${namespace}/${name}: the disruption budget refused it for ${((o.timeoutMs ?? 120_000) / 1000).toFixed(0)} s (${refusals} refusals): ${messageOf(err)}`,
        );
      await sleep(o.retryMs ?? 1000, undefined, { signal: o.signal });
    }
  }
}

/** `kubectl cordon` / `uncordon`. */
export async function setUnschedulable(kc: k8s.KubeConfig, node: string, unschedulable: boolean): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await core.patchNode({ name: node, body: { spec: { unschedulable: unschedulable || null } } }, mergePatch);
  } catch (err) {
    throw new Error(`${unschedulable ? 'cordoning' : 'uncordoning'} node ${node} failed: ${messageOf(err)}`);
  }
}

/** Names of nodes marked unschedulable. */
export async function cordonedNodes(kc: k8s.KubeConfig): Promise<string[]> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return (await core.listNode()).items.filter((n) => n.spec?.unschedulable).map((n) => n.metadata!.name!);
}

export const isPodReady = (p: k8s.V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** The workload's pods that are not terminating. */
export async function activePods(kc: k8s.KubeConfig, namespace: string, selector: string): Promise<k8s.V1Pod[]> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return (await core.listNamespacedPod({ namespace, labelSelector: selector })).items.filter(
    (p) => !p.metadata?.deletionTimestamp,
  );
}

/**
 * Waits until `want` pods of the selector are Ready and not terminating, none of them in `exclude`
 * (the pods just disrupted), and the excluded pods are gone.
 */
export async function waitForReplacement(
  kc: k8s.KubeConfig,
  namespace: string,
  selector: string,
  want: number,
  exclude: string[],
  o: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const deadline = Date.now() + (o.timeoutMs ?? 180_000);
  for (;;) {
    o.signal?.throwIfAborted();
    const pods = (await core.listNamespacedPod({ namespace, labelSelector: selector })).items;
    const ready = pods.filter((p) => !p.metadata?.deletionTimestamp && isPodReady(p) && !exclude.includes(p.metadata!.name!));
    const lingering = pods.filter((p) => exclude.includes(p.metadata!.name!));
    if (ready.length >= want && lingering.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `no replacement within ${((o.timeoutMs ?? 180_000) / 1000).toFixed(0)} s: ${ready.length} of ${want} pods ready, ${lingering.length} disrupted pods still there (${lingering.map((p) => p.metadata!.name).join(', ')})`,
      );
    }
    await sleep(250, undefined, { signal: o.signal });
  }
}

/**
 * Waits until every pod of the selector belongs to the Deployment's current template (its newest
 * ReplicaSet), is Ready and not terminating, and there are `want` of them: the pods of an earlier
 * release (or of the same version with another configuration) are gone, so what answers from now
 * on is this release only.
 */
export async function waitForSettled(
  kc: k8s.KubeConfig,
  namespace: string,
  selector: string,
  deployment: string,
  want: number,
  o: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const deadline = Date.now() + (o.timeoutMs ?? 180_000);
  for (;;) {
    o.signal?.throwIfAborted();
    const hash = await currentTemplateHash(kc, namespace, deployment);
    const pods = (await core.listNamespacedPod({ namespace, labelSelector: selector })).items;
    const others = pods.filter(
      (p) => !hash || p.metadata?.labels?.['pod-template-hash'] !== hash || p.metadata?.deletionTimestamp,
    );
    const ready = pods.filter((p) => !others.includes(p) && isPodReady(p));
    if (others.length === 0 && ready.length >= want) return;
    if (Date.now() > deadline) {
      throw new Error(
        `the workload did not settle on its current template within ${((o.timeoutMs ?? 180_000) / 1000).toFixed(0)} s: ${ready.length} of ${want} ready, ${others.length} other pods left (${others.map((p) => p.metadata!.name).join(', ')})`,
      );
    }
    await sleep(250, undefined, { signal: o.signal });
  }
}
