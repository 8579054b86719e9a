import { describe, expect, it } from 'vitest';
import { runLoad } from './engine.ts';
import { defineScenario } from './scenario.ts';
import { closeKeepAliveUnderRequest, ok, startTestServer } from './testing/servers.ts';
import { freePort } from '../net/free-port.ts';

// Every request says whether it went out on a connection opened for it or on a kept-alive one, and
// how old that connection was: what a client-side keep-alive failure needs to be told apart.
describe('connection use in the ledger', () => {
  it('the first request of each connection is new, every later one reused, with the age of its socket', async () => {
    await using server = await startTestServer(ok());
    const r = await runLoad({
      url: server.url,
      executor: { executor: 'constant-arrival-rate', rate: 100, duration: '1s' },
      connections: 4,
      minRequests: 1,
    });
    const rows = [...r.ledger.rows()].filter((x) => x.outcome === 'succeeded');
    expect(rows).toHaveLength(100);
    const byConnection = new Map<number, typeof rows>();
    for (const x of rows) byConnection.set(x.connection!, [...(byConnection.get(x.connection!) ?? []), x]);
    expect([...byConnection.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    for (const list of byConnection.values()) {
      expect(list.map((x) => x.connectionUse)).toEqual(['new', ...Array(list.length - 1).fill('reused')]);
      // The age grows with the run: the last request's socket is about as old as the run since its first.
      const ages = list.map((x) => x.connectionAgeMs!);
      expect(ages[0]).toBeLessThan(50);
      for (let i = 1; i < ages.length; i++) expect(ages[i]).toBeGreaterThan(ages[i - 1]);
      expect(ages.at(-1)! - (list.at(-1)!.startedAt! - list[0].startedAt!)).toBeLessThan(5);
    }
  });

  it('a connection the server closed is new again for the next request; a request that never got a socket is new too', async () => {
    // The server answers the first request of each socket and closes it (FIN) under the second.
    await using server = await startTestServer(closeKeepAliveUnderRequest());
    const r = await runLoad({
      url: server.url,
      executor: { executor: 'constant-arrival-rate', rate: 40, duration: '1s' },
      connections: 1,
      minRequests: 1,
      thresholds: { http_req_failed: ['rate<=1'] },
    });
    const rows = [...r.ledger.rows()].filter((x) => x.outcome !== 'dropped');
    const ok = rows.filter((x) => x.outcome === 'succeeded');
    const failed = rows.filter((x) => x.outcome === 'failed');
    expect(ok.length).toBeGreaterThan(0);
    expect(new Set(ok.map((x) => x.connectionUse))).toEqual(new Set(['new']));
    // A failure on the closing socket was written on a reused connection: the kind that matters.
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((x) => x.connectionUse === 'reused' || x.connectionUse === 'new')).toBe(true);
    expect(failed.some((x) => x.connectionUse === 'reused')).toBe(true);
    // Refused: no socket ever, every request failed while a connection was being opened for it.
    const refused = await runLoad({
      url: `http://127.0.0.1:${await freePort()}`,
      executor: { executor: 'constant-arrival-rate', rate: 20, duration: '0.5s' },
      connections: 2,
      minRequests: 1,
      thresholds: { http_req_failed: ['rate<=1'] },
    });
    const rows2 = [...refused.ledger.rows()].filter((x) => x.outcome === 'failed');
    expect(rows2.length).toBe(10);
    expect(rows2.map((x) => [x.error, x.connectionUse, x.connectionAgeMs])).toEqual(
      Array(10).fill(['conn_refused', 'new', null]),
    );
  });

  it("a scenario's own pool: a low-rate flow's connections sit idle between its requests, apart from the main pool", async () => {
    await using server = await startTestServer(ok());
    const scenario = defineScenario({
      pools: { idle: { connections: 2 } },
      flows: [
        { name: 'busy', weight: 9, steps: [{ name: 'busy', path: '/busy' }] },
        { name: 'sdk', weight: 1, pool: 'idle', steps: [{ name: 'sdk', path: '/sdk' }] },
      ],
    });
    const r = await runLoad({
      url: server.url,
      scenario,
      executor: { executor: 'constant-arrival-rate', rate: 100, duration: '2s' },
      connections: 4,
      minRequests: 1,
    });
    const rows = [...r.ledger.rows()].filter((x) => x.outcome === 'succeeded');
    const sdk = rows.filter((x) => x.name === 'sdk');
    const busy = rows.filter((x) => x.name === 'busy');
    expect(new Set(busy.map((x) => x.connection))).toEqual(new Set([0, 1, 2, 3]));
    expect(new Set(sdk.map((x) => x.connection))).toEqual(new Set([4, 5]));
    // 10 req/s over 2 connections: each idle about 200 ms between its requests.
    for (const c of [4, 5]) {
      const starts = sdk.filter((x) => x.connection === c).map((x) => x.startedAt!);
      const gaps = starts.slice(1).map((t, i) => t - starts[i]);
      expect(Math.min(...gaps)).toBeGreaterThan(120);
    }
    expect(r.summary.run.connections).toBe(6);
  });

  it('a flow naming a pool the scenario does not declare is refused, saying which', async () => {
    await expect(
      runLoad({
        url: 'http://127.0.0.1:1',
        scenario: { flows: [{ name: 'f', pool: 'nope', steps: [{ name: 's', path: '/' }] }] },
        executor: { executor: 'constant-arrival-rate', rate: 1, duration: '1s' },
      }),
    ).rejects.toThrow(/flow "f" names pool "nope", which the scenario's "pools" does not declare/);
  });
});
