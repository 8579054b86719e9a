/**
 * Benchmark (not a test): the embedded cluster's pod network and service proxy.
 *
 *   node bench/embedded-network.ts [--duration 10] [--rounds 3] [--flips 40]      (as root)
 *
 * 1. Throughput: autocannon (32 keep-alive connections, in a child process so it does not share
 *    the proxy's event loop) against a node:http server in a pod namespace, directly on the pod
 *    address and through the ServiceProxy on 127.0.0.1:<nodePort>, in the same run, alternating
 *    direct/proxy --rounds times (the machine is shared: per-round ratios show the noise). Goal: proxy/direct >= 0.7.
 * 2. Endpoint propagation delay, p50/p99, with the real control plane (kube-embedded):
 *    a. EndpointSlice flip: an endpoint's ready condition set to false with an update call; time
 *       from sending the update to the proxy applying the change (from then on no new connection
 *       goes there, checked with one request per flip).
 *    b. Pod deletion: two Pods (status set by hand, as there is no node agent here) behind a
 *       Service with a selector; one is deleted with a grace period; time from the delete call until
 *       the proxy stops routing to it (the EndpointSlice controller marks it terminating).
 *    c. The same flips through a proxy with the embedded cluster's modelled data-plane lag
 *       (--endpoint-lag, default DEFAULT_ENDPOINT_LAG_MS, 1100 ms: measured on kube-proxy in kind): what verify-local sees.
 *
 * Traffic goes only to 127.0.0.1 and to pod addresses in namespaces this script creates; every
 * load is bounded in time. Everything is removed at the end and on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  CoreV1Api,
  CoordinationV1Api,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1EndpointSlice,
} from '@kubernetes/client-node';
import { createScratchNetwork, type ScratchNetwork } from '../cluster/embedded/network/scratch-network.ts';
import { ServiceProxy } from '../cluster/embedded/proxy/service-proxy.ts';
import { DEFAULT_ENDPOINT_LAG_MS } from '../cluster/embedded/embedded-cluster.ts';
import { startScratchControlPlane } from '../cluster/embedded/proxy/testing/scratch-control-plane.ts';
import { startPodServer, type PodServer } from '../cluster/embedded/proxy/testing/pod-servers.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const DURATION = arg('duration', 10);
const FLIPS = arg('flips', 40);
const ROUNDS = arg('rounds', 3);
const CONNECTIONS = 32;
const NS = 'bench-net';
const LAG = arg('endpoint-lag', DEFAULT_ENDPOINT_LAG_MS);
const AUTOCANNON = fileURLToPath(new URL('../node_modules/autocannon/autocannon.js', import.meta.url));

/** Releases, run last-in first-out by shutdown() (also those registered while it runs). */
const cleanup: (() => Promise<unknown>)[] = [];

/**
 * Registers the release of a resource *before* it exists, so that a Ctrl-C while it is being
 * created still releases it once creation settles.
 */
function own<T>(creating: Promise<T>, release: (v: T) => Promise<unknown>): Promise<T> {
  if (shutdownDone) {
    // Interrupted: release as soon as it exists, and go no further.
    void creating.then(release, () => {}).catch(() => {});
    return Promise.reject(new Error('interrupted'));
  }
  cleanup.push(async () => {
    const v = await creating.catch(() => undefined);
    if (v !== undefined) await release(v);
  });
  return creating;
}
const strategicMerge = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  requests: number;
}

/** autocannon in a child process, bounded by --duration and a hard kill. */
async function autocannon(url: string, seconds: number): Promise<Load> {
  const child = spawn(process.execPath, [AUTOCANNON, '-c', String(CONNECTIONS), '-d', String(seconds), '-j', url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanup.push(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(killer);
  if (code !== 0) throw new Error(`autocannon exited ${code}: ${err.slice(-500)}`);
  const j = JSON.parse(out) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    errors: number;
    timeouts: number;
    non2xx: number;
  };
  return {
    rps: j.requests.average,
    p50: j.latency.p50,
    p99: j.latency.p99,
    errors: j.errors + j.timeouts,
    non2xx: j.non2xx,
    requests: j.requests.total,
  };
}

/** CPU time (user + system) a process has used so far, in µs, from /proc (clock ticks of 10 ms). */
function processCpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** One HTTP request on a fresh connection; resolves with the X-Served-By answer. */
async function servedBy(url: string): Promise<string> {
  const res = await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(3000) });
  await res.arrayBuffer();
  return res.headers.get('x-served-by') ?? '?';
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(name: string, samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  return `${name.padEnd(44)} n=${String(s.length).padStart(3)}  p50 ${percentile(s, 50).toFixed(1).padStart(6)} ms  p99 ${percentile(s, 99).toFixed(1).padStart(6)} ms  max ${s.at(-1)?.toFixed(1).padStart(6)} ms`;
}

async function freeNodePort(): Promise<number> {
  const { createServer } = await import('node:net');
  for (;;) {
    const port = 30000 + Math.floor(Math.random() * 2768);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

function slice(name: string, service: string, pods: PodServer[], ready: Record<string, boolean>): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: NS,
      labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'verdict-bench' },
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: pods.map((p) => ({
      addresses: [p.ip],
      conditions: { ready: ready[p.name] ?? true, serving: ready[p.name] ?? true, terminating: false },
      targetRef: { kind: 'Pod', name: p.name, namespace: NS },
    })),
  };
}

async function main() {
  if (process.getuid?.() !== 0)
    throw new Error('the embedded cluster needs root for network namespaces: run as root, or use --provider kind');
  const scratch = await own(createScratchNetwork(), (n: ScratchNetwork) => n.dispose());
  const network = scratch.network;
  const podA = await own(startPodServer(network, 'bench-a'), (p) => p.stop());
  const podB = await own(startPodServer(network, 'bench-b'), (p) => p.stop());
  process.stderr.write(`bench: pods bench-a ${podA.ip}, bench-b ${podB.ip} on ${network.bridge}\n`);

  process.stderr.write('bench: starting kube-embedded (built by cluster/embedded/controlplane/build.sh if the cache has none)\n');
  const t0 = performance.now();
  const cp = await own(startScratchControlPlane({ onProgress: (l) => process.stderr.write(`bench: ${l}\n`) }), (c) => c.stop());
  process.stderr.write(`bench: control plane ready in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const nodePort = await freeNodePort();
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  const discovery = cp.kubeConfig.makeApiClient(DiscoveryV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await core.createNamespacedService({
    namespace: NS,
    body: {
      metadata: { name: 'flip' },
      spec: { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort }] },
    },
  });
  await discovery.createNamespacedEndpointSlice({ namespace: NS, body: slice('flip-1', 'flip', [podA], {}) });
  let proxy = await own(ServiceProxy.start({ kubeConfig: cp.kubeConfig }), (p) => p.stop());
  await proxy.waitForRoute(nodePort, (r) => r.length === 1, 15_000);

  // --- 1. throughput ---------------------------------------------------------------------------
  const direct = `http://${podA.ip}:8080/`;
  const viaProxy = `http://127.0.0.1:${nodePort}/`;
  process.stderr.write(`bench: throughput, ${CONNECTIONS} connections, ${DURATION} s per run (warm-up 2 s each)\n`);
  await autocannon(direct, 2);
  await autocannon(viaProxy, 2);
  const loadBefore = loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
  const runs: { kind: 'direct' | 'proxy'; r: Load }[] = [];
  let proxyCpuUs = 0;
  let proxyRequests = 0;
  let serverCpuUs = 0;
  let serverRequests = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const s0 = processCpuUs(podA.process.pid!);
    const d = await autocannon(direct, DURATION);
    serverCpuUs += processCpuUs(podA.process.pid!) - s0;
    serverRequests += d.requests;
    runs.push({ kind: 'direct', r: d });
    const c0 = process.cpuUsage();
    const p = await autocannon(viaProxy, DURATION);
    const c = process.cpuUsage(c0);
    proxyCpuUs += c.user + c.system;
    proxyRequests += p.requests;
    runs.push({ kind: 'proxy', r: p });
  }
  const mean = (k: string) => {
    const xs = runs.filter((x) => x.kind === k).map((x) => x.r.rps);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  console.log(
    `\nload average before/after the throughput runs: ${loadBefore} / ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} (${cpus().length} cores; other work on the machine skews the ratio)`,
  );
  console.log(
    `${'run'.padEnd(22)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'errors'.padStart(7)}`,
  );
  for (const { kind, r } of runs)
    console.log(
      `${`${kind} (${kind === 'direct' ? podA.ip : `127.0.0.1:${nodePort}`})`.padEnd(22)} ${r.rps.toFixed(0).padStart(8)} ${r.p50.toFixed(1).padStart(7)} ${r.p99.toFixed(1).padStart(7)} ${String(r.errors + r.non2xx).padStart(7)}`,
    );
  const ratio = mean('proxy') / mean('direct');
  const perRound = Array.from({ length: ROUNDS }, (_, i) => (runs[2 * i + 1].r.rps / runs[2 * i].r.rps).toFixed(2));
  console.log(
    `proxy / direct throughput: ${ratio.toFixed(2)} (goal >= 0.7) ${ratio >= 0.7 ? 'met' : 'NOT met'}; per round ${perRound.join(', ')}`,
  );
  console.log(
    `CPU per request: proxy ${(proxyCpuUs / proxyRequests).toFixed(1)} µs (whole bench process), pod server ${(serverCpuUs / serverRequests).toFixed(1)} µs (direct runs)`,
  );
  const errors = runs.reduce((n, x) => n + x.r.errors + x.r.non2xx, 0);
  if (errors > 0) console.log(`WARNING: ${errors} errors or non-2xx answers during the throughput runs`);
  const forwarded = proxy.connections().filter((c) => c.backend?.podName === podA.name);
  console.log(
    `proxy recorded ${proxy.connections().length} connections (${forwarded.length} attributed to ${podA.name}), ${proxy.droppedConnectionRecords} dropped from the record`,
  );

  // --- 2a. EndpointSlice flip ------------------------------------------------------------------
  await discovery.replaceNamespacedEndpointSlice({
    name: 'flip-1',
    namespace: NS,
    body: slice('flip-1', 'flip', [podA, podB], {}),
  });
  await proxy.waitForRoute(nodePort, (r) => r.length === 2, 10_000);
  const aAddr = `${podA.ip}:8080`;
  let misrouted = 0;
  const measureFlips = async (flips: number) => {
    const flipDelays: number[] = [];
    for (let i = 0; i < flips; i++) {
      const seen = proxy.endpointHistory().length;
      const t0 = performance.now();
      await discovery.replaceNamespacedEndpointSlice({
        name: 'flip-1',
        namespace: NS,
        body: slice('flip-1', 'flip', [podA, podB], { 'bench-a': false }),
      });
      await proxy.waitForRoute(nodePort, (r) => !r.some((b) => `${b.ip}:${b.port}` === aAddr), 10_000);
      const change = proxy
        .endpointHistory()
        .slice(seen)
        .find((c) => c.nodePort === nodePort && !c.routable.includes(aAddr));
      if (!change) throw new Error('endpoint change not recorded');
      flipDelays.push(change.atPerf - t0);
      if ((await servedBy(viaProxy)) !== podB.name) misrouted++;
      await discovery.replaceNamespacedEndpointSlice({
        name: 'flip-1',
        namespace: NS,
        body: slice('flip-1', 'flip', [podA, podB], {}),
      });
      await proxy.waitForRoute(nodePort, (r) => r.length === 2, 10_000);
    }
    return flipDelays;
  };
  const flipDelays = await measureFlips(FLIPS);

  // --- 2b. Pod deletion through the EndpointSlice controller ------------------------------------
  const nodeName = 'bench-node';
  const coordination = cp.kubeConfig.makeApiClient(CoordinationV1Api);
  await core.createNode({ body: { metadata: { name: nodeName } } });
  const markNodeReady = async () => {
    const now = new Date();
    await core.patchNodeStatus(
      {
        name: nodeName,
        body: {
          status: {
            conditions: [
              { type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: now, lastTransitionTime: now },
            ],
          },
        },
      },
      strategicMerge,
    );
  };
  await markNodeReady();
  await coordination
    .createNamespacedLease({
      namespace: 'kube-node-lease',
      body: { metadata: { name: nodeName }, spec: { holderIdentity: nodeName, leaseDurationSeconds: 40, renewTime: new Date() } },
    })
    .catch(() => {});
  const heartbeat = setInterval(() => {
    void coordination
      .patchNamespacedLease(
        { name: nodeName, namespace: 'kube-node-lease', body: { spec: { renewTime: new Date() } } },
        mergePatch,
      )
      .catch(() => {});
    void markNodeReady().catch(() => {});
  }, 5000);
  cleanup.push(async () => clearInterval(heartbeat));

  const podNodePort = await freeNodePort();
  await core.createNamespacedService({
    namespace: NS,
    body: {
      metadata: { name: 'sel' },
      spec: {
        type: 'NodePort',
        selector: { app: 'bench-sel' },
        ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: podNodePort }],
      },
    },
  });
  const createReadyPod = async (name: string, ip: string) => {
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name, labels: { app: 'bench-sel' } },
        spec: { nodeName, containers: [{ name: 'app', image: 'license-api:bench' }] },
      },
    });
    const now = new Date();
    await core.patchNamespacedPodStatus(
      {
        name,
        namespace: NS,
        body: {
          status: {
            phase: 'Running',
            podIP: ip,
            podIPs: [{ ip }],
            hostIP: '127.0.0.1',
            conditions: [
              { type: 'Ready', status: 'True', lastTransitionTime: now },
              { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
            ],
          },
        },
      },
      strategicMerge,
    );
  };
  await createReadyPod('sel-b', podB.ip);
  const deleteDelays: number[] = [];
  const deleteRuns = Math.max(5, Math.floor(FLIPS / 2));
  for (let i = 0; i < deleteRuns; i++) {
    const name = `sel-a-${i}`;
    await createReadyPod(name, podA.ip);
    await proxy.waitForRoute(podNodePort, (r) => r.length === 2 && r.some((b) => b.podName === name), 15_000);
    const seen = proxy.endpointHistory().length;
    const t0 = performance.now();
    await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 30 });
    await proxy.waitForRoute(podNodePort, (r) => !r.some((b) => b.podName === name), 15_000);
    const change = proxy
      .endpointHistory()
      .slice(seen)
      .find((c) => c.nodePort === podNodePort && !c.routable.includes(aAddr));
    if (!change) throw new Error('endpoint change not recorded');
    deleteDelays.push(change.atPerf - t0);
    if ((await servedBy(`http://127.0.0.1:${podNodePort}/`)) !== podB.name) misrouted++;
    // No kubelet here to finish the termination: force-delete, then wait until it is gone from the slice.
    await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 });
    await proxy.waitForRoute(podNodePort, (r) => r.length === 1, 15_000);
  }

  // --- 2c. the same flips with the modelled data-plane lag ---------------------------------------
  await proxy.stop();
  proxy = await own(ServiceProxy.start({ kubeConfig: cp.kubeConfig, endpointLagMs: LAG }), (p) => p.stop());
  await proxy.waitForRoute(nodePort, (r) => r.length === 2, 10_000);
  const laggedDelays = LAG > 0 ? await measureFlips(Math.max(5, Math.floor(FLIPS / 4))) : [];

  console.log('\nendpoint propagation (API call sent -> proxy routes no new connection there):');
  console.log(summary('EndpointSlice ready=false (update)', flipDelays));
  console.log(summary('Pod delete (grace 30 s) via EndpointSlice ctrl', deleteDelays));
  if (laggedDelays.length) console.log(summary(`ready=false with --endpoint-lag ${LAG} ms`, laggedDelays));
  console.log(`requests sent right after each change that still reached the removed endpoint: ${misrouted}`);
}

let shutdownDone: Promise<void> | undefined;
/** Idempotent: a second caller (Ctrl-C during a failure, or the reverse) waits for the same cleanup. */
function shutdown(): Promise<void> {
  shutdownDone ??= (async () => {
    for (let f = cleanup.pop(); f; f = cleanup.pop())
      await f().catch((e: unknown) => process.stderr.write(`cleanup: ${String(e)}\n`));
  })();
  return shutdownDone;
}
let interrupted = false;
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`bench: ${signal}, cleaning up\n`);
    void shutdown().then(() => process.exit(code));
  });
}
main().then(
  async () => {
    await shutdown();
    console.log(`(${new Date().toISOString()})`);
  },
  async (err: unknown) => {
    if (!interrupted) console.error(`bench failed: ${(err as Error)?.stack ?? String(err)}`);
    await shutdown();
    process.exit(interrupted ? 130 : 1);
  },
);
