import type { NodePortRoute } from './node-port-routes.ts';

/** Something the source wants recorded (watch errors and the like); never fatal to the proxy. */
export interface EndpointSourceEvent {
  type: 'source-error';
  /** What failed, e.g. "watch /api/v1/services". */
  what: string;
  error: string;
  retryInMs: number;
}

/**
 * Where the service proxy learns its NodePort routes. The Kubernetes one watches Services and
 * EndpointSlices; tests can drive the proxy with a hand-made one.
 */
export interface EndpointSource {
  /**
   * Starts delivering the complete routing table: `onRoutes` is called once the initial state is
   * known (start() resolves after that call) and again after every change.
   */
  start(onRoutes: (routes: NodePortRoute[]) => void, onEvent: (e: EndpointSourceEvent) => void): Promise<void>;
  stop(): Promise<void>;
}
