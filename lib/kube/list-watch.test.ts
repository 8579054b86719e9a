import { KubeConfig, type V1Service } from '@kubernetes/client-node';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ListWatch } from './list-watch.ts';

// The reflector's recovery paths (server-ended watch, 410 Gone, HTTP errors, stop during a watch)
// are hard to provoke on a real apiserver on demand, so they are driven here by a scripted HTTP
// server on loopback that speaks the list/watch wire format. The happy path against the real
// apiserver is covered by service-proxy.cluster.test.ts.

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function scriptedApiserver(handlers: Handler[]) {
  const requests: string[] = [];
  const open = new Set<ServerResponse>();
  let i = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${url.searchParams.get('watch') ? 'watch' : 'list'} rv=${url.searchParams.get('resourceVersion') ?? ''}`);
    open.add(res);
    res.on('close', () => open.delete(res));
    const h = handlers[Math.min(i++, handlers.length - 1)];
    h(req, res, url);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  cleanups.push(() => {
    for (const r of open) r.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { kc, requests, open };
}

const svc = (name: string, rv: string): V1Service => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });
const list =
  (rv: string, items: V1Service[]): Handler =>
  (_q, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ metadata: { resourceVersion: rv }, items }));
  };
const events =
  (evs: { type: string; object: unknown }[], end = true): Handler =>
  (_q, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    for (const e of evs) res.write(`${JSON.stringify(e)}\n`);
    if (end) res.end();
  };
const status =
  (code: number): Handler =>
  (_q, res) => {
    res.writeHead(code);
    res.end('{}');
  };

function listWatchOver(kc: KubeConfig, listCalls: { n: number }, errors: string[], changes: { n: number }, objects?: string[]) {
  return new ListWatch<V1Service>({
    kubeConfig: kc,
    path: '/api/v1/services',
    list: async () => {
      listCalls.n++;
      const cluster = kc.getCurrentCluster()!;
      const r = await fetch(`${cluster.server}/api/v1/services`);
      if (!r.ok) throw new Error(`list: HTTP ${r.status}`);
      return (await r.json()) as { items: V1Service[]; metadata: { resourceVersion: string } };
    },
    onChange: () => {
      changes.n++;
    },
    onObject: objects ? (c) => objects.push(`${c.type} ${c.object.metadata?.name}${c.fromRelist ? ' (relist)' : ''}`) : undefined,
    onError: (e, retry) => errors.push(`${String(e)} retry=${retry}`),
    backoffMs: 50,
    timeoutSeconds: 5,
  });
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ListWatch (reflector)', () => {
  it('lists, applies watch events, resumes from the last resourceVersion, and re-lists after 410 Gone and HTTP errors', async () => {
    const { kc, requests } = await scriptedApiserver([
      list('10', [svc('a', '5')]),
      events([
        { type: 'ADDED', object: svc('b', '11') },
        { type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } },
      ]), // server ends the watch
      events(
        [
          { type: 'DELETED', object: svc('a', '13') },
          { type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } },
        ],
        false,
      ),
      list('20', [svc('b', '11'), svc('c', '19')]),
      status(500),
      list('30', [svc('c', '19'), svc('d', '29')]),
      events([], false), // stays open until stop()
    ]);
    const listCalls = { n: 0 };
    const errors: string[] = [];
    const changes = { n: 0 };
    const objects: string[] = [];
    const lw = listWatchOver(kc, listCalls, errors, changes, objects);
    cleanups.push(() => lw.stop());
    await lw.start(5000);
    await until(() => requests.length >= 7, 'the scripted sequence');
    await until(() => lw.items().some((s) => s.metadata?.name === 'd'), 'the last list to be applied');
    expect(requests).toEqual(['list rv=', 'watch rv=10', 'watch rv=12', 'list rv=', 'watch rv=20', 'list rv=', 'watch rv=30']);
    expect(
      lw
        .items()
        .map((s) => s.metadata?.name ?? '')
        .sort(),
    ).toEqual(['c', 'd']);
    expect(listCalls.n).toBe(3);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/too old resource version retry=0/); // 410: re-list at once
    expect(errors[1]).toMatch(/retry=50$/); // HTTP 500: back off
    // Every change is reported once, also those only a re-list could see (c appeared and b
    // vanished while no watch was open); the first list reports nothing.
    expect(objects).toEqual(['ADDED b', 'DELETED a', 'ADDED c (relist)', 'ADDED d (relist)', 'DELETED b (relist)']);
  });

  it('start() rejects when no list succeeds in time; stop() ends an open watch', async () => {
    const failing = await scriptedApiserver([status(503)]);
    const lw1 = listWatchOver(failing.kc, { n: 0 }, [], { n: 0 });
    await expect(lw1.start(500)).rejects.toThrow(/no successful list of \/api\/v1\/services within 500 ms: list: HTTP 503/);

    const open = await scriptedApiserver([list('1', []), events([], false)]);
    const lw2 = listWatchOver(open.kc, { n: 0 }, [], { n: 0 });
    await lw2.start(5000);
    await until(() => open.open.size === 1, 'the watch to be open');
    const t0 = Date.now();
    await lw2.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    await until(() => open.open.size === 0, 'the server to see the watch closed');
  });

  it('a spell of errors ends with onResynced (since, errors, what the re-list found changed) and waits as `backoff` says', async () => {
    // The apiserver goes away (a refused connection, then 503s), and comes back with one object changed.
    const { kc } = await scriptedApiserver([
      list('10', [svc('a', '5'), svc('b', '6')]),
      status(503), // the watch fails
      status(503), // the re-list fails
      status(503),
      list('20', [svc('a', '15'), svc('b', '6')]),
      events([], false),
    ]);
    const waits: number[] = [];
    const backoff = { next: () => (waits.push(waits.length + 1), 5 * waits.length) };
    const gaps: Array<{ since: number; errors: number; changed: number; at: number }> = [];
    const objects: string[] = [];
    const errors: string[] = [];
    const lw = new ListWatch<V1Service>({
      kubeConfig: kc,
      path: '/api/v1/services',
      list: async () => {
        const r = await fetch(`${kc.getCurrentCluster()!.server}/api/v1/services`);
        if (!r.ok) throw new Error(`list: HTTP ${r.status}`);
        return (await r.json()) as { items: V1Service[]; metadata: { resourceVersion: string } };
      },
      onChange: () => {},
      onObject: (c) => objects.push(`${c.type} ${c.object.metadata?.name}${c.fromRelist ? ' (relist)' : ''}`),
      onError: (e, retry) => errors.push(`${String(e)} retry=${retry}`),
      onResynced: (g) => gaps.push(g),
      backoff,
      timeoutSeconds: 5,
    });
    cleanups.push(() => lw.stop());
    const t0 = Date.now();
    await lw.start(5000);
    await until(() => gaps.length === 1, 'the re-list after the errors');
    expect(gaps[0].errors).toBe(3);
    expect(gaps[0].changed).toBe(1);
    expect(gaps[0].since).toBeGreaterThanOrEqual(t0);
    expect(gaps[0].at).toBeGreaterThanOrEqual(gaps[0].since);
    expect(objects).toEqual(['MODIFIED a (relist)']);
    // The waits came from the given back-off, not from backoffMs.
    expect(errors.map((e) => e.replace(/.* retry=/, ''))).toEqual(['5', '10', '15']);
  });
});
