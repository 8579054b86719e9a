import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type V1EndpointSlice, type V1Service } from '@kubernetes/client-node';
import type { EndpointSource, EndpointSourceEvent } from './endpoint-source.ts';
import { ReflectorBackoff } from '../../../lib/kube/backoff.ts';
import { ListWatch } from '../../../lib/kube/list-watch.ts';
import { errorText } from '../../../lib/errors.ts';
import { nodePortRoutes, type NodePortRoute } from './node-port-routes.ts';

/**
 * NodePort routes from a cluster's Services and discovery.k8s.io/v1 EndpointSlices (all namespaces),
 * watched as kube-proxy's informers watch them: while the apiserver is unreachable the last routes
 * stay in force (kube-proxy keeps its rules), and each watch tries again with client-go's reflector
 * back-off (800 ms doubling to [30, 60) s, lib/kube/backoff.ts), so after a long control-plane
 * outage the routes can stay stale for up to a minute after the apiserver is back, as on a real node.
 */
export class KubeEndpointSource implements EndpointSource {
  readonly #kubeConfig: KubeConfig;
  readonly #timeoutSeconds: number;
  #services: ListWatch<V1Service> | undefined;
  #slices: ListWatch<V1EndpointSlice> | undefined;

  constructor(kubeConfig: KubeConfig, opts: { watchTimeoutSeconds?: number } = {}) {
    this.#kubeConfig = kubeConfig;
    this.#timeoutSeconds = opts.watchTimeoutSeconds ?? 25;
  }

  async start(onRoutes: (routes: NodePortRoute[]) => void, onEvent: (e: EndpointSourceEvent) => void): Promise<void> {
    const core = this.#kubeConfig.makeApiClient(CoreV1Api);
    const discovery = this.#kubeConfig.makeApiClient(DiscoveryV1Api);
    let started = false;
    const publish = () => {
      if (!started || !services.synced || !slices.synced) return;
      onRoutes(nodePortRoutes(services.items(), slices.items()));
    };
    const onError = (what: string) => (err: unknown, retryInMs: number) =>
      onEvent({ type: 'source-error', what, error: describe(err), retryInMs });
    const services = new ListWatch<V1Service>({
      kubeConfig: this.#kubeConfig,
      path: '/api/v1/services',
      list: () => core.listServiceForAllNamespaces({}),
      onChange: publish,
      onError: onError('list/watch /api/v1/services'),
      timeoutSeconds: this.#timeoutSeconds,
      backoff: new ReflectorBackoff(),
    });
    const slices = new ListWatch<V1EndpointSlice>({
      kubeConfig: this.#kubeConfig,
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      list: () => discovery.listEndpointSliceForAllNamespaces({}),
      onChange: publish,
      onError: onError('list/watch /apis/discovery.k8s.io/v1/endpointslices'),
      timeoutSeconds: this.#timeoutSeconds,
      backoff: new ReflectorBackoff(),
    });
    this.#services = services;
    this.#slices = slices;
    try {
      await Promise.all([services.start(), slices.start()]);
    } catch (err) {
      await this.stop();
      throw err;
    }
    started = true;
    publish();
  }

  async stop(): Promise<void> {
    await Promise.all([this.#services?.stop(), this.#slices?.stop()]);
  }
}

function describe(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: number; body?: unknown; message?: string };
    if (e.code !== undefined && e.body !== undefined) {
      // ApiException: body may be a JSON string.
      let body = e.body;
      if (typeof body === 'string') {
        try {
          body = JSON.parse(body);
        } catch {
          /* keep text */
        }
      }
      const msg = (body as { message?: string } | undefined)?.message ?? errorText(e.body);
      return `HTTP ${e.code}: ${msg}`;
    }
    if (e.message) return e.message;
  }
  return String(err);
}
