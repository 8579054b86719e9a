import { describe, expect, it } from 'vitest';
import { mintToken, spawnApi, type ApiProcess } from '../../license-api/test/harness.ts';
import { freshDatabase } from '../../test/databases.ts';
import { freePort } from '../../lib/net/free-port.ts';
import { startLoad } from '../../lib/load/engine.ts';
import { joinLedger } from '../../lib/evidence/join.ts';
import { Timeline } from '../../lib/evidence/timeline.ts';
import { ServiceProxy } from '../../cluster/embedded/proxy/service-proxy.ts';
import type { EndpointSource } from '../../cluster/embedded/proxy/endpoint-source.ts';
import type { Backend, NodePortRoute } from '../../cluster/embedded/proxy/node-port-routes.ts';
import { idleClientsFor, IDLE_CLIENT_POOL, licenseFlow, requestsPerIteration, type LicenseFlowOptions } from './load-scenario.ts';
import { FAULTS } from './profile.ts';

/** Routes set by the test, as the endpoint controller would set them. */
class HandDrivenEndpoints implements EndpointSource {
  #on: ((r: NodePortRoute[]) => void) | undefined;
  #routes: NodePortRoute[];
  constructor(routes: NodePortRoute[]) {
    this.#routes = routes;
  }
  async start(on: (r: NodePortRoute[]) => void) {
    this.#on = on;
    on(this.#routes);
  }
  async stop() {}
  set(routes: NodePortRoute[]) {
    this.#routes = routes;
    this.#on?.(routes);
  }
}

/**
 * A pod kill under the license API's load, on loopback: three license API processes behind the
 * embedded cluster's Service proxy (its 1.1 s data-plane lag, endpoints set by hand as the
 * endpoint controller would), one of them SIGTERMed mid-run. Returns the joined load.
 */
async function podKillUnderLoad(env: Record<string, string>) {
  const db = await freshDatabase('keepalive');
  const common = { DATABASE_URL: db, LICENSE_SEED: 'LOAD-KEY=100000', LOG_LEVEL: 'warn', KEEPALIVE_TIMEOUT_MS: '620000', ...env };
  const pods: ApiProcess[] = await Promise.all(
    ['a', 'b', 'c'].map((n) => spawnApi({ ...common, POD_NAME: `pod-${n}`, APP_VERSION: 'v1' })),
  );
  const nodePort = await freePort();
  const backend = (i: number, terminating = false): Backend => ({
    ip: '127.0.0.1',
    port: pods[i].port,
    podName: `pod-${'abc'[i]}`,
    podNamespace: 'coditect',
    ready: !terminating,
    serving: true,
    terminating,
  });
  const route = (b: Backend[]): NodePortRoute => ({ nodePort, service: 'coditect/license-api', portName: 'http', backends: b });
  const endpoints = new HandDrivenEndpoints([route([backend(0), backend(1), backend(2)])]);
  const proxy = await ServiceProxy.start({ endpointSource: endpoints, endpointLagMs: 1100 });
  try {
    const url = `http://127.0.0.1:${nodePort}`;
    const token = await mintToken();
    const sessions: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${url}/api/v1/licenses/acquire`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ license_key: 'LOAD-KEY', hardware_id: `held-${i}` }),
      });
      sessions.push(((await r.json()) as { session_id: string }).session_id);
    }
    const rate = 200;
    const o: LicenseFlowOptions = { token, licenseKey: 'LOAD-KEY', sessions, heartbeatWeight: 9 };
    o.idleClients = idleClientsFor(rate, o);
    const load = await startLoad({
      url,
      scenario: licenseFlow(o),
      executor: { executor: 'constant-arrival-rate', rate: rate / requestsPerIteration(o), duration: '10s', maxVUs: 2000 },
      identityHeaders: { backend: 'x-served-by', version: 'x-app-version' },
      thresholds: { http_req_failed: ['rate<=1'] },
      minRequests: 0,
    });
    await new Promise((r) => setTimeout(r, 3000));
    // pod-a is deleted: SIGTERM, and its endpoint turns terminating (not ready) at once.
    pods[0].child.kill('SIGTERM');
    endpoints.set([route([backend(0, true), backend(1), backend(2)])]);
    const result = await load.result;
    return { idle: o.idleClients, joined: joinLedger(result.ledger, { timeline: new Timeline() }), result };
  } finally {
    await proxy.stop();
    for (const p of pods) p.child.kill('SIGKILL');
    await Promise.all(pods.map((p) => p.exit));
  }
}

// The idle keep-alive clients of the license load, against the drain fault: a drain that keeps
// connections alive (no Connection: close) closes the idle clients' connections under them; the
// shipped drain tells each of them to reconnect first (their idle time, 2 s, is well below its 3 s).
describe('idle keep-alive clients and the drain', () => {
  it("a drain without Connection: close fails the idle clients' next requests, on reused connections", async () => {
    const { idle, joined } = await podKillUnderLoad(FAULTS['keepalive-drain'].env!);
    expect(idle.connections).toBeGreaterThanOrEqual(25);
    expect(joined.failed).toBeGreaterThan(3);
    const idleClientFailures = joined.failures.filter((f) => f.step === 'heartbeat-idle-client');
    expect(idleClientFailures.length).toBeGreaterThan(3);
    for (const f of idleClientFailures) {
      expect(f.connection).toBe('reused');
      expect(f.connectionAgeMs).toBeGreaterThan(2000); // a connection kept alive from before the kill
      expect(f.error).toMatch(/other_side_closed|conn_reset/);
    }
    expect(joined.byConnection.reused.failed).toBeGreaterThanOrEqual(idleClientFailures.length);
  }, 120_000);

  it("the shipped drain (Connection: close) loses no request, the idle clients' included", async () => {
    const { joined, result } = await podKillUnderLoad({});
    expect(joined.failures).toEqual([]);
    expect(joined.total).toBeGreaterThan(1500);
    expect(result.summary.byName['heartbeat-idle-client'].requests).toBeGreaterThan(100);
    expect(result.summary.run.connections).toBeGreaterThan(32); // the idle pool beside the main one
    expect(IDLE_CLIENT_POOL).toBe('idle-keep-alive-clients');
  }, 120_000);
});
