import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { JoinedFailure } from '../lib/evidence/join.ts';
import type { DependencyCheck } from './app-profile.ts';
import { staleConnectionGate, sweepPod, type PodSweep } from './stale-connections.ts';

/**
 * A pod on loopback whose pool of connections comes back from an outage: for `downMs` every
 * answer is 503 (the dependency away), then each of `dead` pooled connections fails the first
 * request that draws it (a stale connection the pool never noticed), the rest answer 404 (a lookup
 * that found nothing: the dependency answered).
 */
async function pod(o: { downMs: number; dead: number }) {
  const t0 = Date.now();
  let dead = o.dead;
  let inUse = 0;
  const server = createServer((_req, res) => {
    if (Date.now() - t0 < o.downMs) return void res.writeHead(503).end();
    // Requests in flight draw distinct connections (LIFO: the warm one first, the dead ones under load).
    inUse++;
    const stale = inUse > 1 && dead > 0 ? (dead--, true) : false;
    setTimeout(() => {
      inUse--;
      res.writeHead(stale ? 503 : 404).end();
    }, 20);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    t0,
    [Symbol.asyncDispose]: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const check: DependencyCheck = {
  burst: 20,
  async ask(baseUrl) {
    const r = await fetch(`${baseUrl}/release`, { method: 'POST' });
    await r.body?.cancel();
    return r.status === 404 ? null : `HTTP ${r.status}`;
  },
};

describe('the stale-connection sweep after an outage', () => {
  it('a pod that reaches the dependency again but kept dead pooled connections: the burst draws them, FAIL "a stale pooled connection"', async () => {
    await using p = await pod({ downMs: 300, dead: 3 });
    const s = await sweepPod({ name: 'a', baseUrl: p.baseUrl }, check, Date.now() + 5000, AbortSignal.timeout(10_000));
    expect(s.recoveredAt).not.toBeNull();
    expect(s.recoveredAt! - p.t0).toBeGreaterThanOrEqual(300);
    expect([s.answers, s.failures]).toEqual([20, ['HTTP 503', 'HTTP 503', 'HTTP 503']]);
    const g = staleConnectionGate('postgres', { to: p.t0, steps: ['acquire'] }, [s], [], 10_000);
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(
      /^a stale pooled connection: pod a reached postgres again .* then 3 of 20 concurrent requests failed \(HTTP 503\)/,
    );
  });

  it('a pod whose pool replaced every dead connection PASSes, saying when each pod was swept', async () => {
    await using p = await pod({ downMs: 200, dead: 0 });
    const s = await sweepPod({ name: 'a', baseUrl: p.baseUrl }, check, Date.now() + 5000, AbortSignal.timeout(10_000));
    const g = staleConnectionGate('postgres', { to: p.t0, steps: ['acquire'] }, [s], [], 10_000);
    expect(g.verdict).toBe('PASS');
    expect(g.observed?.detect_ms).toBeGreaterThanOrEqual(200);
  });

  it('a pod that never reaches it again before the deadline FAILs; no pod swept is INCONCLUSIVE', async () => {
    await using p = await pod({ downMs: 60_000, dead: 0 });
    const s = await sweepPod({ name: 'a', baseUrl: p.baseUrl }, check, Date.now() + 600, AbortSignal.timeout(10_000));
    expect(s.recoveredAt).toBeNull();
    expect(staleConnectionGate('postgres', { to: p.t0, steps: [] }, [s], [], 600)).toMatchObject({
      verdict: 'FAIL',
      evidence: expect.stringMatching(/did not reach postgres again within 0\.6 s/),
    });
    expect(staleConnectionGate('postgres', { to: p.t0, steps: [] }, [], [], 600).verdict).toBe('INCONCLUSIVE');
  });

  it("the load's requests: a 5xx from a pod after it had recovered, for a step that needs the dependency, is a stale connection; before its recovery it is not", () => {
    const swept: PodSweep = { pod: 'a', recoveredAt: 1000, sweptAt: 1100, answers: 20, failures: [] };
    const f = (at: number, step = 'heartbeat', status = 503) => ({ at, step, status, pod: 'a' }) as JoinedFailure;
    const w = { to: 0, steps: ['heartbeat'] };
    expect(staleConnectionGate('postgres', w, [swept], [f(900)], 10_000).verdict).toBe('PASS');
    expect(staleConnectionGate('postgres', w, [swept], [f(1500, 'metrics')], 10_000).verdict).toBe('PASS');
    const g = staleConnectionGate('postgres', w, [swept], [f(900), f(1500)], 10_000);
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(
      /1 requests that need postgres failed on pods that had already reached it again \(first: heartbeat HTTP 503 from pod a, 0\.5 s after/,
    );
  });
});
