import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProbeWorker, type ProbeTarget } from './probe.ts';

// The node agent's probe schedule against a real HTTP server on loopback: the kubelet's periodic
// ticks, and its manual run of the readiness probe once a container has started.
let server: Server;
const hits: Array<{ path: string; at: number }> = [];
let target: ProbeTarget;

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push({ path: req.url ?? '', at: Date.now() });
    res.writeHead(200).end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  target = { ip: '127.0.0.1', ports: new Map([['http', port]]), wrap: (argv) => argv };
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const readinessProbe = (path: string, initialDelaySeconds = 0) => ({
  httpGet: { path, port: 'http' },
  periodSeconds: 5,
  initialDelaySeconds,
});

describe('ProbeWorker.trigger (the kubelet manual readiness run)', () => {
  it('probes at once when triggered after start-up, instead of at the next period tick', async () => {
    let started = false;
    let readyAt = 0;
    const w = new ProbeWorker(
      'readiness',
      readinessProbe('/ready-now'),
      target,
      (_k, ok) => {
        if (ok) readyAt = Date.now();
      },
      () => started,
    );
    w.start(); // the first tick comes at once and is skipped: not started yet
    await new Promise((r) => setTimeout(r, 300));
    expect(hits.filter((h) => h.path === '/ready-now')).toHaveLength(0);
    started = true;
    const triggeredAt = Date.now();
    w.trigger();
    await new Promise((r) => setTimeout(r, 1500));
    w.stop();
    // Without the manual run the next tick would be 5 s after start: ready 4.7 s later.
    expect(readyAt).toBeGreaterThan(0);
    expect(readyAt - triggeredAt).toBeLessThan(1500);
    expect(w.result).toBe(true);
  });

  it('does not probe before initialDelaySeconds, as the kubelet skips the attempt', async () => {
    const w = new ProbeWorker('readiness', readinessProbe('/ready-delayed', 3), target, () => {});
    w.start();
    await new Promise((r) => setTimeout(r, 200));
    w.trigger();
    await new Promise((r) => setTimeout(r, 1000));
    expect(hits.filter((h) => h.path === '/ready-delayed')).toHaveLength(0);
    w.stop();
  });

  it('a trigger during a probe in flight runs one more probe right after it, never two at once', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const slow = createServer((req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200).end('ok');
      }, 400);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const port = (slow.address() as AddressInfo).port;
    let probes = 0;
    const w = new ProbeWorker(
      'readiness',
      { httpGet: { path: '/', port }, periodSeconds: 10, timeoutSeconds: 2 },
      target,
      () => {},
    );
    slow.on('request', () => probes++);
    w.start();
    await new Promise((r) => setTimeout(r, 100));
    w.trigger();
    w.trigger();
    await new Promise((r) => setTimeout(r, 1200));
    w.stop();
    await new Promise<void>((r) => slow.close(() => r()));
    expect(maxInFlight).toBe(1);
    expect(probes).toBe(2);
  });
});
