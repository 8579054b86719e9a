/**
 * node-pool-upgrade, a GKE surge upgrade (maxSurge 1, maxUnavailable 0) rehearsed under load: for
 * each node that runs the app, a surge node is added (labelled with the version the nodes move to,
 * the control plane's) and waited for until Ready, the old node is cordoned, drained through the
 * Eviction API (a PodDisruptionBudget's 429 means wait and retry, as GKE and `kubectl drain` do; each
 * evicted pod gets its own grace period) and removed. Until no pod of the app runs on an old node:
 * a pod moved to another old node is moved again when that node's turn comes.
 *
 * Judged: no failed request; capacity held (ready pods never below the PDB's minAvailable, or, for
 * a release without a budget, never more than one pod down at a time); every pod of the app ends on
 * a new node; no node left cordoned and as many nodes Ready as before. Each node's drain time is
 * reported. A target that cannot add nodes (kind) makes it INCONCLUSIVE, naming the capability.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { k8s } from '../lib/kube/client.ts';
import { activePods, evictPod, isPodReady, setUnschedulable } from '../lib/kube/disrupt.ts';
import type { Gate } from '../reports/gates.ts';
import { deployOrUseRunning, faultsOf, loadGates, workloadShape, type WorkloadShape } from './common.ts';
import { defineExperiment, type RunContext } from './experiment.ts';
import { underLoad } from './pod-kill.ts';

/** The label a surge node carries: the version the pool moves to. */
export const NODE_VERSION_LABEL = 'verdict.dev/node-version';

export interface NodeUpgrade {
  old: string;
  surge: string;
  /** Pods the drain evicted (`namespace/name`). */
  pods: string[];
  /** 429 answers from a disruption budget, each followed by a retry. */
  refusals: number;
  /** Epoch ms: the surge node was asked for, the old node cordoned, its last evicted pod gone, the node removed. */
  surgeAt: number;
  cordonedAt: number;
  drainedAt: number;
  removedAt: number;
}

export interface NodePoolUpgradeData {
  shape: WorkloadShape;
  version: string;
  nodesBefore: string[];
  upgrades: NodeUpgrade[];
  /** After the upgrade: the Ready nodes, the cordoned ones, the app's pods still on an old node. */
  nodesAfter: string[];
  cordonedAfter: string[];
  podsOnOldNodes: string[];
  /** Every replica Ready again at the end (null: when; else the message). */
  notWhole: string | null;
  startedAt: number;
  endedAt: number;
}

const readyNode = (n: k8s.V1Node) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** What `kubectl drain --ignore-daemonsets` evicts: every pod bound to the node except DaemonSet-owned, mirror and finished ones. */
async function podsOn(core: k8s.CoreV1Api, node: string): Promise<k8s.V1Pod[]> {
  return (await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items.filter(
    (p) =>
      !p.metadata?.deletionTimestamp &&
      !['Succeeded', 'Failed'].includes(p.status?.phase ?? '') &&
      !p.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet') &&
      !p.metadata?.annotations?.['kubernetes.io/config.mirror'],
  );
}

/** Waits until the evicted pods are gone (each gets its grace period; the deadline is the longest of them plus a minute). */
async function waitGone(ctx: RunContext, core: k8s.CoreV1Api, pods: k8s.V1Pod[]): Promise<void> {
  const graceMs = Math.max(30, ...pods.map((p) => p.spec?.terminationGracePeriodSeconds ?? 30)) * 1000;
  const deadline = Date.now() + graceMs + 60_000;
  for (;;) {
    const left: string[] = [];
    for (const p of pods) {
      const cur = await core
        .readNamespacedPod({ namespace: p.metadata!.namespace!, name: p.metadata!.name! })
        .catch(() => undefined);
      if (cur && cur.metadata?.uid === p.metadata?.uid) left.push(`${p.metadata!.namespace}/${p.metadata!.name}`);
    }
    if (!left.length) return;
    if (Date.now() > deadline) throw new Error(`evicted pods still there after their grace period: ${left.join(', ')}`);
    await sleep(250, undefined, { signal: ctx.signal });
  }
}

/** One node: surge node in, old node cordoned, drained (PDB retries, grace periods), removed. */
async function upgradeNode(ctx: RunContext<'nodes'>, old: string, version: string): Promise<NodeUpgrade> {
  const kc = ctx.target.kubeConfig;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const surgeAt = Date.now();
  const surge = await ctx.target.nodes.add({ labels: { [NODE_VERSION_LABEL]: version }, signal: ctx.signal });
  ctx.timeline.action(`node/${surge.node}`, 'surge-node-added', `for ${old}, ${NODE_VERSION_LABEL}=${version}`);
  ctx.say(`${old}: surge node ${surge.node} Ready; cordoning and draining ${old}`);
  const cordonedAt = Date.now();
  await setUnschedulable(kc, old, true);
  ctx.timeline.action(`node/${old}`, 'cordon', 'node-pool upgrade');
  const pods = await podsOn(core, old);
  let refusals = 0;
  await Promise.all(
    pods.map(async (p) => {
      const name = p.metadata!.name!;
      ctx.timeline.action(`pod/${name}`, 'evict', `drain ${old}`);
      const r = await evictPod(kc, p.metadata!.namespace!, name, {
        signal: ctx.signal,
        timeoutMs: 600_000,
        retryMs: 5000, // kubectl drain's and GKE's retry after a 429
        onBlocked: () =>
          ctx.timeline.action(`pod/${name}`, 'evict-refused', 'the disruption budget answered 429; retrying in 5 s'),
      });
      refusals += r.refusals;
    }),
  );
  await waitGone(ctx, core, pods);
  const drainedAt = Date.now();
  ctx.timeline.action(
    `node/${old}`,
    'drained',
    `${pods.length} pods evicted in ${((drainedAt - cordonedAt) / 1000).toFixed(1)} s`,
  );
  await ctx.target.nodes.remove(old, { signal: ctx.signal });
  const removedAt = Date.now();
  ctx.timeline.action(`node/${old}`, 'node-removed', `replaced by ${surge.node}`);
  return {
    old,
    surge: surge.node,
    pods: pods.map((p) => `${p.metadata!.namespace}/${p.metadata!.name}`),
    refusals,
    surgeAt,
    cordonedAt,
    drainedAt,
    removedAt,
  };
}

/** Upgrades the old nodes that run the app, one at a time, until none does (a pod moved to another old node moves again). */
async function upgradePool(ctx: RunContext<'nodes'>, nodesBefore: string[], version: string): Promise<NodeUpgrade[]> {
  const kc = ctx.target.kubeConfig;
  const { namespace, selector } = ctx.app.workload;
  const old = new Set(nodesBefore);
  const upgrades: NodeUpgrade[] = [];
  let cordoned: string | null = null;
  ctx.defer('uncordon an old node left half-upgraded', async () => {
    if (cordoned) await setUnschedulable(kc, cordoned, false).catch(() => {});
  });
  for (;;) {
    const next = [...new Set((await activePods(kc, namespace, selector)).map((p) => p.spec?.nodeName))]
      .filter((n): n is string => !!n && old.has(n) && !upgrades.some((u) => u.old === n))
      .sort()[0];
    if (!next) return upgrades;
    if (upgrades.length >= nodesBefore.length)
      throw new Error(`the upgrade went round more times than there are nodes (${nodesBefore.length})`);
    cordoned = next;
    upgrades.push(await upgradeNode(ctx, next, version));
    cordoned = null;
  }
}

async function wholeAgain(ctx: RunContext, replicas: number): Promise<string | null> {
  const { namespace, selector } = ctx.app.workload;
  const deadline = Date.now() + 180_000;
  for (;;) {
    const ready = (await activePods(ctx.target.kubeConfig, namespace, selector)).filter(isPodReady).length;
    if (ready >= replicas) return null;
    if (Date.now() > deadline) return `${ready} of ${replicas} pods Ready 180 s after the last node was upgraded`;
    await sleep(250, undefined, { signal: ctx.signal });
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function capacityGate(e: { timeline: RunContext['timeline'] }, d: NodePoolUpgradeData): Gate {
  const cap = e.timeline.capacityBetween(d.startedAt, d.endedAt);
  const budget = d.shape.pdbMinAvailable;
  const floor = budget !== null && budget >= 1 ? budget : d.shape.replicas - 1;
  const basis =
    budget !== null && budget >= 1
      ? `the PodDisruptionBudget's minAvailable ${budget}`
      : `one pod down at a time: the release declares no disruption budget${budget === 0 ? ' (minAvailable 0)' : ''}, which the upgrade does not excuse`;
  if (!cap) return { name: 'capacity held', verdict: 'INCONCLUSIVE', evidence: 'the pods were not watched during the upgrade' };
  return {
    name: 'capacity held',
    verdict: cap.minReady >= floor ? 'PASS' : 'FAIL',
    observed: { minReady: cap.minReady, floor, replicas: d.shape.replicas, changes: cap.changes },
    evidence: `ready pods never below ${cap.minReady} of ${d.shape.replicas} (at least ${floor} needed: ${basis})`,
  };
}

function poolGates(d: NodePoolUpgradeData): Gate[] {
  const missing = d.nodesBefore.length - d.nodesAfter.length;
  return [
    d.podsOnOldNodes.length
      ? { name: 'every pod on a new node', verdict: 'FAIL', evidence: `still on an old node: ${d.podsOnOldNodes.join(', ')}` }
      : {
          name: 'every pod on a new node',
          verdict: d.upgrades.length ? 'PASS' : 'INCONCLUSIVE',
          evidence: d.upgrades.length ? `no pod of the app runs on a node of the old pool` : 'no node was upgraded',
        },
    d.cordonedAfter.length || missing > 0
      ? {
          name: 'node pool whole',
          verdict: 'FAIL',
          observed: { nodes_before: d.nodesBefore.length, nodes_after: d.nodesAfter.length, cordoned: d.cordonedAfter.length },
          evidence: `${d.nodesAfter.length} Ready nodes after the upgrade, ${d.nodesBefore.length} before${d.cordonedAfter.length ? `; still cordoned: ${d.cordonedAfter.join(', ')}` : ''}`,
        }
      : {
          name: 'node pool whole',
          verdict: 'PASS',
          observed: { nodes_before: d.nodesBefore.length, nodes_after: d.nodesAfter.length },
          evidence: `${d.nodesAfter.length} Ready nodes, none cordoned (${d.nodesAfter.join(', ')})`,
        },
  ];
}

export const nodePoolUpgrade = defineExperiment<NodePoolUpgradeData>()({
  name: 'node-pool-upgrade',
  description:
    'a GKE surge upgrade (maxSurge 1, maxUnavailable 0) under load: for each node that runs the app a surge node in, the old one cordoned, drained with PDB retries and removed: nothing may fail, capacity and the PDB hold, every pod ends on a new node',
  needs: ['nodes'],
  setup: deployOrUseRunning,
  async act(ctx) {
    const shape = await workloadShape(ctx.app.release(ctx.options.to, ctx.target.platform, faultsOf(ctx.options.faults)));
    const core = ctx.target.kubeConfig.makeApiClient(k8s.CoreV1Api);
    const version = (await ctx.target.serverVersion()) ?? 'unknown';
    const nodesBefore = (await core.listNode()).items.filter(readyNode).map((n) => n.metadata!.name!);
    const startedAt = Date.now();
    const upgrades = await underLoad(ctx, 'node-pool-upgrade', async () => {
      const done = await upgradePool(ctx, nodesBefore, version);
      const notWhole = await wholeAgain(ctx, shape.replicas);
      return { done, notWhole };
    });
    const endedAt = Date.now();
    const nodes = (await core.listNode()).items;
    const old = new Set(nodesBefore);
    return {
      shape,
      version,
      nodesBefore,
      upgrades: upgrades.done,
      nodesAfter: nodes.filter(readyNode).map((n) => n.metadata!.name!),
      cordonedAfter: nodes.filter((n) => n.spec?.unschedulable).map((n) => n.metadata!.name!),
      podsOnOldNodes: (await activePods(ctx.target.kubeConfig, ctx.app.workload.namespace, ctx.app.workload.selector))
        .filter((p) => old.has(p.spec?.nodeName ?? ''))
        .map((p) => `${p.metadata!.name} on ${p.spec!.nodeName}`),
      notWhole: upgrades.notWhole,
      startedAt,
      endedAt,
    };
  },
  figures: (e): Record<string, number> =>
    e.data.upgrades.length
      ? { node_drain_s_max: Math.max(...e.data.upgrades.map((u) => (u.drainedAt - u.cordonedAt) / 1000)) }
      : {},
  judge(e, { config }) {
    const d = e.data;
    const gates: Gate[] = [
      d.upgrades.length
        ? {
            name: 'nodes upgraded',
            verdict: d.notWhole ? 'FAIL' : 'PASS',
            observed: {
              nodes: d.upgrades.length,
              refusals: d.upgrades.reduce((n, u) => n + u.refusals, 0),
              drain_ms_max: Math.max(...d.upgrades.map((u) => u.drainedAt - u.cordonedAt)),
            },
            evidence:
              `${d.upgrades.length} nodes replaced, one at a time, by surge nodes at ${d.version}: ` +
              d.upgrades
                .map(
                  (u) =>
                    `${u.old} → ${u.surge} (surge Ready in ${secs(u.cordonedAt - u.surgeAt)}, ${u.pods.length} pods drained in ${secs(u.drainedAt - u.cordonedAt)}, ${u.refusals} PDB refusals)`,
                )
                .join('; ') +
              (d.notWhole ? `; but ${d.notWhole}` : ''),
          }
        : { name: 'nodes upgraded', verdict: 'INCONCLUSIVE', evidence: 'no node runs the app, so no node was upgraded' },
      ...loadGates(e.loads[0], config),
      capacityGate(e, d),
      ...poolGates(d),
    ];
    return gates;
  },
});
