/**
 * What the embedded cluster can do to itself for the rehearsals (cluster/capabilities.ts): stop its
 * control plane and start it again on the same state (a zonal GKE control-plane upgrade), and add or
 * remove nodes of its node agent (a node pool's surge upgrade). Each is an inject/recover pair.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { k8s } from '../../lib/kube/client.ts';
import type { ControlPlaneControl, Injection, NodeControl } from '../capabilities.ts';
import type { NodeAgent } from './agent/node-agent.ts';
import type { ControlPlane } from './control-plane.ts';

/** The embedded control plane's one stoppable part: etcd, kube-apiserver, kube-controller-manager and kube-scheduler in one process. */
export const EMBEDDED_CONTROL_PLANE = 'control-plane';

/** An injection whose recover runs once, however often it is called (the runner's teardown may call it after the experiment did). */
function injection(what: string, recover: (signal?: AbortSignal) => Promise<void>): Injection {
  let done: Promise<void> | undefined;
  return {
    what,
    recover: (signal) => {
      done ??= recover(signal).catch((err) => {
        done = undefined;
        throw err;
      });
      return done;
    },
  };
}

export function embeddedControlPlane(cp: ControlPlane): ControlPlaneControl {
  return {
    components: () => [EMBEDDED_CONTROL_PLANE],
    async stop(component) {
      if (component !== EMBEDDED_CONTROL_PLANE)
        throw new Error(
          `the embedded cluster stops its control plane as one process ("${EMBEDDED_CONTROL_PLANE}": etcd, kube-apiserver, kube-controller-manager, kube-scheduler), not "${component}"`,
        );
      await cp.stop();
      return injection(
        `etcd, kube-apiserver, kube-controller-manager and kube-scheduler stopped (one process; etcd data, certificates and ports kept, ${cp.ports.api} for the apiserver)`,
        () => cp.start(),
      );
    },
  };
}

/** Resolves once every node of `names` reports Ready (or throws after `timeoutMs`). */
export async function waitNodesReady(
  kc: k8s.KubeConfig,
  names: string[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const list = await core.listNode();
    const ready = list.items.filter(
      (n) => names.includes(n.metadata!.name!) && n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    if (ready.length === names.length) return;
    if (Date.now() > deadline) throw new Error(`nodes not Ready within ${timeoutMs / 1000} s (${ready.length}/${names.length})`);
    await sleep(200, undefined, { signal });
  }
}

/** Node names `<cluster>-node-<n>`: a new node gets the next number none has had. */
function nextNodeName(cluster: string, existing: string[]): string {
  const prefix = `${cluster}-node-`;
  const used = existing.filter((n) => n.startsWith(prefix)).map((n) => Number(n.slice(prefix.length)) || 0);
  return `${prefix}${Math.max(0, ...used) + 1}`;
}

export function embeddedNodes(agent: NodeAgent, kc: k8s.KubeConfig, cluster: string): NodeControl {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const allNames = async () => [...new Set([...agent.nodes(), ...(await core.listNode()).items.map((n) => n.metadata!.name!)])];
  const add = async (node: string, labels: Record<string, string>, signal?: AbortSignal) => {
    await agent.addNode(node, labels);
    await waitNodesReady(kc, [node], 30_000, signal);
  };
  return {
    async add(o = {}) {
      const node = o.name ?? nextNodeName(cluster, await allNames());
      await add(node, o.labels ?? {}, o.signal);
      return { node, ...injection(`node ${node} added`, () => agent.removeNode(node)) };
    },
    async remove(node) {
      const before = await core.readNode({ name: node }).catch(() => undefined);
      const labels = Object.fromEntries(
        Object.entries(before?.metadata?.labels ?? {}).filter(([k]) => !k.startsWith('kubernetes.io/')),
      );
      await agent.removeNode(node);
      return injection(`node ${node} removed (its pods' processes killed, its Node object deleted)`, (signal) =>
        add(node, labels, signal),
      );
    },
  };
}
