/**
 * Endpoint propagation on a real target, measured the same way on kind (real kube-proxy) and on
 * the embedded cluster (our Service proxy with its modelled lag): the fidelity cross-check.
 *
 *   node bench/endpoint-lag.ts --target kind|embedded [--samples 10] [--pair-gap <ms>] [--lag <ms>]   (as root)
 *
 * The license API's shipped release (3 replicas, preStop sleep 5 s: a deleted pod keeps answering
 * for 5 s) runs behind its NodePort Service. Each sample deletes one pod with its grace period
 * while new connections (`Connection: close`, one every 4 ms, bounded to 20 s) go to the Service;
 * the answer's `X-Served-By` names the pod. Measured from the delete call:
 * - `slice`: when the pod's endpoint in its EndpointSlice stops being ready (control plane; the
 *   moment a watch delivers the change),
 * - `routed`: the send time of the last new connection that still reached the deleted pod (from
 *   then on the data plane no longer routes new connections there; resolution about 12 ms: one probe
 *   in 4 ms, one pod in 3).
 * Between samples the Deployment settles (3 ready pods, none terminating) and 3 s pass.
 *
 * Traffic goes only to the target's Service address (loopback for embedded, the kind network's
 * control-plane node address for kind), bounded in count and time.
 */
import { request } from 'node:http';
import { k8s } from '../lib/kube/client.ts';
import { deletePod } from '../lib/kube/disrupt.ts';
import type { Target } from '../cluster/target.ts';

export interface LagSample {
  pod: string;
  sliceMs: number | null;
  routedMs: number | null;
  probes: number;
  hitsAfterDelete: number;
  failed: number;
}

export interface LagOptions {
  namespace: string;
  selector: string;
  service: string;
  /** Full URL of a cheap GET on the Service, e.g. http://<node>:30080/health/live. */
  url: string;
  identityHeader: string;
  samples: number;
  replicas: number;
  /**
   * Burst: delete another pod this many ms before the measured one, so that the measured change
   * comes soon after a data-plane sync (kube-proxy's minSyncPeriod then holds it back). Default: none
   * (a lone deletion after 3 s of quiet).
   */
  pairGapMs?: number;
  say?: (m: string) => void;
  signal?: AbortSignal;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function probe(url: string, header: string): Promise<{ pod: string | null; ok: boolean }> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, headers: { connection: 'close' }, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ pod: String(res.headers[header] ?? '') || null, ok: (res.statusCode ?? 0) < 500 }));
      res.on('error', () => resolve({ pod: null, ok: false }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ pod: null, ok: false }));
    req.end();
  });
}

async function settled(kc: k8s.KubeConfig, o: LagOptions): Promise<string[]> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const deadline = Date.now() + 180_000;
  for (;;) {
    o.signal?.throwIfAborted();
    const pods = (await core.listNamespacedPod({ namespace: o.namespace, labelSelector: o.selector })).items;
    const ready = pods.filter(
      (p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True',
    );
    if (pods.length === o.replicas && ready.length === o.replicas) return ready.map((p) => p.metadata!.name!);
    if (Date.now() > deadline)
      throw new Error(`the workload did not settle (${ready.length}/${o.replicas} ready, ${pods.length} pods)`);
    await sleep(250);
  }
}

/** Deletes pods one at a time and measures (see the module comment). */
export async function measureEndpointLag(target: Target, o: LagOptions): Promise<LagSample[]> {
  const kc = target.kubeConfig;
  const samples: LagSample[] = [];
  for (let i = 0; i < o.samples; i++) {
    const pods = await settled(kc, o);
    await sleep(3000);
    const victim = pods[i % pods.length];
    let done = false;
    let sliceAt: number | null = null;
    let lastHit: number | null = null;
    let probes = 0;
    let hits = 0;
    let failed = 0;
    const inflight = new Set<Promise<unknown>>();
    let started = false;
    // The EndpointSlice change, timed by a watch (the moment the API server sends it).
    const watch = await new k8s.Watch(kc).watch(
      `/apis/discovery.k8s.io/v1/namespaces/${o.namespace}/endpointslices`,
      { labelSelector: `kubernetes.io/service-name=${o.service}` },
      (_phase, slice) => {
        const ep = (slice.endpoints ?? []).find((e: { targetRef?: { name?: string } }) => e.targetRef?.name === victim);
        if (sliceAt === null && started && (!ep || ep.conditions?.ready === false)) sliceAt = Date.now();
      },
      () => {},
    );
    await sleep(500);
    if (o.pairGapMs !== undefined) {
      const primer = pods.find((p) => p !== victim)!;
      await deletePod(kc, o.namespace, primer);
      await sleep(o.pairGapMs);
    }
    started = true;
    const t0 = Date.now();
    const deleting = deletePod(kc, o.namespace, victim);
    // Probes: one new connection every 4 ms until 3 s after the endpoint went away (at most 20 s).
    const prober = (async () => {
      while (!done && Date.now() - t0 < 20_000) {
        if (sliceAt === null && Date.now() - t0 > 15_000) break;
        const sent = Date.now();
        probes++;
        const p = probe(o.url, o.identityHeader).then((r) => {
          if (!r.ok) failed++;
          if (r.pod === victim) {
            hits++;
            if (lastHit === null || sent > lastHit) lastHit = sent;
          }
        });
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
        if (sliceAt !== null && Date.now() - sliceAt > 3000) done = true;
        await sleep(4);
      }
    })();
    await deleting;
    await prober;
    await Promise.allSettled(inflight);
    watch.abort();
    const s: LagSample = {
      pod: victim,
      sliceMs: sliceAt === null ? null : sliceAt - t0,
      routedMs: lastHit === null ? null : lastHit - t0,
      probes,
      hitsAfterDelete: hits,
      failed,
    };
    o.say?.(
      `sample ${i + 1}/${o.samples}: ${victim}: endpoint not ready after ${s.sliceMs} ms, last new connection routed to it ${s.routedMs} ms after the delete (${probes} probes, ${hits} to it, ${failed} failed)`,
    );
    samples.push(s);
  }
  return samples;
}

export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)];
}

export function summarize(samples: LagSample[]) {
  const routed = samples.flatMap((s) => (s.routedMs === null ? [] : [s.routedMs]));
  const slice = samples.flatMap((s) => (s.sliceMs === null ? [] : [s.sliceMs]));
  const proxy = samples.flatMap((s) => (s.routedMs === null || s.sliceMs === null ? [] : [s.routedMs - s.sliceMs]));
  return {
    samples: samples.length,
    routed: { p50: percentile(routed, 50), p99: percentile(routed, 99), max: routed.length ? Math.max(...routed) : null },
    slice: { p50: percentile(slice, 50), p99: percentile(slice, 99) },
    dataPlane: { p50: percentile(proxy, 50), p99: percentile(proxy, 99) },
    failed: samples.reduce((n, s) => n + s.failed, 0),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string, dflt?: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const which = arg('target', 'kind')!;
  const n = Number(arg('samples', '10'));
  const pairGapMs = arg('pair-gap') ? Number(arg('pair-gap')) : undefined;
  const say = (m: string) => process.stderr.write(`${m}\n`);
  const { licenseApi } = await import('../apps/license-api/profile.ts');
  const { deployRelease } = await import('../lib/kube/deploy.ts');
  let target: Target;
  if (which === 'kind') {
    const { upKind } = await import('../cluster/kind/kind-cluster.ts');
    target = await upKind({ name: arg('name', 'verdict-lag'), onProgress: say });
  } else {
    const { upEmbedded } = await import('../cluster/embedded/embedded-cluster.ts');
    target = await upEmbedded({
      name: 'verdict',
      stateDir: arg('state-dir', '/var/lib/verdict/bench-lag'),
      nodes: 3,
      onProgress: say,
      ...(arg('lag') ? { endpointLagMs: Number(arg('lag')) } : {}),
    });
  }
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  try {
    await target.images!.load([...(licenseApi.supportImages?.(target.platform) ?? []), licenseApi.image('v1')], say);
    await deployRelease(target.kubeConfig, licenseApi.release('v1', target.platform), { timeoutMs: 300_000, onProgress: say });
    const w = licenseApi.workload;
    const samples = await measureEndpointLag(target, {
      namespace: w.namespace,
      selector: w.selector,
      service: w.service,
      url: target.serviceUrl(w.nodePort) + '/health/live',
      identityHeader: licenseApi.identityHeaders.backend,
      samples: n,
      replicas: 3,
      pairGapMs,
      say,
      signal: abort.signal,
    });
    process.stdout.write(
      JSON.stringify({ target: which, endpointLagMs: target.endpointLagMs, ...summarize(samples), raw: samples }, null, 2) + '\n',
    );
  } finally {
    await target.close();
  }
}
