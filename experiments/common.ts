/** Pieces every experiment uses: the workload's shape, the load gates, waiting that honours Ctrl-C. */
import { setTimeout as sleep } from 'node:timers/promises';
import { renderRelease, type ReleaseSpec } from '../lib/kube/deploy.ts';
import { findKind } from '../lib/kube/render.ts';
import { activePods, isPodReady } from '../lib/kube/disrupt.ts';
import { errorRateGate, loadAsPlannedGate, type Gate } from '../reports/gates.ts';
import type { HarnessConfig } from './config.ts';
import type { LoadEvidence, RunContext } from './experiment.ts';
import type { Fault } from './app-profile.ts';

export interface WorkloadShape {
  replicas: number;
  maxSurge: number;
  maxUnavailable: number;
  /** The PodDisruptionBudget's minAvailable as a count (null without a PDB). */
  pdbMinAvailable: number | null;
}

const count = (v: unknown, of: number, roundUp: boolean) => {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.endsWith('%')) {
    const x = (Number(v.slice(0, -1)) / 100) * of;
    return roundUp ? Math.ceil(x) : Math.floor(x);
  }
  return undefined;
};

/** Replicas, surge, unavailability and the PDB of a release, from its rendered manifests. */
export async function workloadShape(release: ReleaseSpec): Promise<WorkloadShape> {
  const objects = await renderRelease(release);
  const d = findKind(objects, 'Deployment', release.deployment)!;
  const replicas = d.spec?.replicas ?? 1;
  const ru = d.spec?.strategy?.rollingUpdate ?? {};
  const pdb = findKind(objects, 'PodDisruptionBudget');
  let pdbMinAvailable: number | null = null;
  if (pdb) {
    const min = count(pdb.spec?.minAvailable, replicas, true);
    const maxUn = count(pdb.spec?.maxUnavailable, replicas, false);
    pdbMinAvailable = min ?? (maxUn !== undefined ? replicas - maxUn : null);
  }
  return {
    replicas,
    maxSurge: count(ru.maxSurge ?? '25%', replicas, true) ?? 1,
    maxUnavailable: count(ru.maxUnavailable ?? '25%', replicas, false) ?? 0,
    pdbMinAvailable,
  };
}

/** Faults carried by one side of a rollout (`from` or `to`), or every fault for a single release. */
export const faultsOf = (faults: Fault[], side?: 'from' | 'to') => (side ? faults.filter((f) => f.side === side) : faults);

/** Waits `ms`, or throws at once when the run is interrupted. */
export async function pause(ctx: RunContext, ms: number): Promise<void> {
  await sleep(ms, undefined, { signal: ctx.signal });
}

/** The gates every load-bearing experiment has: nothing failed (as configured for disruptions) and the load ran as planned. */
export function loadGates(
  load: LoadEvidence | undefined,
  config: HarnessConfig,
  o: { prefix?: string; maxErrorRate?: number; minRequests?: number } = {},
): Gate[] {
  const p = o.prefix ? `${o.prefix}: ` : '';
  if (!load) return [{ name: `${p}load ran`, verdict: 'ERROR', evidence: 'the experiment produced no load result' }];
  const s = load.result.summary;
  const d = config.gates.disruption;
  return [
    errorRateGate({
      name: `${p}no failed request`,
      failed: load.joined.failed,
      total: load.joined.total,
      maxRate: o.maxErrorRate ?? d.maxErrorRate,
      minRequests: o.minRequests ?? d.minRequests,
      byConnection: load.joined.byConnection,
    }),
    loadAsPlannedGate(
      {
        achieved: s.rates.achieved,
        target: s.rates.target,
        dropped: s.counts.dropped,
        scheduleDelayP99Ms: s.metrics.schedule_delay?.['p(99)'] ?? null,
        minAchievedShare: config.gates.load.minAchievedShare,
        maxScheduleDelayP99Ms: config.gates.load.maxScheduleDelayP99Ms,
      },
      `${p}load as planned`,
    ),
  ];
}

/** Deploys the release under test where the target loads images; elsewhere the workload as it runs is the subject. */
export async function deployOrUseRunning(ctx: RunContext): Promise<void> {
  const { app, options, target } = ctx;
  if (target.images) {
    const r = await ctx.deploy(app.release(options.to, target.platform, faultsOf(options.faults)));
    if (!r.ok) throw new Error(`the release under test (${options.to}) did not deploy: ${r.error}`);
    return;
  }
  const pods = (await activePods(target.kubeConfig, app.workload.namespace, app.workload.selector)).filter(isPodReady);
  if (pods.length === 0)
    throw new Error(
      `no Ready pod of ${app.workload.selector} runs in ${app.workload.namespace} on ${target.name}: deploy the app first`,
    );
  ctx.say(`using the running workload: ${pods.length} Ready pods`);
}
