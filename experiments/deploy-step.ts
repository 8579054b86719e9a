/**
 * `ctx.deploy`: a release applied and waited for until it is settled as clients see it (rolled out,
 * no pod of another release left, the Service answering), with phase markers on the timeline. A
 * rollout that fails is an answer (`ok: false` with the pods' state), not a throw.
 */
import { deployRelease, renderRelease, type ReleaseSpec } from '../lib/kube/deploy.ts';
import { findKind } from '../lib/kube/render.ts';
import { waitForSettled } from '../lib/kube/disrupt.ts';
import { describeError } from '../lib/errors.ts';
import { RolloutFailedError } from '../lib/kube/rollout.ts';
import type { Timeline } from '../lib/evidence/timeline.ts';
import type { Target } from '../cluster/target.ts';
import type { Workload } from './app-profile.ts';

export interface DeployStep {
  target: Target;
  workload: Workload;
  /** The Service's base URL from here. */
  url: string;
  timeline: Timeline;
  signal: AbortSignal;
  say: (message: string) => void;
}

export async function deployStep(
  s: DeployStep,
  release: ReleaseSpec,
  d: { timeoutMs?: number; failFast?: boolean } = {},
): Promise<{ ok: true } | { ok: false; error: string }> {
  const { target, workload, timeline, signal } = s;
  const env = release.env && Object.keys(release.env).length ? ` env ${Object.keys(release.env).join(',')}` : '';
  timeline.phase('deploy', `${release.image}${env}`);
  try {
    await deployRelease(target.kubeConfig, release, {
      timeoutMs: d.timeoutMs ?? 300_000,
      failFast: d.failFast ?? true,
      signal,
      onProgress: (m) => s.say(m),
    });
    timeline.phase('rolled-out', release.image);
    // Done means settled: no pod of another release left (a terminating pod still answers
    // through a lagging data plane) and the Service answers, as it does for clients.
    const replicas = findKind(await renderRelease(release), 'Deployment')?.spec?.replicas ?? 1;
    await waitForSettled(target.kubeConfig, workload.namespace, workload.selector, release.deployment, replicas, { signal });
    await waitForService(s.url + workload.readyPath, signal);
    timeline.phase('settled', release.image);
    return { ok: true };
  } catch (err) {
    signal.throwIfAborted();
    const detail = rolloutProblem(err);
    timeline.phase('deploy-failed', detail);
    return { ok: false, error: detail };
  }
}

/** The error, with each pod's restarts, readiness and last state when the rollout failed. */
function rolloutProblem(err: unknown): string {
  const problem = err instanceof RolloutFailedError ? err.problem : undefined;
  if (!problem) return (err as Error).message;
  const pods = problem.pods.map(
    (p) =>
      `${p.name} restarts=${p.restarts} ready=${p.ready}${p.waiting ? ` waiting=${p.waiting}` : ''}${p.lastTerminated ? ` last=${p.lastTerminated}` : ''}`,
  );
  return `${(err as Error).message}; pods: ${pods.join('; ')}`;
}

/** Waits until `url` answers 200 three times in a row (bounded): the data plane routes to the release. */
async function waitForService(url: string, signal: AbortSignal, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ok = 0;
  let last = '';
  while (ok < 3) {
    signal.throwIfAborted();
    try {
      const r = await fetch(url, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
        headers: { connection: 'close' },
      });
      await r.arrayBuffer();
      ok = r.status === 200 ? ok + 1 : 0;
      last = `HTTP ${r.status}`;
    } catch (err) {
      ok = 0;
      last = describeError(err);
    }
    if (Date.now() > deadline) throw new Error(`the Service does not answer at ${url} (last: ${last})`);
    if (ok < 3) await new Promise((r) => setTimeout(r, 200));
  }
}
