import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { loadKubeConfig, k8s } from '../../lib/kube/client.ts';
import { killProcessesUsing } from '../../lib/proc/kill-by-path.ts';
import {
  TargetUnavailableError,
  type ImageLoader,
  type OpenOptions,
  type Platform,
  type PodReach,
  type Target,
  type TargetStrategy,
} from '../target.ts';
import { NodeAgent } from './agent/node-agent.ts';
import type { PodWorkerDeps } from './agent/pod-worker.ts';
import { startControlPlane, type ControlPlane } from './control-plane.ts';
import { embeddedControlPlane, embeddedNodes, waitNodesReady } from './rehearsal-capabilities.ts';
import { startHostServices, type HostServices } from './host-services.ts';
import { ImageStore } from './image-store.ts';
import { commandInNamespace, PodNetwork } from './network/pod-network.ts';
import { ServiceProxy } from './proxy/service-proxy.ts';
import { DEFAULT_GATEWAY, DEFAULT_CLUSTER_CIDR } from './network/pod-network.ts';
import { networkSlot } from './network/slots.ts';
import { alive, DEFAULT_STATE_ROOT, readClusterState, stateDirOf, type ClusterStateFile } from './state.ts';

export { DEFAULT_STATE_ROOT };

/**
 * The embedded proxy's default endpoint lag, set from what real kube-proxy does on kind (README,
 * "kind": bench/endpoint-lag.ts and cluster/kind/kind.cluster.test.ts). A pod deleted soon after
 * another endpoint change (as in a rollout or a drain) stops getting new connections 0.9–1.1 s after
 * the delete (p50 923 ms, p99 1116 ms: kube-proxy's minSyncPeriod of 1 s); the embedded control
 * plane itself takes about 20 ms of that, so 1100 ms here gives the same delete → no-new-connection
 * time. (A lone deletion after a quiet second is faster on kind, p50 about 170 ms: this default is the
 * stricter of the two, so that a release that only survives a quick data plane does not pass.)
 */
export const DEFAULT_ENDPOINT_LAG_MS = 1100;

/** Controllers the embedded cluster runs besides the control plane binary's defaults. */
export const EXTRA_CONTROLLERS = ['job-controller'];

/** The embedded cluster runs the app's backing services on this machine; it is the harness's own. */
export const EMBEDDED_PLATFORM: Platform = { services: 'host', secrets: 'throwaway' };

/** How pods reach this machine and NodePort Services: the pod bridge's gateway, where the proxy listens too. */
export function embeddedPodReach(gateway: string, clusterCidr: string): PodReach {
  return { harnessAddress: gateway, serviceUrl: (nodePort) => `http://${gateway}:${nodePort}`, networks: [clusterCidr] };
}

export interface EmbeddedCluster extends Target {
  readonly kind: 'embedded';
  readonly kubeconfigPath: string;
  readonly stateDir: string;
  /** The image store behind `images` (the embedded twin of a node's containerd). */
  readonly imageStore: ImageStore;
  readonly images: NonNullable<Target['images']>;
  readonly agent: NodeAgent;
  readonly proxy: ServiceProxy;
  /** The pod network (bridge, namespaces, addresses); `network` is the partition capability's name. */
  readonly podNetwork: PodNetwork;
  readonly hostServices: HostServices;
  readonly kubeConfig: k8s.KubeConfig;
  readonly endpointLagMs: number;
  readonly podReach: PodReach;
  readonly controlPlane: NonNullable<Target['controlPlane']>;
  readonly nodes: NonNullable<Target['nodes']>;
}

export interface EmbeddedUpOptions extends Pick<
  OpenOptions,
  'name' | 'nodes' | 'stateDir' | 'onProgress' | 'signal' | 'endpointLagMs'
> {
  /**
   * Which network slot (0–7, network/slots.ts): its own bridge, pod range and NodePort address, so
   * that clusters with their own state directories run side by side. 0 (the default) is 127.0.0.1 and verdict0.
   */
  slot?: number;
  /** Kubelet restart back-off base (10 s like the kubelet; tests may shorten it). */
  backoffBaseMs?: number;
  onLifecycle?: PodWorkerDeps['onLifecycle'];
  log?: Logger;
}

/** The image store as a target's image loader: it takes the bundle an app profile gives. */
function storeLoader(store: ImageStore): ImageLoader {
  return {
    async load(images, say, signal) {
      for (const src of images) {
        signal?.throwIfAborted();
        if (!src.bundle)
          throw new Error(
            `the embedded image store needs a bundle for ${src.ref} (the app profile gives none): use --target kind for Docker-only images`,
          );
        say?.(`building ${src.ref} into the embedded image store`);
        await store.add(src.ref, src.bundle.cmd, src.bundle.fill);
      }
      await store.runtimeNode();
    },
  };
}

/**
 * The embedded cluster: the real control plane (one Go process built from k8s.io/kubernetes), our
 * process node agent, network namespaces for pods and a NodePort proxy on 127.0.0.1 and on the pod
 * network's gateway. Needs root.
 * Every part is torn down by `down()`, in reverse order, whatever failed.
 */
export async function upEmbedded(opts: EmbeddedUpOptions = {}): Promise<EmbeddedCluster> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the embedded cluster needs root (network namespaces for pods): run as root, or use --provider kind where Docker runs',
    );
  }
  const name = opts.name ?? 'verdict';
  const stateDir = opts.stateDir ?? join(DEFAULT_STATE_ROOT, name);
  const slot = networkSlot(opts.slot);
  const report = opts.onProgress ?? (() => {});
  // Every step starts by checking for cancellation (Ctrl-C during `up`): the catch below tears down what exists.
  const progress = (m: string) => {
    opts.signal?.throwIfAborted();
    report(m);
  };
  const log = opts.log ?? pino({ level: process.env.VERDICT_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  const teardown: Array<[string, () => Promise<unknown>]> = [];
  const down = async () => {
    while (teardown.length) {
      const [what, fn] = teardown.pop()!;
      try {
        await fn();
      } catch (err) {
        log.warn({ what, err: String(err) }, 'teardown step failed');
      }
    }
  };
  try {
    progress('cleaning up leftovers of earlier runs');
    await killProcessesUsing(stateDir);
    await PodNetwork.cleanupLeftovers({ stateDir, ...slot.pod });
    await rm(join(stateDir, 'controlplane'), { recursive: true, force: true });
    await mkdir(stateDir, { recursive: true, mode: 0o755 });

    progress('creating the pod network (bridge, blackhole route)');
    const network = await PodNetwork.create({ stateDir, ...slot.pod });
    teardown.push(['pod network', () => network.destroy()]);

    progress(`starting Postgres and Redis on ${network.gateway}`);
    const hostServices = await startHostServices(network.gateway, network.clusterCidr, stateDir, 'license', { say: progress });
    teardown.push(['host services', () => hostServices.stop()]);

    progress('starting the control plane (building it first if needed)');
    // The Job controller too: distributed load runs its agents as an Indexed Job (lib/load/distributed).
    const cp: ControlPlane = await startControlPlane({
      stateDir: join(stateDir, 'controlplane'),
      advertiseAddress: network.gateway,
      extraControllers: EXTRA_CONTROLLERS,
      onProgress: (l) => progress(`control plane: ${l}`),
    });
    teardown.push(['control plane', () => cp.stop()]);
    const kubeConfig = loadKubeConfig(cp.kubeconfig);

    const images = new ImageStore(stateDir);
    const nodes = Array.from({ length: opts.nodes ?? 3 }, (_, i) => `${name}-node-${i + 1}`);
    progress(`registering ${nodes.length} nodes`);
    const agent = new NodeAgent({
      kubeConfig,
      network: { attach: (k) => network.attach(k), detach: (k) => network.detach(k), commandInNamespace },
      images,
      nodes,
      hostIP: network.gateway,
      stateDir,
      log,
      backoff: opts.backoffBaseMs
        ? { baseMs: opts.backoffBaseMs, maxMs: opts.backoffBaseMs * 30, resetAfterMs: 600_000 }
        : undefined,
      onLifecycle: opts.onLifecycle,
    });
    teardown.push(['node agent', () => agent.stop()]);
    await agent.start();

    const endpointLagMs = opts.endpointLagMs ?? DEFAULT_ENDPOINT_LAG_MS;
    // A NodePort answers on every node address: the slot's loopback address (127.0.0.1 for slot 0)
    // for the harness, the gateway for pods.
    const { nodePortHost } = slot;
    progress(`starting the service proxy on ${nodePortHost} and ${network.gateway} (endpoint lag ${endpointLagMs} ms)`);
    const proxy = await ServiceProxy.start({ kubeConfig, hosts: [nodePortHost, network.gateway], endpointLagMs });
    teardown.push(['service proxy', () => proxy.stop()]);

    progress('waiting for the nodes to be Ready');
    await waitNodesReady(kubeConfig, nodes, 30_000);
    opts.signal?.throwIfAborted();
    const state: ClusterStateFile = {
      name,
      pid: process.pid,
      kubeconfig: cp.kubeconfig,
      startedAt: new Date().toISOString(),
      gateway: network.gateway,
      clusterCidr: network.clusterCidr,
      nodePortHost,
      endpointLagMs,
    };
    await writeFile(join(stateDir, 'cluster.json'), JSON.stringify(state, null, 2));
    teardown.push(['state file', () => rm(join(stateDir, 'cluster.json'), { force: true })]);

    let isDown = false;
    const dependencies: Record<string, { stop(): Promise<void>; start(): Promise<void> }> = {
      postgres: { stop: () => hostServices.postgres.halt('fast'), start: () => hostServices.postgres.start() },
      redis: { stop: () => hostServices.redis.pause(), start: () => hostServices.redis.start() },
    };
    const dependency = (n: string) => {
      const d = dependencies[n];
      if (!d)
        throw new Error(`the embedded cluster runs no dependency "${n}" (it runs: ${Object.keys(dependencies).join(', ')})`);
      return d;
    };
    const cluster: EmbeddedCluster = {
      kind: 'embedded',
      platform: { ...EMBEDDED_PLATFORM, hostServicesAddress: network.gateway },
      name,
      context: kubeConfig.getCurrentContext() || null,
      kubeconfigPath: cp.kubeconfig,
      owned: true,
      stateDir,
      agent,
      proxy,
      podNetwork: network,
      hostServices,
      kubeConfig,
      endpointLagMs,
      imageStore: images,
      images: storeLoader(images),
      attribution: { podOf: (port) => proxy.lookup(port)?.backend?.podName },
      routing: {
        routingHistory: (nodePort) =>
          proxy
            .endpointHistory()
            .filter((c) => c.nodePort === nodePort)
            .map((c) => ({ at: c.at, routable: [...c.routable] })),
      },
      dependencies: {
        names: () => Object.keys(dependencies),
        stop: (n) => dependency(n).stop(),
        start: (n) => dependency(n).start(),
      },
      serviceUrl: (nodePort) => `http://${nodePortHost}:${nodePort}`,
      podReach: embeddedPodReach(network.gateway, network.clusterCidr),
      controlPlane: embeddedControlPlane(cp),
      nodes: embeddedNodes(agent, kubeConfig, name),
      async serverVersion() {
        try {
          return (await kubeConfig.makeApiClient(k8s.VersionApi).getCode()).gitVersion;
        } catch {
          return null;
        }
      },
      async close() {
        if (isDown) return;
        isDown = true;
        await down();
      },
      async [Symbol.asyncDispose]() {
        await cluster.close();
      },
    };
    return cluster;
  } catch (err) {
    await down();
    throw err;
  }
}

/**
 * The embedded cluster `verdict cluster up` runs (found by its state file), as a target of this
 * process: its image store and pod reach, not the parts that live in the cluster's own process
 * (attribution, routing, dependencies). Left running by `close()`.
 */
export async function attachEmbedded(opts: Pick<OpenOptions, 'name' | 'stateDir'> = {}): Promise<Target> {
  const name = opts.name ?? 'verdict';
  const stateDir = stateDirOf(name, opts.stateDir);
  const state = await readClusterState(stateDir);
  if (!state || !alive(state.pid))
    throw new TargetUnavailableError(
      `none is running as "${name}" (${stateDir}): start it with \`verdict cluster up\` (as root) and deploy the app first`,
    );
  const kubeConfig = loadKubeConfig(state.kubeconfig);
  const store = new ImageStore(stateDir);
  const target: Target = {
    kind: 'embedded',
    platform: { ...EMBEDDED_PLATFORM, hostServicesAddress: state.gateway ?? DEFAULT_GATEWAY },
    name,
    context: kubeConfig.getCurrentContext() || null,
    kubeConfig,
    kubeconfigPath: state.kubeconfig,
    owned: false,
    endpointLagMs: state.endpointLagMs ?? null,
    images: storeLoader(store),
    podReach: embeddedPodReach(state.gateway ?? DEFAULT_GATEWAY, state.clusterCidr ?? DEFAULT_CLUSTER_CIDR),
    serviceUrl: (nodePort) => `http://${state.nodePortHost ?? '127.0.0.1'}:${nodePort}`,
    async serverVersion() {
      try {
        return (await kubeConfig.makeApiClient(k8s.VersionApi).getCode()).gitVersion;
      } catch {
        return null;
      }
    },
    async close() {},
    async [Symbol.asyncDispose]() {},
  };
  return target;
}

/** The embedded cluster as a target strategy: runs here as root, without Docker; made here, or attached to (`attach`). */
export const embeddedStrategy: TargetStrategy = {
  kind: 'embedded',
  async available() {
    if (process.getuid?.() !== 0)
      return { ok: false, reason: 'needs root (network namespaces for pods): run as root, e.g. sudo make verify-local' };
    return { ok: true };
  },
  open: (opts) => (opts.attach ? attachEmbedded(opts) : upEmbedded(opts)),
};
