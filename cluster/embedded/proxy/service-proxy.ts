import type { KubeConfig } from '@kubernetes/client-node';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ConnectionLog, type ConnectionOutcome, type ConnectionRecord } from './connection-log.ts';
import type { EndpointSource, EndpointSourceEvent } from './endpoint-source.ts';
import { KubeEndpointSource } from './kube-endpoint-source.ts';
import { routableBackends, type Backend, type NodePortRoute } from './node-port-routes.ts';
import { RingBuffer } from './ring-buffer.ts';

export type { Backend, NodePortRoute } from './node-port-routes.ts';
export type { ConnectionOutcome, ConnectionRecord } from './connection-log.ts';
export type { EndpointSource, EndpointSourceEvent } from './endpoint-source.ts';

/** A change of one node port's endpoint set, as the proxy saw it. */
export interface EndpointChange {
  /** Date.now() and performance.now() when the proxy applied it. */
  at: number;
  atPerf: number;
  service: string;
  portName: string;
  nodePort: number;
  /** Every endpoint with its conditions after the change. */
  backends: Backend[];
  /** "ip:port" of the endpoints that take new connections from now on. */
  routable: string[];
  /** The Service port is gone (or no longer a NodePort): its listener closes. */
  removed?: boolean;
}

export type ProxyEvent =
  | { type: 'connection-opened'; connection: ConnectionRecord }
  | { type: 'connection-closed'; connection: ConnectionRecord }
  | { type: 'endpoints-changed'; change: EndpointChange }
  | { type: 'listener-opened' | 'listener-closed'; nodePort: number; service: string }
  | { type: 'listener-error'; nodePort: number; service: string; error: string; retryInMs: number }
  | EndpointSourceEvent;

export interface ServiceProxyOptions {
  /** Watch this cluster's Services and EndpointSlices... */
  kubeConfig?: KubeConfig;
  /** ...or take routes from this source instead (tests). Exactly one of the two. */
  endpointSource?: EndpointSource;
  /** Address the node ports listen on. Default 127.0.0.1. */
  host?: string;
  /**
   * Addresses the node ports listen on, each port on all of them (instead of `host`): a real NodePort
   * answers on every address of the node. The embedded cluster passes 127.0.0.1 (the harness) and
   * the pod network's gateway (the node's address as pods see it, e.g. load agents in pods).
   */
  hosts?: string[];
  onEvent?: (e: ProxyEvent) => void;
  /** Connections kept by connections()/lookup(); oldest dropped first. Default 100 000. */
  maxConnectionRecords?: number;
  /** Entries kept by endpointHistory(). Default 10 000. */
  maxEndpointChanges?: number;
  /**
   * When a Service has no ready endpoint, send new connections to endpoints that are serving while
   * terminating, as kube-proxy does for Cluster traffic policy since 1.28 (KEP-1669). Default true;
   * false rejects as soon as nothing is ready.
   */
  terminatingFallback?: boolean;
  /** Wait this long before retrying a node port that could not be bound. Default 1000 ms. */
  listenRetryMs?: number;
  /**
   * Apply every endpoint change this long after the watch delivered it, in both directions (an
   * endpoint added or withdrawn), as a real data plane lags the EndpointSlices: kube-proxy applies
   * changes no sooner than its minSyncPeriod (1 s by default), cloud load balancers later still.
   * The initial routes are applied at once. Default 0 (no lag): the embedded cluster sets 1000.
   */
  endpointLagMs?: number;
}

interface RouteState {
  route: NodePortRoute;
  routable: Backend[];
  /** Round-robin cursor. */
  next: number;
}

interface Listener {
  nodePort: number;
  service: string;
  /** One server per listen address. */
  servers: Server[];
  /** Bound on every address. */
  listening: boolean;
  closed: boolean;
  retry?: NodeJS.Timeout;
}

interface Forwarded {
  client: Socket;
  upstream: Socket;
  record: ConnectionRecord;
}

const noop = () => {};

/**
 * The embedded cluster's kube-proxy for NodePort Services: listens on `<host>:<nodePort>` (each of its hosts) for every
 * TCP NodePort Service port and forwards each accepted connection to one routable endpoint (round
 * robin). It never retries a failed backend for the client: a refused or failed backend resets
 * the client connection and is recorded. With no routable endpoint the connection is reset at
 * once. Endpoint changes affect new connections only; established ones are left alone.
 */
export class ServiceProxy {
  /** The first listen address (kept for callers that know one). */
  readonly host: string;
  /** Every address each node port listens on. */
  readonly hosts: readonly string[];
  readonly #source: EndpointSource;
  readonly #onEvent: (e: ProxyEvent) => void;
  readonly #terminatingFallback: boolean;
  readonly #listenRetryMs: number;
  readonly #endpointLagMs: number;
  readonly #lagged = new Set<NodeJS.Timeout>();
  readonly #log: ConnectionLog;
  readonly #history: RingBuffer<EndpointChange>;
  #routes = new Map<number, RouteState>();
  readonly #listeners = new Map<number, Listener>();
  readonly #pendingBinds = new Set<Promise<void>>();
  readonly #active = new Set<Forwarded>();
  readonly #waiters = new Set<() => void>();
  #nextId = 0;
  #stopped = false;

  private constructor(opts: ServiceProxyOptions, source: EndpointSource) {
    this.hosts = opts.hosts?.length ? [...new Set(opts.hosts)] : [opts.host ?? '127.0.0.1'];
    this.host = this.hosts[0];
    this.#source = source;
    const onEvent = opts.onEvent;
    this.#onEvent = onEvent
      ? (e) => {
          try {
            onEvent(e);
          } catch {
            /* a listener's bug must not break forwarding */
          }
        }
      : noop;
    this.#terminatingFallback = opts.terminatingFallback ?? true;
    this.#listenRetryMs = opts.listenRetryMs ?? 1000;
    this.#endpointLagMs = Math.max(0, opts.endpointLagMs ?? 0);
    this.#log = new ConnectionLog(opts.maxConnectionRecords ?? 100_000);
    this.#history = new RingBuffer(opts.maxEndpointChanges ?? 10_000);
  }

  /** Starts watching, applies the initial routes and resolves once their node ports are bound (or failed). */
  static async start(opts: ServiceProxyOptions): Promise<ServiceProxy> {
    if (!!opts.kubeConfig === !!opts.endpointSource)
      throw new Error('ServiceProxy.start needs exactly one of kubeConfig and endpointSource');
    const source = opts.endpointSource ?? new KubeEndpointSource(opts.kubeConfig!);
    const proxy = new ServiceProxy(opts, source);
    try {
      let initial = true;
      await source.start(
        (routes) => {
          if (initial || proxy.#endpointLagMs === 0) {
            initial = false;
            proxy.#apply(routes);
            return;
          }
          // Full tables arrive in order and wait the same time, so they are applied in order.
          const timer = setTimeout(() => {
            proxy.#lagged.delete(timer);
            if (!proxy.#stopped) proxy.#apply(routes);
          }, proxy.#endpointLagMs);
          proxy.#lagged.add(timer);
        },
        (e) => proxy.#onEvent(e),
      );
      while (proxy.#pendingBinds.size > 0) await Promise.all(proxy.#pendingBinds);
    } catch (err) {
      await proxy.stop();
      throw err;
    }
    return proxy;
  }

  /** Every recorded connection, oldest first (bounded; see maxConnectionRecords). */
  connections(): ConnectionRecord[] {
    return this.#log.all();
  }

  /** Connections dropped from the record because it was full. */
  get droppedConnectionRecords(): number {
    return this.#log.dropped;
  }

  /** The most recent connection that came from this client port on the proxy's host. */
  lookup(clientPort: number): ConnectionRecord | undefined {
    return this.#log.lookup(clientPort);
  }

  /** Endpoint-set changes per node port, oldest first (the first entry per port is its initial set). */
  endpointHistory(): EndpointChange[] {
    return this.#history.toArray();
  }

  /** The current routing table, with the endpoints that take new connections. */
  routes(): { route: NodePortRoute; routable: Backend[]; listening: boolean }[] {
    return [...this.#routes.values()].map((s) => ({
      route: s.route,
      routable: s.routable,
      listening: this.#listeners.get(s.route.nodePort)?.listening ?? false,
    }));
  }

  /** Node ports with a bound listener. */
  listeningPorts(): number[] {
    return [...this.#listeners.values()]
      .filter((l) => l.listening && !l.closed)
      .map((l) => l.nodePort)
      .sort((a, b) => a - b);
  }

  /** Connections currently being forwarded. */
  get activeConnections(): number {
    return this.#active.size;
  }

  /**
   * Resolves once `nodePort` is listening and `accept(routable endpoints)` holds (default: at least
   * one); rejects after `timeoutMs`.
   */
  async waitForRoute(
    nodePort: number,
    accept: (routable: Backend[]) => boolean = (r) => r.length > 0,
    timeoutMs = 10_000,
  ): Promise<Backend[]> {
    const check = () => {
      const s = this.#routes.get(nodePort);
      return s && this.#listeners.get(nodePort)?.listening && accept(s.routable) ? s.routable : undefined;
    };
    const now = check();
    if (now) return now;
    return await new Promise((resolve, reject) => {
      const waiter = () => {
        const r = check();
        if (!r) return;
        cleanup();
        resolve(r);
      };
      const timer = setTimeout(() => {
        cleanup();
        const s = this.#routes.get(nodePort);
        reject(
          new Error(
            `node port ${nodePort} not routed as expected within ${timeoutMs} ms (route: ${s ? `${s.route.service}, routable ${JSON.stringify(s.routable.map((b) => `${b.ip}:${b.port}`))}` : 'none'}, listening: ${this.#listeners.get(nodePort)?.listening ?? false})`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      this.#waiters.add(waiter);
    });
  }

  /** The modelled data-plane lag (ms) applied to every endpoint change. */
  get endpointLagMs(): number {
    return this.#endpointLagMs;
  }

  /** Stops the watches, closes every listener and resets every forwarded connection. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#lagged) clearTimeout(t);
    this.#lagged.clear();
    await this.#source.stop();
    const closing = [...this.#listeners.values()].map((l) => this.#closeListener(l));
    for (const f of [...this.#active]) {
      // Reset, not FIN: a cut connection must not look like a complete response.
      this.#fail(f, 'proxy-stopped', undefined);
      reset(f.client);
      reset(f.upstream);
    }
    await Promise.all(closing);
    this.#listeners.clear();
  }

  #apply(routes: NodePortRoute[]): void {
    if (this.#stopped) return;
    const next = new Map<number, RouteState>();
    for (const route of routes) {
      const prev = this.#routes.get(route.nodePort);
      const routable = routableBackends(route, this.#terminatingFallback);
      next.set(route.nodePort, { route, routable, next: prev?.next ?? 0 });
      if (!prev || fingerprint(prev.route, prev.routable) !== fingerprint(route, routable)) {
        this.#recordChange({
          at: Date.now(),
          atPerf: performance.now(),
          service: route.service,
          portName: route.portName,
          nodePort: route.nodePort,
          backends: route.backends,
          routable: routable.map(addr),
        });
      }
    }
    for (const [nodePort, prev] of this.#routes) {
      if (!next.has(nodePort)) {
        this.#recordChange({
          at: Date.now(),
          atPerf: performance.now(),
          service: prev.route.service,
          portName: prev.route.portName,
          nodePort,
          backends: [],
          routable: [],
          removed: true,
        });
      }
    }
    this.#routes = next;
    for (const [nodePort, listener] of this.#listeners) {
      if (!next.has(nodePort)) {
        this.#listeners.delete(nodePort);
        void this.#closeListener(listener);
      }
    }
    for (const [nodePort, state] of next) {
      if (!this.#listeners.has(nodePort)) this.#listen(nodePort, state.route.service);
    }
    this.#notifyWaiters();
  }

  #recordChange(change: EndpointChange): void {
    this.#history.push(change);
    this.#onEvent({ type: 'endpoints-changed', change });
  }

  #listen(nodePort: number, service: string): void {
    const servers = this.hosts.map(() =>
      createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (client) => this.#accept(nodePort, client)),
    );
    const listener: Listener = { nodePort, service, servers, listening: false, closed: false };
    this.#listeners.set(nodePort, listener);
    const bindOne = (server: Server, host: string) =>
      new Promise<NodeJS.ErrnoException | null>((resolve) => {
        const onError = (err: NodeJS.ErrnoException) => {
          server.off('listening', onListening);
          resolve(err);
        };
        const onListening = () => {
          server.off('error', onError);
          server.on('error', noop); // errors after bind (none expected) must not crash the process
          resolve(null);
        };
        server.once('error', onError);
        server.once('listening', onListening);
        server.listen({ host, port: nodePort, exclusive: true });
      });
    const bind = (async () => {
      const errors = await Promise.all(servers.map((server, i) => bindOne(server, this.hosts[i])));
      const err = errors.find((e) => e !== null);
      if (err) {
        // All addresses or none: close what did bind, and try the whole port again later.
        for (const [i, server] of servers.entries()) if (!errors[i]) server.close();
        this.#onEvent({
          type: 'listener-error',
          nodePort,
          service,
          error: err.code ?? err.message,
          retryInMs: this.#listenRetryMs,
        });
        listener.retry = setTimeout(() => {
          if (this.#stopped || listener.closed || this.#listeners.get(nodePort) !== listener) return;
          this.#listeners.delete(nodePort);
          this.#listen(nodePort, service);
        }, this.#listenRetryMs);
        return;
      }
      if (listener.closed) {
        for (const server of servers) server.close();
        return;
      }
      listener.listening = true;
      this.#onEvent({ type: 'listener-opened', nodePort, service });
      this.#notifyWaiters();
    })();
    this.#pendingBinds.add(bind);
    void bind.then(() => this.#pendingBinds.delete(bind));
  }

  async #closeListener(l: Listener): Promise<void> {
    if (l.closed) return;
    l.closed = true;
    clearTimeout(l.retry);
    const wasListening = l.listening;
    l.listening = false;
    if (!wasListening) return;
    // close() stops accepting at once; its callback waits for the connections already forwarded,
    // which keep going (kube-proxy keeps established conntrack entries too).
    const drained = Promise.all(l.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())))).then(
      () => {},
    );
    this.#onEvent({ type: 'listener-closed', nodePort: l.nodePort, service: l.service });
    await drained;
  }

  #accept(nodePort: number, client: Socket): void {
    const state = this.#routes.get(nodePort);
    const record: ConnectionRecord = {
      id: ++this.#nextId,
      service: state?.route.service ?? this.#listeners.get(nodePort)?.service ?? '',
      portName: state?.route.portName ?? '',
      nodePort,
      clientAddress: client.remoteAddress ?? '',
      clientPort: client.remotePort ?? 0,
      openedAt: Date.now(),
      openedAtPerf: performance.now(),
      bytesFromClient: 0,
      bytesToClient: 0,
    };
    this.#log.add(record);
    const backend = state && !this.#stopped ? this.#pick(state) : undefined;
    if (!backend) {
      client.on('error', noop);
      client.resetAndDestroy();
      record.outcome = 'no-ready-endpoint';
      record.closedAt = Date.now();
      record.closedAtPerf = performance.now();
      this.#onEvent({ type: 'connection-closed', connection: record });
      return;
    }
    record.backend = {
      ip: backend.ip,
      port: backend.port,
      ...(backend.podName ? { podName: backend.podName, podNamespace: backend.podNamespace } : {}),
      ready: backend.ready,
      terminating: backend.terminating,
    };
    this.#onEvent({ type: 'connection-opened', connection: record });

    const upstream = connect({ host: backend.ip, port: backend.port, allowHalfOpen: true, noDelay: true });
    const f: Forwarded = { client, upstream, record };
    this.#active.add(f);
    let connected = false;
    client.on('error', (err: NodeJS.ErrnoException) => {
      this.#fail(f, 'client-error', err);
      reset(upstream);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      // No retry on another endpoint: the client sees the failure, as with kube-proxy.
      this.#fail(f, connected ? 'backend-error' : 'backend-connect-failed', err);
      reset(client);
    });
    upstream.once('connect', () => {
      connected = true;
      record.backendConnectedAtPerf = performance.now();
      forward(client, upstream);
      forward(upstream, client);
      client.resume();
    });
    let open = 2;
    const onClose = () => {
      if (--open > 0) return;
      this.#active.delete(f);
      record.bytesFromClient = client.bytesRead;
      record.bytesToClient = client.bytesWritten;
      record.outcome ??= 'completed';
      record.closedAt = Date.now();
      record.closedAtPerf = performance.now();
      this.#onEvent({ type: 'connection-closed', connection: record });
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
  }

  #pick(state: RouteState): Backend | undefined {
    const list = state.routable;
    if (list.length === 0) return undefined;
    const b = list[state.next % list.length];
    state.next = (state.next + 1) % list.length;
    return b;
  }

  /** The first failure decides the outcome. */
  #fail(f: Forwarded, outcome: ConnectionOutcome, err: NodeJS.ErrnoException | undefined): void {
    if (f.record.outcome) return;
    f.record.outcome = outcome;
    if (err) f.record.error = err.code ?? err.message;
  }

  #notifyWaiters(): void {
    for (const w of [...this.#waiters]) w();
  }
}

/**
 * Copies `from` to `to` with back-pressure and passes the FIN on (half-close), like pipe() with
 * less per-chunk machinery. Errors are handled by the caller.
 */
function forward(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.once('end', () => {
    if (!to.destroyed) to.end();
  });
}

/** Sends a TCP reset (RST) where possible, so the peer sees the failure as a failure. */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting || socket.pending) socket.destroy();
  else socket.resetAndDestroy();
}

function addr(b: Backend): string {
  return `${b.ip}:${b.port}`;
}

function fingerprint(route: NodePortRoute, routable: Backend[]): string {
  return JSON.stringify([route.service, route.portName, route.backends, routable.map(addr)]);
}
