/**
 * pod-kill: under load, delete the workload's pods one at a time with their grace period (the
 * SIGTERM path every rollout, drain and autoscaler takes) and wait for each replacement to be Ready
 * before the next. No request may fail. With `force` the pods are deleted with grace 0 (as a node
 * crash or `kubectl delete --force` does): its failures are counted and attributed, not hidden.
 */
import { activePods, deletePod, isPodReady, waitForReplacement } from '../lib/kube/disrupt.ts';
import type { Gate } from '../reports/gates.ts';
import type { Experiment, RunContext } from './experiment.ts';
import { deployOrUseRunning, loadGates, pause } from './common.ts';

export interface Kill {
  pod: string;
  /** Epoch ms of the delete call and of the replacement being Ready. */
  at: number;
  replacedAt: number;
}

export interface PodKillData {
  replicas: number;
  kills: Kill[];
  force: boolean;
}

/** Deletes each Ready pod in turn (oldest first) and waits for its replacement; every delete goes on the timeline. */
export async function killPodsOneByOne(
  ctx: RunContext,
  o: { force?: boolean } = {},
): Promise<{ replicas: number; kills: Kill[] }> {
  const { kubeConfig: kc } = ctx.target;
  const { namespace, selector } = ctx.app.workload;
  const pods = (await activePods(kc, namespace, selector))
    .filter(isPodReady)
    .sort((a, b) => new Date(a.metadata!.creationTimestamp!).getTime() - new Date(b.metadata!.creationTimestamp!).getTime());
  if (pods.length === 0) throw new Error(`no Ready pod matches ${selector} in ${namespace}: nothing to kill`);
  const replicas = pods.length;
  const kills: Kill[] = [];
  for (const p of pods) {
    const name = p.metadata!.name!;
    const grace = o.force ? 0 : undefined;
    ctx.say(`deleting pod ${name} (${o.force ? 'force, grace 0 s' : `grace ${p.spec?.terminationGracePeriodSeconds ?? 30} s`})`);
    const at = Date.now();
    ctx.timeline.action(
      `pod/${name}`,
      'delete',
      o.force ? 'force, grace 0 s' : `grace ${p.spec?.terminationGracePeriodSeconds ?? 30} s`,
      at,
    );
    await deletePod(kc, namespace, name, grace);
    await waitForReplacement(kc, namespace, selector, replicas, [name], { signal: ctx.signal });
    kills.push({ pod: name, at, replacedAt: Date.now() });
    ctx.timeline.action(
      `pod/${name}`,
      'replaced',
      `${replicas} pods Ready again after ${((Date.now() - at) / 1000).toFixed(1)} s`,
    );
  }
  return { replicas, kills };
}

export function killsGate(kills: Kill[], replicas: number): Gate {
  return kills.length > 0
    ? {
        name: 'pods killed',
        verdict: 'PASS',
        evidence: `${kills.length} of ${replicas} pods deleted one at a time, each replaced (slowest replacement ${(Math.max(...kills.map((k) => k.replacedAt - k.at)) / 1000).toFixed(1)} s)`,
        observed: { killed: kills.length, replicas },
      }
    : { name: 'pods killed', verdict: 'INCONCLUSIVE', evidence: 'no pod was killed, so the experiment shows nothing' };
}

/** The load for a disruption: on for warm-up, during `disrupt`, and for the settle time after it. */
export async function underLoad<T>(
  ctx: RunContext,
  label: string,
  disrupt: () => Promise<T>,
  o: { control?: boolean } = {},
): Promise<T> {
  const { warmupMs, settleMs } = ctx.config.experiments;
  const load = await ctx.load(label, { rate: ctx.options.rate, maxMs: warmupMs + settleMs + 20 * 60_000, control: o.control });
  await pause(ctx, warmupMs);
  const out = await disrupt();
  await pause(ctx, settleMs);
  await load.stop();
  return out;
}

export function podKill(force = false): Experiment<PodKillData> {
  return {
    name: force ? 'pod-kill-force' : 'pod-kill',
    description: force
      ? 'deletes each pod with grace 0 (a crash) under load: counts and attributes the requests that fails'
      : 'deletes each pod in turn with its grace period under load (the SIGTERM path): no request may fail',
    setup: deployOrUseRunning,
    async act(ctx) {
      const { replicas, kills } = await underLoad(ctx, 'pod-kill', () => killPodsOneByOne(ctx, { force }));
      return { replicas, kills, force };
    },
    judge(e, { config }) {
      return [killsGate(e.data.kills, e.data.replicas), ...loadGates(e.loads[0], config)];
    },
  };
}
