import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { sessionControl } from '../apps/license-api/profile.ts';
import { checkSessions, sessionsGate, type SessionsEvidence } from './rollout-under-load.ts';
import type { RunContext } from './experiment.ts';

const evidence = (o: Partial<SessionsEvidence>): SessionsEvidence => ({
  held: 20,
  alive: 20,
  dead: [],
  baseline: 0,
  after: 0,
  ...o,
});
const refused = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `s${i}`, status: 503, body: 'busy' }));

describe('sessions preserved', () => {
  it('PASS when every held session works and the active count is back to the baseline', () => {
    expect(sessionsGate(evidence({})).verdict).toBe('PASS');
  });

  it('FAIL when seats stay taken that are not the harness’s own', () => {
    const g = sessionsGate(evidence({ after: 7 }));
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(/7 seats stayed taken/);
    // More seats taken than the harness could not release: still a leak of the release.
    const more = sessionsGate(evidence({ after: 7, notReleased: refused(3) }));
    expect(more.verdict).toBe('FAIL');
    expect(more.evidence).toMatch(/3 of them at most the harness's own/);
  });

  it('INCONCLUSIVE, never FAIL or PASS, when the seats still taken may be the held sessions the harness could not release', () => {
    const g = sessionsGate(evidence({ after: 7, notReleased: refused(7) }));
    expect(g.verdict).toBe('INCONCLUSIVE');
    expect(g.evidence).toMatch(/could not release 7 of its own held sessions \(last answer: HTTP 503 busy\)/);
  });
});

describe('the license API profile releases its held sessions', () => {
  async function server(answer: (n: number) => number) {
    let calls = 0;
    const s = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const status = answer(++calls);
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ status }));
      });
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, calls: () => calls, close: () => s.close() };
  }

  it('retries a refused release until it is done, and counts an already-ended session (404) as released', async () => {
    const busy = await server((n) => (n <= 2 ? 503 : 200));
    try {
      expect(await sessionControl(busy.url, 'token', new Map()).close(['a'])).toEqual([]);
      expect(busy.calls()).toBe(3);
    } finally {
      busy.close();
    }
    const gone = await server(() => 404);
    try {
      expect(await sessionControl(gone.url, 'token', new Map()).close(['a', 'b'])).toEqual([]);
    } finally {
      gone.close();
    }
  });

  it('makes each of its own calls on a new connection: none reuses one kept alive from an earlier call (whose pod may be gone)', async () => {
    const sockets = new Set<unknown>();
    let requests = 0;
    const s = createServer((req, res) => {
      sockets.add(req.socket);
      requests++;
      req.resume();
      req.on('end', () => {
        const body = req.url === '/metrics' ? 'license_active_sessions 0\n' : JSON.stringify({ session_id: `s${requests}` });
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      });
    });
    s.keepAliveTimeout = 65_000; // the license API's own (KEEPALIVE_TIMEOUT_MS)
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    try {
      const c = sessionControl(`http://127.0.0.1:${(s.address() as AddressInfo).port}`, 'token', new Map());
      const ids = await c.open(3);
      await c.check(ids);
      await c.close(ids);
      expect(await c.activeCount()).toBe(0);
      expect(requests).toBe(10);
      expect(sockets.size).toBe(10);
    } finally {
      s.closeAllConnections();
      s.close();
    }
  });

  it('says which sessions it could not release, with the last answer', async () => {
    const down = await server(() => 503);
    try {
      const notReleased = await sessionControl(down.url, 'token', new Map()).close(['a']);
      expect(notReleased).toEqual([{ id: 'a', status: 503, body: '{"status":503}' }]);
      expect(down.calls()).toBe(5);
    } finally {
      down.close();
    }
  });
});

describe('checkSessions: waiting for the seats to free', () => {
  const ctxWith = (counts: number[], refusedIds: number, deadIds = 0) => {
    let asked = 0;
    const sessions = {
      open: () => Promise.resolve([]),
      check: (ids: string[]) =>
        Promise.resolve({
          alive: ids.slice(deadIds),
          dead: ids.slice(0, deadIds).map((id) => ({ id, status: 500, body: 'fault' })),
        }),
      close: () => Promise.resolve(refused(refusedIds)),
      activeCount: () => Promise.resolve(counts[Math.min(asked++, counts.length - 1)]),
    };
    const ctx = {
      conn: { sessions },
      config: { gates: { sessions: { settleMs: 60_000 } } },
      signal: new AbortController().signal,
    } as unknown as RunContext;
    return { ctx, asked: () => asked };
  };
  const held = () => ({ ids: ['a', 'b', 'c'], baseline: 0, closed: false });

  it('does not wait for seats whose release was refused: they stay taken, and the gate puts them on the harness', async () => {
    const { ctx, asked } = ctxWith([2], 2);
    const s = (await checkSessions(ctx, held()))!;
    expect(asked()).toBe(1);
    expect(s).toMatchObject({ after: 2, notReleased: refused(2) });
    expect(sessionsGate(s).verdict).toBe('INCONCLUSIVE');
  });

  it('does not wait for seats once a held session is dead: the gate FAILs on that, and the count is reported as read', async () => {
    const { ctx, asked } = ctxWith([3, 0], 0, 1);
    const h = held();
    const s = (await checkSessions(ctx, h))!;
    expect(asked()).toBe(1);
    expect(h.closed).toBe(true);
    expect(s).toMatchObject({ alive: 2, after: 3 });
    expect(sessionsGate(s).verdict).toBe('FAIL');
  });

  it('waits for released seats to show as free', async () => {
    const { ctx, asked } = ctxWith([3, 1, 0], 0);
    const s = (await checkSessions(ctx, held()))!;
    expect(asked()).toBe(3);
    expect(sessionsGate(s).verdict).toBe('PASS');
  });
});
