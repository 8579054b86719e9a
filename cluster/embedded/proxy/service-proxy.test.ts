import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../lib/net/free-port.ts';
import type { EndpointSource } from './endpoint-source.ts';
import type { Backend, NodePortRoute } from './node-port-routes.ts';
import { ServiceProxy, type ProxyEvent } from './service-proxy.ts';

// The proxy against a hand-driven endpoint source and real sockets on loopback. The same proxy
// against the real control plane and pod namespaces is in service-proxy.cluster.test.ts.

class ManualEndpointSource implements EndpointSource {
  #onRoutes: ((r: NodePortRoute[]) => void) | undefined;
  #routes: NodePortRoute[];
  stopped = false;
  constructor(routes: NodePortRoute[]) {
    this.#routes = routes;
  }
  async start(onRoutes: (r: NodePortRoute[]) => void) {
    this.#onRoutes = onRoutes;
    onRoutes(this.#routes);
  }
  async stop() {
    this.stopped = true;
  }
  set(routes: NodePortRoute[]) {
    this.#routes = routes;
    this.#onRoutes?.(routes);
  }
}

/** A TCP backend that greets with its name, then echoes; counts the connections it accepted. */
interface EchoBackend {
  name: string;
  port: number;
  accepted: number;
  sockets: Set<Socket>;
  server: Server;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function echoBackend(name: string): Promise<EchoBackend> {
  const b: EchoBackend = { name, port: 0, accepted: 0, sockets: new Set(), server: createServer() };
  b.server.on('connection', (s) => {
    b.accepted++;
    b.sockets.add(s);
    s.on('close', () => b.sockets.delete(s));
    s.on('error', () => {});
    s.write(`${name}\n`);
    s.pipe(s);
  });
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', r));
  b.port = (b.server.address() as { port: number }).port;
  cleanups.push(() => {
    for (const s of b.sockets) s.destroy();
    return new Promise<void>((r) => b.server.close(() => r()));
  });
  return b;
}

const backend = (b: { port: number; name?: string }, cond: Partial<Backend> = {}): Backend => ({
  ip: '127.0.0.1',
  port: b.port,
  podName: b.name,
  podNamespace: 'ns',
  ready: true,
  serving: true,
  terminating: false,
  ...cond,
});

const route = (nodePort: number, backends: Backend[]): NodePortRoute => ({
  nodePort,
  service: 'ns/api',
  portName: 'http',
  backends,
});

async function startProxy(
  routes: NodePortRoute[],
  extra: { terminatingFallback?: boolean; maxConnectionRecords?: number; endpointLagMs?: number; hosts?: string[] } = {},
) {
  const source = new ManualEndpointSource(routes);
  const events: ProxyEvent[] = [];
  const proxy = await ServiceProxy.start({
    endpointSource: source,
    onEvent: (e) => events.push(e),
    listenRetryMs: 100,
    ...extra,
  });
  cleanups.push(() => proxy.stop());
  return { proxy, source, events };
}

interface Client {
  socket: Socket;
  localPort: number;
  greeting: Promise<string>;
  ended: Promise<{ error?: string; data: string }>;
}

/** Connects to 127.0.0.1:port; `greeting` is the first line, `ended` resolves on close with the error code if any. */
function client(port: number, host = '127.0.0.1'): Client {
  const socket = connect({ host, port, allowHalfOpen: true });
  cleanups.push(() => {
    socket.destroy();
  });
  let data = '';
  let error: string | undefined;
  socket.on('data', (d: Buffer) => {
    data += d.toString();
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? e.message;
  });
  socket.on('end', () => socket.end()); // half-close allowed, but finish once the other side has
  const ended = new Promise<{ error?: string; data: string }>((r) => socket.once('close', () => r({ error, data })));
  const greeting = new Promise<string>((resolve, reject) => {
    const check = () => {
      const i = data.indexOf('\n');
      if (i >= 0) {
        socket.off('data', check);
        resolve(data.slice(0, i));
      }
    };
    socket.on('data', check);
    socket.once('close', () => reject(new Error(`closed before a greeting (error ${error})`)));
  });
  greeting.catch(() => {});
  const c: Client = { socket, localPort: 0, greeting, ended };
  socket.once('connect', () => {
    c.localPort = socket.localPort ?? 0;
  });
  return c;
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('ServiceProxy (hand-driven endpoints, loopback backends)', () => {
  it('forwards round robin to ready endpoints only and records which backend served each connection', async () => {
    const [a, b, c] = await Promise.all([echoBackend('pod-a'), echoBackend('pod-b'), echoBackend('pod-c')]);
    const nodePort = await freePort();
    const { proxy } = await startProxy([route(nodePort, [backend(a), backend(b), backend(c, { ready: false, serving: false })])]);
    expect(proxy.listeningPorts()).toEqual([nodePort]);

    const served: string[] = [];
    for (let i = 0; i < 6; i++) {
      const cl = client(nodePort);
      served.push(await cl.greeting);
      cl.socket.end('ping');
      const { data, error } = await cl.ended;
      expect(error).toBeUndefined();
      expect(data).toBe(`${served[i]}\nping`);
      const rec = proxy.lookup(cl.localPort);
      expect(rec).toMatchObject({
        service: 'ns/api',
        portName: 'http',
        nodePort,
        clientAddress: '127.0.0.1',
        clientPort: cl.localPort,
        outcome: 'completed',
        bytesFromClient: 4,
      });
      expect(rec!.backend).toMatchObject({ ip: '127.0.0.1', podName: served[i], podNamespace: 'ns', ready: true });
      expect(rec!.bytesToClient).toBe(`${served[i]}\nping`.length);
      expect(rec!.closedAtPerf!).toBeGreaterThan(rec!.openedAtPerf);
    }
    expect(served).toEqual(['pod-a', 'pod-b', 'pod-a', 'pod-b', 'pod-a', 'pod-b']);
    expect(c.accepted).toBe(0);
    expect(proxy.connections().map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('listens on every address it is given (loopback for the harness, the pod gateway for pods), each port on all or none', async () => {
    const [a, b] = await Promise.all([echoBackend('pod-a'), echoBackend('pod-b')]);
    const nodePort = await freePort();
    // 127.0.0.2 stands in for the pod network's gateway: another local address.
    const { proxy } = await startProxy([route(nodePort, [backend(a), backend(b)])], { hosts: ['127.0.0.1', '127.0.0.2'] });
    expect(proxy.hosts).toEqual(['127.0.0.1', '127.0.0.2']);
    const one = client(nodePort, '127.0.0.1');
    const two = client(nodePort, '127.0.0.2');
    expect([await one.greeting, await two.greeting].sort()).toEqual(['pod-a', 'pod-b']);
    expect(proxy.connections().map((r) => r.nodePort)).toEqual([nodePort, nodePort]);

    // A port that one address cannot bind is bound on none, and retried until it can be.
    const busyPort = await freePort();
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(busyPort, '127.0.0.2', r));
    const { proxy: p2, events } = await startProxy([route(busyPort, [backend(a)])], { hosts: ['127.0.0.1', '127.0.0.2'] });
    expect(p2.listeningPorts()).toEqual([]);
    expect(events.some((e) => e.type === 'listener-error' && e.nodePort === busyPort)).toBe(true);
    const refused = client(busyPort, '127.0.0.1');
    expect((await refused.ended).error).toBe('ECONNREFUSED');
    await new Promise<void>((r) => squatter.close(() => r()));
    await p2.waitForRoute(busyPort);
    expect(await client(busyPort, '127.0.0.2').greeting).toBe('pod-a');
  });

  it('stops sending new connections to an endpoint that turns not-ready, without cutting established ones', async () => {
    const [a, b] = await Promise.all([echoBackend('pod-a'), echoBackend('pod-b')]);
    const nodePort = await freePort();
    const { proxy, source } = await startProxy([route(nodePort, [backend(a), backend(b)])]);
    const long = client(nodePort);
    expect(await long.greeting).toBe('pod-a');

    source.set([route(nodePort, [backend(a, { ready: false, serving: true, terminating: true }), backend(b)])]);
    const history = proxy.endpointHistory();
    expect(history.map((h) => h.routable)).toEqual([[`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`], [`127.0.0.1:${b.port}`]]);
    expect(history[1].atPerf).toBeGreaterThanOrEqual(history[0].atPerf);

    for (let i = 0; i < 4; i++) {
      const cl = client(nodePort);
      expect(await cl.greeting).toBe('pod-b');
      cl.socket.destroy();
    }
    expect(a.accepted).toBe(1);
    // The established connection to pod-a still works both ways.
    long.socket.write('still there?');
    await until(() => a.sockets.size === 1 && [...a.sockets][0].bytesRead >= 12, 'pod-a to receive');
    long.socket.end();
    expect((await long.ended).data).toBe('pod-a\nstill there?');
  });

  it('with an endpoint lag, applies each change only after the lag, in both directions, as a real data plane does', async () => {
    const [a, b] = await Promise.all([echoBackend('pod-a'), echoBackend('pod-b')]);
    const nodePort = await freePort();
    const { proxy, source } = await startProxy([route(nodePort, [backend(a), backend(b)])], { endpointLagMs: 1500 });
    expect(proxy.endpointLagMs).toBe(1500);
    const greet = async () => {
      const cl = client(nodePort);
      const g = await cl.greeting;
      cl.socket.destroy();
      return g;
    };
    // pod-a is withdrawn: for the lag it still gets new connections (round robin), then never.
    const withdrawnAt = Date.now();
    source.set([route(nodePort, [backend(a, { ready: false, serving: true, terminating: true }), backend(b)])]);
    const early = [await greet(), await greet()];
    expect(Date.now() - withdrawnAt).toBeLessThan(1500); // still inside the lag, else this check says nothing
    expect(early.sort()).toEqual(['pod-a', 'pod-b']);
    await until(() => proxy.endpointHistory().length === 2, 'the withdrawal to be applied');
    expect(Date.now() - withdrawnAt).toBeGreaterThanOrEqual(1495);
    expect([await greet(), await greet(), await greet()]).toEqual(['pod-b', 'pod-b', 'pod-b']);
    // pod-a comes back: not routed before the lag has passed either.
    source.set([route(nodePort, [backend(a), backend(b)])]);
    expect(proxy.routes()[0].routable.map((r) => r.podName)).toEqual(['pod-b']);
    await until(() => proxy.endpointHistory().length === 3, 'the addition to be applied');
    expect(proxy.routes()[0].routable.map((r) => r.podName)).toEqual(['pod-a', 'pod-b']);
  });

  it('resets the client when the chosen backend refuses, and does not retry another backend', async () => {
    const b = await echoBackend('pod-b');
    const deadPort = await freePort(); // nothing listens here
    const nodePort = await freePort();
    const { proxy, events } = await startProxy([route(nodePort, [backend({ port: deadPort, name: 'pod-dead' }), backend(b)])]);
    const cl = client(nodePort);
    const { error, data } = await cl.ended;
    expect(error).toBe('ECONNRESET');
    expect(data).toBe('');
    expect(b.accepted).toBe(0); // no retry on pod-b
    const rec = proxy.lookup(cl.localPort)!;
    expect(rec).toMatchObject({
      outcome: 'backend-connect-failed',
      error: 'ECONNREFUSED',
      backend: { podName: 'pod-dead', port: deadPort },
    });
    expect(
      events.filter((e) => e.type === 'connection-closed').map((e) => (e as { connection: { id: number } }).connection.id),
    ).toEqual([rec.id]);
    // The next connection takes the next endpoint in turn.
    expect(await client(nodePort).greeting).toBe('pod-b');
  });

  it('passes a backend reset on to the client as a reset', async () => {
    const a = await echoBackend('pod-a');
    const nodePort = await freePort();
    const { proxy } = await startProxy([route(nodePort, [backend(a)])]);
    const cl = client(nodePort);
    await cl.greeting;
    await until(() => a.sockets.size === 1, 'backend socket');
    [...a.sockets][0].resetAndDestroy();
    expect((await cl.ended).error).toBe('ECONNRESET');
    await until(() => proxy.activeConnections === 0, 'proxy to close both sides');
    expect(proxy.lookup(cl.localPort)).toMatchObject({ outcome: 'backend-error', error: 'ECONNRESET' });
  });

  it('resets connections while no endpoint is routable; falls back to serving+terminating ones like kube-proxy unless told not to', async () => {
    const t = await echoBackend('pod-terminating');
    const p1 = await freePort();
    const p2 = await freePort();
    const terminating = backend(t, { ready: false, serving: true, terminating: true });
    const notServing = backend({ port: 1, name: 'pod-unready' }, { ready: false, serving: false });
    const { proxy } = await startProxy([route(p1, [notServing]), route(p2, [terminating])]);

    // Reset right after the accept: the client sees ECONNRESET, often before 'connect' (so no local port).
    const rejected = client(p1);
    expect((await rejected.ended).error).toBe('ECONNRESET');
    expect(proxy.connections().at(-1)).toMatchObject({ nodePort: p1, outcome: 'no-ready-endpoint' });
    expect(proxy.connections().at(-1)!.backend).toBeUndefined();

    const fallback = client(p2);
    expect(await fallback.greeting).toBe('pod-terminating');
    expect(proxy.lookup(fallback.localPort)!.backend).toMatchObject({ ready: false, terminating: true });
    fallback.socket.destroy();
    await proxy.stop();

    const p3 = await freePort();
    const { proxy: noFallback } = await startProxy([route(p3, [terminating])], { terminatingFallback: false });
    const refused = client(p3);
    expect((await refused.ended).error).toBe('ECONNRESET');
    expect(noFallback.connections().at(-1)).toMatchObject({ nodePort: p3, outcome: 'no-ready-endpoint' });
    expect(t.accepted).toBe(1);
  });

  it('opens and closes listeners as node ports come and go, retrying a port that is taken', async () => {
    const a = await echoBackend('pod-a');
    const taken = await freePort();
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(taken, '127.0.0.1', r));
    const { proxy, source, events } = await startProxy([]);
    expect(proxy.listeningPorts()).toEqual([]);

    source.set([route(taken, [backend(a)])]);
    await until(() => events.some((e) => e.type === 'listener-error' && e.nodePort === taken), 'a listener error');
    expect(proxy.listeningPorts()).toEqual([]);
    await new Promise<void>((r) => squatter.close(() => r()));
    await proxy.waitForRoute(taken, undefined, 3000);
    expect(await client(taken).greeting).toBe('pod-a');

    source.set([]);
    expect(proxy.listeningPorts()).toEqual([]);
    expect((await client(taken).ended).error).toBe('ECONNREFUSED');
    expect(proxy.endpointHistory().at(-1)).toMatchObject({ nodePort: taken, removed: true, routable: [] });
  });

  it('keeps a bounded connection record', async () => {
    const a = await echoBackend('pod-a');
    const nodePort = await freePort();
    const { proxy } = await startProxy([route(nodePort, [backend(a)])], { maxConnectionRecords: 3 });
    const ports: number[] = [];
    for (let i = 0; i < 5; i++) {
      const cl = client(nodePort);
      await cl.greeting;
      ports.push(cl.localPort);
      cl.socket.destroy();
      await cl.ended;
    }
    expect(proxy.connections().map((r) => r.id)).toEqual([3, 4, 5]);
    expect(proxy.droppedConnectionRecords).toBe(2);
    expect(proxy.lookup(ports[0])).toBeUndefined();
    expect(proxy.lookup(ports[4])?.id).toBe(5);
  });

  it('stop() cuts forwarded connections, closes every listener and stops the source', async () => {
    const a = await echoBackend('pod-a');
    const [p1, p2] = [await freePort(), await freePort()];
    const { proxy, source } = await startProxy([route(p1, [backend(a)]), route(p2, [])]);
    const open = client(p1);
    await open.greeting;
    await proxy.stop();
    expect(source.stopped).toBe(true);
    expect(await open.ended).toEqual({ data: 'pod-a\n', error: 'ECONNRESET' });
    expect(proxy.lookup(open.localPort)).toMatchObject({ outcome: 'proxy-stopped' });
    expect(proxy.listeningPorts()).toEqual([]);
    expect(proxy.activeConnections).toBe(0);
    for (const p of [p1, p2]) expect((await client(p).ended).error).toBe('ECONNREFUSED');
    await until(() => a.sockets.size === 0, 'backend side to close');
    await proxy.stop(); // idempotent
  });
});
