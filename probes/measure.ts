/**
 * Measured values for the manifest checks, where the harness can measure them:
 *
 * - start time (pod created → Ready): on any cluster the harness can read, from the workload's
 *   pods' conditions (second resolution, read-only); on a target it may disrupt, from a watched
 *   replacement pod (milliseconds).
 * - endpoint propagation (pod deleted → the data plane sends it no new connection): only where the
 *   target observes its own data plane (`target.routing`, the embedded Service proxy) and the
 *   harness owns the cluster, since it deletes one pod of the workload (with its grace period) and
 *   waits for the replacement.
 *
 * Pod created → Ready includes the readiness probe's initial delay: an upper bound of the start
 * time the startup probe sees, so the startup-budget rule judged with it errs on the safe side.
 */
import { ClusterTimeline } from '../lib/evidence/timeline.ts';
import { k8s } from '../lib/kube/client.ts';
import { deletePod, isPodReady, waitForReplacement } from '../lib/kube/disrupt.ts';
import type { Target } from '../cluster/target.ts';
import type { Workload } from '../experiments/app-profile.ts';
import type { TimelineRecord } from '../reports/run-record.ts';
import type { Measured } from './manifest-lint.ts';

/** The longest pod created → Ready of the workload's ready pods, from their conditions (read-only), or undefined. */
export async function startTimeFromPods(kc: k8s.KubeConfig, namespace: string, selector: string): Promise<Measured | undefined> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: selector })).items.filter(
    (p) => !p.metadata?.deletionTimestamp && isPodReady(p),
  );
  const spans = pods.flatMap((p) => {
    const created = Date.parse(String(p.metadata?.creationTimestamp ?? ''));
    const ready = p.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
    const at = Date.parse(String(ready?.lastTransitionTime ?? ''));
    // A pod that restarted may have turned Ready again later: its span is not its start time.
    const restarts = (p.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
    return Number.isFinite(created) && Number.isFinite(at) && at >= created && restarts === 0 ? [at - created] : [];
  });
  if (!spans.length) return undefined;
  return {
    ms: Math.max(...spans),
    source: `pod created → Ready, the longest of ${spans.length} ready pod${spans.length === 1 ? '' : 's'}, from the pods' conditions (1 s resolution)`,
  };
}

export interface DisruptiveMeasurement {
  propagationMs: Measured;
  startMs: Measured | undefined;
  /** The pod deleted, its replacement, and the times seen. */
  timeline: TimelineRecord[];
  /** Pod deletion → its EndpointSlice entry not ready, ms (the control plane's part). */
  sliceMs: number | null;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/**
 * Deletes one ready pod of the workload (with its grace period) and measures how long the data
 * plane kept routing to it and how long its replacement took to be Ready. Needs a target that
 * observes its routing and that the harness owns.
 */
export async function measureByDeletingOnePod(
  target: Target,
  w: Workload,
  o: { signal?: AbortSignal; say?: (m: string) => void; timeoutMs?: number } = {},
): Promise<DisruptiveMeasurement> {
  const routing = target.routing;
  if (!routing)
    throw new Error(
      `the ${target.kind} target does not observe its data plane's routing: endpoint propagation cannot be measured there`,
    );
  if (!target.owned)
    throw new Error(
      `the ${target.kind} target ${target.name} is not the harness's own: it will not delete a pod there to measure`,
    );
  const kc = target.kubeConfig;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const timeoutMs = o.timeoutMs ?? 120_000;
  const timeline = new ClusterTimeline({
    kubeConfig: kc,
    namespace: w.namespace,
    selector: w.selector,
    service: w.service,
    nodes: false,
    kubeEvents: false,
  });
  await timeline.start();
  try {
    const pods = (await core.listNamespacedPod({ namespace: w.namespace, labelSelector: w.selector })).items.filter(
      (p) => !p.metadata?.deletionTimestamp && isPodReady(p),
    );
    const victim = pods.find((p) => p.status?.podIP);
    if (!victim) throw new Error(`no ready pod of ${w.selector} in ${w.namespace} to measure with`);
    const name = victim.metadata!.name!;
    const ip = victim.status!.podIP!;
    const routedTo = (r: string[]) => r.some((e) => e.startsWith(`${ip}:`));
    const before = routing.routingHistory(w.nodePort).at(-1);
    if (!before || !routedTo(before.routable))
      throw new Error(
        `the Service proxy does not route node port ${w.nodePort} to ${name} (${ip}) now: cannot measure its removal`,
      );
    o.say?.(`measuring: deleting pod ${name} (${ip}) with its grace period`);
    const t0 = Date.now();
    timeline.action(`pod/${name}`, 'delete', 'to measure endpoint propagation and start time');
    await deletePod(kc, w.namespace, name);
    const proxyAt = await routingStopped(routing, w.nodePort, t0, routedTo, { name, timeoutMs, signal: o.signal });
    const sliceAt = timeline.events.find(
      (e) =>
        e.at >= t0 &&
        e.object === `endpoint/${name}` &&
        e.kind === 'endpoint' &&
        e.change !== 'endpoint-ready' &&
        e.change !== 'endpoint-added',
    )?.at;
    o.say?.(`measuring: the proxy stopped routing to ${name} after ${proxyAt - t0} ms; waiting for its replacement`);
    await waitForReplacement(kc, w.namespace, w.selector, pods.length, [name], { timeoutMs, signal: o.signal });
    return measurement(target, timeline, { name, t0, proxyAt, sliceAt });
  } finally {
    await timeline.stop();
  }
}

/** When the proxy stopped routing to the deleted pod (polled from its routing history, bounded). */
async function routingStopped(
  routing: NonNullable<Target['routing']>,
  nodePort: number,
  t0: number,
  routedTo: (routable: string[]) => boolean,
  o: { name: string; timeoutMs: number; signal?: AbortSignal },
): Promise<number> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const at = routing.routingHistory(nodePort).find((c) => c.at >= t0 && !routedTo(c.routable))?.at;
    if (at !== undefined) return at;
    if (Date.now() > deadline)
      throw new Error(`the Service proxy still routed to ${o.name} ${o.timeoutMs / 1000} s after its deletion`);
    await sleep(20, o.signal);
  }
}

/** The propagation (deletion → no new connection) and the replacement's start time, as watched. */
function measurement(
  target: Target,
  timeline: ClusterTimeline,
  m: { name: string; t0: number; proxyAt: number; sliceAt: number | undefined },
): DisruptiveMeasurement {
  const { name, t0, proxyAt, sliceAt } = m;
  const created = timeline.events.find((e) => e.kind === 'pod' && e.change === 'created' && e.at >= t0);
  const ready = created && timeline.events.find((e) => e.kind === 'pod' && e.object === created.object && e.change === 'ready');
  const lag = target.endpointLagMs;
  const sliceMs = sliceAt === undefined ? null : sliceAt - t0;
  const why = [
    sliceMs !== null ? `its EndpointSlice entry turned not-ready after ${sliceMs} ms` : null,
    lag ? `the proxy applies changes ${lag} ms late, as kube-proxy's minSyncPeriod does` : null,
  ].filter(Boolean);
  return {
    propagationMs: {
      ms: proxyAt - t0,
      source: `pod ${name} deleted → the Service proxy stopped routing new connections to it${why.length ? ` (${why.join('; ')})` : ''}; one deletion on the ${target.kind} cluster`,
    },
    startMs:
      created && ready
        ? { ms: ready.at - created.at, source: `pod created → Ready of the replacement ${created.object.slice(4)}, watched (ms)` }
        : undefined,
    sliceMs,
    timeline: timeline.events.filter((e) => e.at >= t0).slice(0, 200),
  };
}
