import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

/** One endpoint address of a Service port, with the EndpointSlice conditions that decide routing. */
export interface Backend {
  ip: string;
  port: number;
  /** From the endpoint's targetRef (kind Pod), when present. */
  podName?: string;
  podNamespace?: string;
  nodeName?: string;
  /** EndpointSlice conditions with the API's nil defaults: ready/serving nil = true, terminating nil = false. */
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

/** What listens on one node port and where it may send connections. */
export interface NodePortRoute {
  nodePort: number;
  /** "namespace/name" of the Service. */
  service: string;
  /** The Service port's name ("" when unnamed). */
  portName: string;
  /** Every endpoint of this port, sorted by ip then port; routing picks among them. */
  backends: Backend[];
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * The NodePort routing table kube-proxy would build from these Services and EndpointSlices: one
 * route per TCP Service port that has a nodePort (type NodePort or LoadBalancer), whose backends
 * are the endpoints of the slices labelled with the Service's name, matched by port name,
 * IPv4 only, de-duplicated by ip:port (a ready copy wins, as during slice hand-overs).
 */
export function nodePortRoutes(services: readonly V1Service[], slices: readonly V1EndpointSlice[]): NodePortRoute[] {
  const slicesByService = new Map<string, V1EndpointSlice[]>();
  for (const slice of slices) {
    const name = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!name || slice.addressType !== 'IPv4') continue;
    const key = `${slice.metadata?.namespace ?? ''}/${name}`;
    const list = slicesByService.get(key) ?? [];
    list.push(slice);
    slicesByService.set(key, list);
  }
  const routes: NodePortRoute[] = [];
  for (const svc of services) {
    const type = svc.spec?.type;
    if (type !== 'NodePort' && type !== 'LoadBalancer') continue;
    const service = `${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`;
    for (const sp of svc.spec?.ports ?? []) {
      if (!sp.nodePort || (sp.protocol ?? 'TCP') !== 'TCP') continue;
      const portName = sp.name ?? '';
      const byAddress = new Map<string, Backend>();
      for (const slice of slicesByService.get(service) ?? []) {
        const slicePort = (slice.ports ?? []).find((p) => (p.name ?? '') === portName && (p.protocol ?? 'TCP') === 'TCP');
        if (slicePort?.port === undefined) continue;
        for (const ep of slice.endpoints ?? []) {
          const ready = ep.conditions?.ready ?? true;
          const serving = ep.conditions?.serving ?? true;
          const terminating = ep.conditions?.terminating ?? false;
          const pod = ep.targetRef?.kind === 'Pod' ? ep.targetRef : undefined;
          for (const ip of ep.addresses ?? []) {
            const key = `${ip}:${slicePort.port}`;
            const prev = byAddress.get(key);
            if (prev && (prev.ready || !ready)) continue;
            byAddress.set(key, {
              ip,
              port: slicePort.port,
              ...(pod?.name ? { podName: pod.name, podNamespace: pod.namespace ?? svc.metadata?.namespace } : {}),
              ...(ep.nodeName ? { nodeName: ep.nodeName } : {}),
              ready,
              serving,
              terminating,
            });
          }
        }
      }
      const backends = [...byAddress.values()].sort((a, b) => compareIp(a.ip, b.ip) || a.port - b.port);
      routes.push({ nodePort: sp.nodePort, service, portName, backends });
    }
  }
  return routes.sort((a, b) => a.nodePort - b.nodePort);
}

/**
 * The backends that take new connections, as kube-proxy chooses them for a Cluster traffic
 * policy: the ready ones; when none is ready and `terminatingFallback` is on, the ones that are
 * serving while terminating (KEP-1669, default in kube-proxy since 1.28).
 */
export function routableBackends(route: NodePortRoute, terminatingFallback: boolean): Backend[] {
  const ready = route.backends.filter((b) => b.ready);
  if (ready.length > 0 || !terminatingFallback) return ready;
  return route.backends.filter((b) => b.serving && b.terminating);
}

function compareIp(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
