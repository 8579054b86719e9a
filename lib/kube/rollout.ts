import { setTimeout as sleep } from 'node:timers/promises';
import { k8s } from './client.ts';

export type RolloutState =
  | { done: false; reason: string }
  | { done: true; reason: string }
  | { failed: true; reason: string };

/**
 * kubectl's `rollout status` for a Deployment (polymorphichelpers/rollout_status.go), in its order:
 * generation not yet observed → waiting; ProgressDeadlineExceeded → failed; then updated, old
 * replicas terminating, available.
 */
export function deploymentRolloutState(d: k8s.V1Deployment): RolloutState {
  const name = d.metadata?.name;
  const spec = d.spec!;
  const st = d.status ?? {};
  if ((d.metadata?.generation ?? 0) > (st.observedGeneration ?? 0)) return { done: false, reason: 'Waiting for deployment spec update to be observed...' };
  const progressing = st.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') return { failed: true, reason: `deployment "${name}" exceeded its progress deadline` };
  const want = spec.replicas ?? 1;
  const updated = st.updatedReplicas ?? 0;
  if (updated < want) return { done: false, reason: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${want} new replicas have been updated...` };
  if ((st.replicas ?? 0) > updated) return { done: false, reason: `Waiting for deployment "${name}" rollout to finish: ${(st.replicas ?? 0) - updated} old replicas are pending termination...` };
  if ((st.availableReplicas ?? 0) < updated) return { done: false, reason: `Waiting for deployment "${name}" rollout to finish: ${st.availableReplicas ?? 0} of ${updated} updated replicas are available...` };
  return { done: true, reason: `deployment "${name}" successfully rolled out` };
}

/** Polls until the rollout is done; throws when it failed or `timeoutMs` passed. */
export async function waitForRollout(kc: k8s.KubeConfig, namespace: string, name: string, opts: { timeoutMs?: number; onProgress?: (reason: string) => void; signal?: AbortSignal } = {}): Promise<void> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  let last = '';
  for (;;) {
    opts.signal?.throwIfAborted();
    const state = deploymentRolloutState(await apps.readNamespacedDeployment({ namespace, name }));
    if (state.reason !== last) { last = state.reason; opts.onProgress?.(state.reason); }
    if ('failed' in state) throw new Error(state.reason);
    if (state.done) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${(opts.timeoutMs ?? 600_000) / 1000} s: ${state.reason}`);
    await sleep(500);
  }
}
