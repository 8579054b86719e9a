import { setTimeout as sleep } from 'node:timers/promises';
import { k8s } from './client.ts';

export type RolloutState = { done: false; reason: string } | { done: true; reason: string } | { failed: true; reason: string };

/**
 * kubectl's `rollout status` for a Deployment (polymorphichelpers/rollout_status.go), in its order:
 * generation not yet observed → waiting; ProgressDeadlineExceeded → failed; then updated, old
 * replicas terminating, available.
 */
export function deploymentRolloutState(d: k8s.V1Deployment): RolloutState {
  const name = d.metadata?.name;
  const spec = d.spec!;
  const st = d.status ?? {};
  if ((d.metadata?.generation ?? 0) > (st.observedGeneration ?? 0))
    return { done: false, reason: 'Waiting for deployment spec update to be observed...' };
  const progressing = st.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded')
    return { failed: true, reason: `deployment "${name}" exceeded its progress deadline` };
  const want = spec.replicas ?? 1;
  const updated = st.updatedReplicas ?? 0;
  if (updated < want)
    return {
      done: false,
      reason: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${want} new replicas have been updated...`,
    };
  if ((st.replicas ?? 0) > updated)
    return {
      done: false,
      reason: `Waiting for deployment "${name}" rollout to finish: ${(st.replicas ?? 0) - updated} old replicas are pending termination...`,
    };
  if ((st.availableReplicas ?? 0) < updated)
    return {
      done: false,
      reason: `Waiting for deployment "${name}" rollout to finish: ${st.availableReplicas ?? 0} of ${updated} updated replicas are available...`,
    };
  return { done: true, reason: `deployment "${name}" successfully rolled out` };
}

/**
 * Polls until the rollout is done; throws when it failed or `timeoutMs` passed. `check` is asked at
 * every poll and may end the wait early with a {@link RolloutFailedError} (a crash-looping release).
 */
export async function waitForRollout(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
  opts: RolloutWaitOptions = {},
): Promise<void> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  await pollRollout(() => apps.readNamespacedDeployment({ namespace, name }), name, opts);
}

export interface RolloutWaitOptions {
  timeoutMs?: number;
  onProgress?: (reason: string) => void;
  signal?: AbortSignal;
  check?: () => Promise<RolloutProblem | undefined>;
  /** Between polls (default 500 ms). */
  everyMs?: number;
}

/**
 * {@link waitForRollout} on any reader of the Deployment. `check` judges the pods of the
 * Deployment's current template, so it is asked only once the controller has observed the spec
 * being waited for: before that, the current template is still the previous one, and a
 * crash-looping previous release would fail the rollout that replaces it.
 */
export async function pollRollout(
  read: () => Promise<k8s.V1Deployment>,
  name: string,
  opts: RolloutWaitOptions = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  let last = '';
  for (;;) {
    opts.signal?.throwIfAborted();
    const d = await read();
    const state = deploymentRolloutState(d);
    if (state.reason !== last) {
      last = state.reason;
      opts.onProgress?.(state.reason);
    }
    if ('failed' in state) throw new RolloutFailedError(state.reason, await opts.check?.().catch(() => undefined));
    if (state.done) return;
    const observed = (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
    const problem = observed ? await opts.check?.() : undefined;
    if (problem) throw new RolloutFailedError(`rollout of deployment "${name}" cannot finish: ${problem.reason}`, problem);
    if (Date.now() > deadline)
      throw new RolloutFailedError(`timed out after ${(opts.timeoutMs ?? 600_000) / 1000} s: ${state.reason}`);
    await sleep(opts.everyMs ?? 500);
  }
}

/** What is wrong with a release's pods, when it is already clear that its rollout cannot finish. */
export interface RolloutProblem {
  reason: string;
  pods: Array<{ name: string; restarts: number; ready: boolean; waiting: string | null; lastTerminated: string | null }>;
}

const HOPELESS_WAITING = new Set([
  'CrashLoopBackOff',
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

/**
 * Looks at the new release's pods (`pods`, already filtered to the new version) and says whether the
 * rollout is hopeless now rather than at its progress deadline: a container restarted `maxRestarts`
 * times or waiting for a reason that does not heal by itself (CrashLoopBackOff, image errors), or a
 * started pod not Ready after `notReadyAfterMs` (its readiness never passes). Undefined when it may
 * still succeed.
 *
 * The readiness budget runs from the moment the container has started (`started`: its startup probe
 * passed), not from its process start: a slow starter within its startupProbe budget is not stuck
 * (the kubelet restarts it if it never starts, which the restart rule sees). The API gives no time for
 * `started`, so `seen` (kept by the caller across polls) remembers when each pod was first seen
 * started; without it, the process start stands in.
 */
export function rolloutProblem(
  pods: k8s.V1Pod[],
  now: number,
  opts: { maxRestarts?: number; notReadyAfterMs: number; seen?: Map<string, number> },
): RolloutProblem | undefined {
  const maxRestarts = opts.maxRestarts ?? 2;
  const described = pods.map((p) => {
    const cs = p.status?.containerStatuses ?? [];
    const term = cs.map((c) => c.lastState?.terminated).find(Boolean);
    return {
      name: p.metadata?.name ?? '?',
      restarts: cs.reduce((n, c) => n + (c.restartCount ?? 0), 0),
      ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      waiting: cs.map((c) => c.state?.waiting?.reason).find(Boolean) ?? null,
      lastTerminated: term
        ? `exit ${term.exitCode}${term.reason ? ` (${term.reason})` : ''}${term.message ? `: ${term.message.slice(0, 200)}` : ''}`
        : null,
      runningSince: cs.map((c) => c.state?.running?.startedAt).find(Boolean),
      started: cs.every((c) => c.started !== false),
    };
  });
  const list = described.map(({ runningSince: _r, started: _s, ...d }) => d);
  const crashing = described.find(
    (d) =>
      d.restarts >= maxRestarts ||
      (d.waiting !== null && HOPELESS_WAITING.has(d.waiting) && d.restarts > 0) ||
      (d.waiting !== null && /Image|Config/.test(d.waiting)),
  );
  if (crashing) {
    return {
      reason: `pod ${crashing.name} cannot run: ${crashing.restarts} restarts${crashing.waiting ? `, waiting: ${crashing.waiting}` : ''}${crashing.lastTerminated ? `, last terminated: ${crashing.lastTerminated}` : ''}`,
      pods: list,
    };
  }
  /** Since when the pod counts as started (its readiness budget's origin), or undefined while it is not. */
  const startedSince = (d: (typeof described)[number]) => {
    if (!d.runningSince || !d.started) return undefined;
    const running = new Date(d.runningSince).getTime();
    if (!opts.seen) return running;
    const key = `${d.name}@${running}`;
    if (!opts.seen.has(key)) opts.seen.set(key, now);
    return Math.max(running, opts.seen.get(key)!);
  };
  for (const d of described) {
    const since = d.ready ? undefined : startedSince(d);
    if (since !== undefined && now - since > opts.notReadyAfterMs) {
      return {
        reason: `pod ${d.name} has run for ${((now - new Date(d.runningSince!).getTime()) / 1000).toFixed(0)} s without becoming Ready (started, and its readiness probe keeps failing)`,
        pods: list,
      };
    }
  }
  return undefined;
}

export class RolloutFailedError extends Error {
  readonly problem: RolloutProblem | undefined;
  constructor(message: string, problem?: RolloutProblem) {
    super(message);
    this.problem = problem;
  }
}

/**
 * The `pod-template-hash` of the Deployment's current ReplicaSet (the one whose revision is the
 * Deployment's), or undefined before the controller made it. Pods of the current template are the
 * new release; a pod of an older ReplicaSet may carry the same version label (a fault switched off).
 */
export async function currentTemplateHash(kc: k8s.KubeConfig, namespace: string, name: string): Promise<string | undefined> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const d = await apps.readNamespacedDeployment({ namespace, name });
  const revision = d.metadata?.annotations?.['deployment.kubernetes.io/revision'];
  if (!revision) return undefined;
  const match = d.spec?.selector?.matchLabels ?? {};
  const selector = Object.entries(match)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const sets = (await apps.listNamespacedReplicaSet({ namespace, labelSelector: selector })).items;
  const rs = sets.find(
    (r) =>
      r.metadata?.annotations?.['deployment.kubernetes.io/revision'] === revision &&
      r.metadata?.ownerReferences?.some((o) => o.kind === 'Deployment' && o.name === name),
  );
  return rs?.metadata?.labels?.['pod-template-hash'];
}
