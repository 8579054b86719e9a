import { describe, expect, it, vi } from 'vitest';
import { TokenClients } from './credentials.ts';
import { runLoad } from './engine.ts';
import { defineScenario } from './scenario.ts';
import { startTestServer } from './testing/servers.ts';

const mintLike = () => {
  let n = 0;
  return async (key: string, seconds: number) => `${key}.${seconds}.${++n}`;
};

describe('TokenClients: clients of an issuer that rotates its signing key', () => {
  it('after the switch each client keeps its token of the old key until it renews, then holds the new key; the last old token is known', async () => {
    // On a fake clock: the renewals are 1 s apart, which a busy machine must not blur.
    vi.useFakeTimers();
    const t = new TokenClients({ clients: 4, lifetimeMs: 8000, key: 'k1', mint: mintLike(), tickMs: 20 });
    const until = async (what: string, cond: () => boolean) => {
      const end = Date.now() + 15_000;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`${what} did not happen within 15 s`);
        await vi.advanceTimersByTimeAsync(20);
      }
    };
    await t.start();
    try {
      expect(new Set(Array.from({ length: 8 }, () => t.current().split('.')[0]))).toEqual(new Set(['k1']));
      t.use('k2');
      // Renewals are staggered over the first half lifetime (1, 2, 3, 4 s): the first client moved, the last not yet.
      await until('a client renewing', () => t.holds('k2'));
      expect(t.holds('k1')).toBe(true);
      expect(new Set(Array.from({ length: 8 }, () => t.current().split('.')[0]))).toEqual(new Set(['k1', 'k2']));
      await until('every client renewing', () => !t.holds('k1'));
      expect(new Set(Array.from({ length: 8 }, () => t.current().split('.')[0]))).toEqual(new Set(['k2']));
      const last = t.lastExpiryOf('k1')!;
      const lastIssued = Math.max(...t.issued.filter((x) => x.key === 'k1').map((x) => x.issuedAt));
      expect(last).toBe(lastIssued + 8000);
      expect(t.lastExpiryOf('k3')).toBeNull();
      expect(t.sent.get('k1')).toBeGreaterThanOrEqual(8);
      expect(t.sent.get('k2')).toBeGreaterThanOrEqual(8);
      // Every token minted for 8 s.
      expect(t.current().split('.')[1]).toBe('8');
    } finally {
      t.stop();
      vi.useRealTimers();
    }
  });

  it('refuses a lifetime that is not whole seconds, naming the fix', () => {
    expect(() => new TokenClients({ lifetimeMs: 1500, key: 'k', mint: mintLike() })).toThrow(/whole seconds, at least 2 s/);
  });
});

describe('a scenario whose headers are a function (lib/load)', () => {
  it('is asked for every request: each request carries the credential of its own call', async () => {
    const seen: string[] = [];
    await using server = await startTestServer((req, res) => {
      seen.push(String(req.headers.authorization));
      res.writeHead(200).end();
    });
    // A new credential on every call: each request must carry a different one (none cached, none reused).
    let calls = 0;
    const r = await runLoad({
      url: server.url,
      executor: { executor: 'constant-arrival-rate', rate: 100, duration: '500ms', maxVUs: 10 },
      scenario: defineScenario({
        headers: () => ({ authorization: `Bearer t${++calls}` }),
        flows: [{ name: 'f', steps: [{ name: 'get', path: '/' }] }],
      }),
      thresholds: { http_req_failed: ['rate<1'] },
    });
    // How many arrivals started depends on the machine (late ones are dropped); what each carried does not.
    expect(r.summary.counts.succeeded).toBe(seen.length);
    expect(seen.length).toBeGreaterThan(1);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen[0]).toBe('Bearer t1');
  });
});
