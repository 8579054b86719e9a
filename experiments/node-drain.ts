/**
 * node-drain, the pre-upgrade rehearsal: under load, cordon each node that runs the workload in
 * turn, evict its pods through the Eviction API as `kubectl drain` does (a 429 from the
 * PodDisruptionBudget means wait and retry), wait for the workload to be whole again, uncordon.
 * No request may fail, ready replicas may never drop below the PDB's minAvailable, and every node
 * is uncordoned at the end, also after an error or Ctrl-C (the runner's teardown does it).
 */
import { k8s } from '../lib/kube/client.ts';
import { activePods, cordonedNodes, evictPod, setUnschedulable, waitForReplacement } from '../lib/kube/disrupt.ts';
import type { Gate } from '../reports/gates.ts';
import { defineExperiment, type RunContext } from './experiment.ts';
import { deployOrUseRunning, faultsOf, loadGates, workloadShape, type WorkloadShape } from './common.ts';
import { underLoad } from './pod-kill.ts';

export interface Drain {
  node: string;
  pods: string[];
  /** 429 answers from the disruption budget, each followed by a retry. */
  refusals: number;
  at: number;
  endedAt: number;
}

export interface NodeDrainData {
  shape: WorkloadShape;
  drains: Drain[];
  /** Nodes still cordoned after the experiment uncordoned them (should be none). */
  leftCordoned: string[];
  startedAt: number;
  endedAt: number;
}

async function drainNodes(ctx: RunContext, replicas: number): Promise<Drain[]> {
  const kc = ctx.target.kubeConfig;
  const { namespace, selector } = ctx.app.workload;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const nodes = [
    ...new Set((await activePods(kc, namespace, selector)).map((p) => p.spec?.nodeName).filter((n): n is string => !!n)),
  ].sort();
  const touched = new Set<string>();
  ctx.defer('uncordon every drained node', async () => {
    for (const n of touched) await setUnschedulable(kc, n, false);
  });
  const drains: Drain[] = [];
  for (const node of nodes) {
    const at = Date.now();
    ctx.say(`draining node ${node}`);
    ctx.timeline.action(`node/${node}`, 'cordon', null, at);
    touched.add(node);
    await setUnschedulable(kc, node, true);
    // kubectl drain --ignore-daemonsets: every pod on the node except DaemonSet-owned and mirror pods.
    const onNode = (await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items.filter(
      (p) =>
        !p.metadata?.deletionTimestamp &&
        !p.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet') &&
        !p.metadata?.annotations?.['kubernetes.io/config.mirror'],
    );
    let refusals = 0;
    await Promise.all(
      onNode.map(async (p) => {
        const name = p.metadata!.name!;
        ctx.timeline.action(`pod/${name}`, 'evict', `drain ${node}`);
        await evictPod(kc, p.metadata!.namespace!, name, {
          signal: ctx.signal,
          timeoutMs: 180_000,
          retryMs: 1000,
          onBlocked: () => {
            refusals++;
            ctx.timeline.action(`pod/${name}`, 'evict-refused', 'the disruption budget answered 429; retrying');
          },
        });
      }),
    );
    const workloadPods = onNode.filter((p) => p.metadata?.namespace === namespace).map((p) => p.metadata!.name!);
    await waitForReplacement(kc, namespace, selector, replicas, workloadPods, { signal: ctx.signal, timeoutMs: 240_000 });
    await setUnschedulable(kc, node, false);
    ctx.timeline.action(`node/${node}`, 'uncordon');
    drains.push({
      node,
      pods: onNode.map((p) => `${p.metadata!.namespace}/${p.metadata!.name}`),
      refusals,
      at,
      endedAt: Date.now(),
    });
  }
  return drains;
}

export const nodeDrain = defineExperiment<NodeDrainData>()({
  name: 'node-drain',
  description:
    'drains each node that runs the app in turn under load (cordon, evict with PDB retries, uncordon): no request may fail, the PDB must hold',
  setup: deployOrUseRunning,
  async act(ctx) {
    const shape = await workloadShape(ctx.app.release(ctx.options.to, ctx.target.platform, faultsOf(ctx.options.faults)));
    const startedAt = Date.now();
    const drains = await underLoad(ctx, 'node-drain', () => drainNodes(ctx, shape.replicas));
    const endedAt = Date.now();
    const touched = new Set(drains.map((d) => d.node));
    const leftCordoned = (await cordonedNodes(ctx.target.kubeConfig)).filter((n) => touched.has(n));
    return { shape, drains, leftCordoned, startedAt, endedAt };
  },
  judge(e, { config }) {
    const { data } = e;
    const gates: Gate[] = [];
    gates.push(
      data.drains.length
        ? {
            name: 'nodes drained',
            verdict: 'PASS',
            evidence: `${data.drains.length} nodes drained in turn (${data.drains.map((d) => `${d.node}: ${d.pods.length} pods, ${d.refusals} PDB refusals, ${((d.endedAt - d.at) / 1000).toFixed(1)} s`).join('; ')})`,
            observed: { nodes: data.drains.length, refusals: data.drains.reduce((n, d) => n + d.refusals, 0) },
          }
        : { name: 'nodes drained', verdict: 'INCONCLUSIVE', evidence: 'no node was drained, so the experiment shows nothing' },
    );
    gates.push(...loadGates(e.loads[0], config));
    const cap = e.timeline.capacityBetween(data.startedAt, data.endedAt);
    const min = data.shape.pdbMinAvailable;
    gates.push(
      !cap || min === null
        ? {
            name: 'disruption budget held',
            verdict: 'INCONCLUSIVE',
            evidence: !cap ? 'the pods were never seen during the drains' : 'the workload has no PodDisruptionBudget to hold',
          }
        : {
            name: 'disruption budget held',
            verdict: cap.minReady >= min ? 'PASS' : 'FAIL',
            observed: { minReady: cap.minReady, minAvailable: min, changes: cap.changes },
            evidence: `ready pods never below ${cap.minReady} (PodDisruptionBudget minAvailable ${min}); ${cap.changes} changes watched`,
          },
    );
    gates.push(
      data.leftCordoned.length
        ? {
            name: 'nodes uncordoned',
            verdict: 'FAIL',
            evidence: `still cordoned after the experiment: ${data.leftCordoned.join(', ')}`,
          }
        : {
            name: 'nodes uncordoned',
            verdict: 'PASS',
            evidence: `every drained node is schedulable again (${data.drains.map((d) => d.node).join(', ') || 'none'})`,
          },
    );
    return gates;
  },
});
