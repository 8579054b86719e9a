import { CoreV1Api, DiscoveryV1Api, type V1EndpointSlice } from '@kubernetes/client-node';
import { Agent, get } from 'node:http';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScratchNetwork, type ScratchNetwork } from '../network/scratch-network.ts';
import { runCommand } from '../network/run-command.ts';
import { ServiceProxy } from './service-proxy.ts';
import { startScratchControlPlane, type ScratchControlPlane } from './testing/scratch-control-plane.ts';
import { startPodServer, type PodServer } from './testing/pod-servers.ts';

// The proxy against the real control plane (kube-embedded), with its endpoints in real pod network
// namespaces (the apiserver rejects loopback endpoint addresses). Needs root; the control plane is
// started through cluster/embedded/control-plane.ts (build.sh: a cache hit once `make` has built it).

const NS = 'proxy-test';
let scratch: ScratchNetwork | undefined;
let cp: ScratchControlPlane | undefined;
let proxy: ServiceProxy | undefined;
const pods: PodServer[] = [];
let core: CoreV1Api;
let discovery: DiscoveryV1Api;
let podA: PodServer;
let podB: PodServer;
const usedNodePorts: number[] = [];

beforeAll(async () => {
  scratch = await createScratchNetwork();
  podA = await startPodServer(scratch.network, 'pod-a');
  pods.push(podA);
  podB = await startPodServer(scratch.network, 'pod-b');
  pods.push(podB);
  cp = await startScratchControlPlane();
  core = cp.kubeConfig.makeApiClient(CoreV1Api);
  discovery = cp.kubeConfig.makeApiClient(DiscoveryV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  proxy = await ServiceProxy.start({ kubeConfig: cp.kubeConfig });
});

afterAll(async () => {
  // Each step on its own, so one failure does not leave the rest running.
  await proxy?.stop().catch(() => {});
  await cp?.stop().catch(() => {});
  for (const p of pods) await p.stop().catch(() => {});
  await scratch?.dispose();
});

async function freeNodePort(): Promise<number> {
  for (;;) {
    const port = 30000 + Math.floor(Math.random() * 2768);
    if (usedNodePorts.includes(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) {
      usedNodePorts.push(port);
      return port;
    }
  }
}

type Ep = { pod: PodServer; port?: number; ready?: boolean };

function slice(name: string, service: string, eps: Ep[]): V1EndpointSlice {
  return {
    metadata: {
      name,
      namespace: NS,
      labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'verdict-test' },
    },
    addressType: 'IPv4',
    // Every endpoint of a slice shares its ports: a different port means another slice.
    ports: [{ name: 'http', port: eps[0]?.port ?? 8080, protocol: 'TCP' }],
    endpoints: eps.map((e) => ({
      addresses: [e.pod.ip],
      conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false },
      targetRef: { kind: 'Pod', name: e.pod.name, namespace: NS },
    })),
  };
}

async function nodePortService(name: string): Promise<number> {
  const nodePort = await freeNodePort();
  await core.createNamespacedService({
    namespace: NS,
    body: { metadata: { name }, spec: { type: 'NodePort', ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort }] } },
  });
  return nodePort;
}

/** One GET on a fresh connection (agent: false); resolves with X-Served-By and the local port, or the error code. */
function request(port: number, agent?: Agent): Promise<{ servedBy?: string; error?: string; localPort?: number }> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/', agent: agent ?? false, timeout: 5000 }, (res) => {
      const localPort = res.socket.localPort;
      res.resume();
      res.on('end', () => resolve({ servedBy: String(res.headers['x-served-by']), localPort }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
  });
}

describe('ServiceProxy with the real control plane and pod namespaces', () => {
  it('sends connections only to ready endpoints and attributes each to its pod', async () => {
    const nodePort = await nodePortService('ready-only');
    await discovery.createNamespacedEndpointSlice({
      namespace: NS,
      body: slice('ready-only-1', 'ready-only', [{ pod: podA }, { pod: podB, ready: false }]),
    });
    await proxy!.waitForRoute(nodePort, (r) => r.length === 1, 10_000);
    const results = await Promise.all(Array.from({ length: 20 }, () => request(nodePort)));
    expect(results.map((r) => r.servedBy)).toEqual(Array(20).fill('pod-a'));
    for (const r of results) {
      expect(proxy!.lookup(r.localPort!)).toMatchObject({
        service: `${NS}/ready-only`,
        nodePort,
        backend: { ip: podA.ip, port: 8080, podName: 'pod-a', podNamespace: NS },
      });
    }
  });

  it('stops new connections to an endpoint within a bounded time after it turns not-ready, keeping established ones', async () => {
    const nodePort = await nodePortService('flip');
    await discovery.createNamespacedEndpointSlice({ namespace: NS, body: slice('flip-1', 'flip', [{ pod: podA }]) });
    await proxy!.waitForRoute(nodePort, (r) => r.length === 1, 10_000);
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = await request(nodePort, keepAlive);
      expect(before.servedBy).toBe('pod-a');

      const t0 = performance.now();
      await discovery.replaceNamespacedEndpointSlice({
        name: 'flip-1',
        namespace: NS,
        body: slice('flip-1', 'flip', [{ pod: podA, ready: false }, { pod: podB }]),
      });
      await proxy!.waitForRoute(nodePort, (r) => r.length === 1 && r[0].ip === podB.ip, 5_000);
      const change = proxy!.endpointHistory().findLast((c) => c.nodePort === nodePort)!;
      expect(change.routable).toEqual([`${podB.ip}:8080`]);
      expect(change.atPerf - t0).toBeLessThan(2_000);

      const after = await Promise.all(Array.from({ length: 10 }, () => request(nodePort)));
      expect(after.map((r) => r.servedBy)).toEqual(Array(10).fill('pod-b'));
      // The keep-alive connection opened before the flip still goes to pod-a: not cut, not moved.
      const reused = await request(nodePort, keepAlive);
      expect(reused).toMatchObject({ servedBy: 'pod-a', localPort: before.localPort });
    } finally {
      keepAlive.destroy();
    }
  });

  it('resets the client when the chosen endpoint refuses, records it, and does not retry another endpoint', async () => {
    const nodePort = await nodePortService('refuse');
    // pod-a's address on a port nothing listens on: the pod's kernel refuses the connection.
    await discovery.createNamespacedEndpointSlice({
      namespace: NS,
      body: slice('refuse-dead', 'refuse', [{ pod: podA, port: 8081 }]),
    });
    await discovery.createNamespacedEndpointSlice({ namespace: NS, body: slice('refuse-live', 'refuse', [{ pod: podB }]) });
    await proxy!.waitForRoute(nodePort, (r) => r.length === 2, 10_000);
    const first = proxy!.connections().length;
    const results = [await request(nodePort), await request(nodePort), await request(nodePort), await request(nodePort)];
    // Round robin over [pod-a:8081, pod-b:8080]: every other connection fails, none is moved to pod-b.
    expect(results.filter((r) => r.error === 'ECONNRESET')).toHaveLength(2);
    expect(results.filter((r) => r.servedBy === 'pod-b')).toHaveLength(2);
    const records = proxy!
      .connections()
      .slice(first)
      .filter((c) => c.nodePort === nodePort);
    expect(records).toHaveLength(4);
    // The client has its answer before the proxy has seen both sides close.
    const deadline = Date.now() + 5_000;
    while (records.some((c) => c.closedAt === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const failed = records.filter((c) => c.outcome === 'backend-connect-failed');
    expect(failed).toHaveLength(2);
    for (const f of failed)
      expect(f).toMatchObject({ error: 'ECONNREFUSED', backend: { ip: podA.ip, port: 8081, podName: 'pod-a' } });
    expect(records.filter((c) => c.backend?.podName === 'pod-b' && c.outcome === 'completed')).toHaveLength(2);
  });

  it('closes the node port when the Service goes away, and stop() leaves nothing listening', async () => {
    const nodePort = await nodePortService('gone');
    await proxy!.waitForRoute(nodePort, () => true, 10_000);
    expect((await request(nodePort)).error).toBe('ECONNRESET'); // no endpoints: accepted, then reset
    await core.deleteNamespacedService({ name: 'gone', namespace: NS });
    const deadline = Date.now() + 5_000;
    while (proxy!.listeningPorts().includes(nodePort) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await request(nodePort)).error).toBe('ECONNREFUSED');

    const ports = proxy!.listeningPorts();
    expect(ports.length).toBeGreaterThan(0);
    await proxy!.stop();
    expect(proxy!.listeningPorts()).toEqual([]);
    const listening = (await runCommand(['ss', '-Hltn'])).stdout;
    for (const p of usedNodePorts) expect(listening).not.toMatch(new RegExp(`:${p}\\s`));
    for (const p of ports) expect((await request(p)).error).toBe('ECONNREFUSED');
  });
});
