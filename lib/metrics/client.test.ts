import { describe, expect, it } from 'vitest';
import { metricGates } from '../../reports/metric-gates.ts';
import { ErrorClass, type ErrorClassId } from '../load/error-class.ts';
import { Ledger, Outcome, type OutcomeId } from '../load/ledger.ts';
import { ClientSource } from './client.ts';
import { measureAll } from './index.ts';
import type { MetricSource } from './source.ts';

/** A ledger with 100 requests ending in [1 s, 2 s) of its clock and a few around them. */
function ledger(): Ledger {
  const l = new Ledger(0);
  const name = l.names.id('heartbeat');
  const end = (scheduled: number, ended: number, outcome: OutcomeId, status: number, cls: ErrorClassId, version?: string) => {
    const row = l.add(scheduled, scheduled, name, 0);
    l.markStarted(row, scheduled, 0);
    l.finish(row, ended, outcome, status, cls, 0, 0, l.appVersions.id(version));
  };
  for (let i = 0; i < 90; i++)
    end(1000 + i * 10, 1000 + i * 10 + 5 + (i % 10), Outcome.succeeded, 200, ErrorClass.none, i % 2 ? 'v2' : 'v1');
  for (let i = 0; i < 4; i++) end(1500 + i, 1600 + i, Outcome.failed, 500, ErrorClass.http_5xx, 'v2');
  end(1700, 1950, Outcome.failed, 0, ErrorClass.conn_reset); // no answer, no version
  end(1710, 1715, Outcome.failed, 0, ErrorClass.timeout, 'v1');
  for (let i = 0; i < 4; i++) end(1800 + i, 1801 + i, Outcome.failed, 404, ErrorClass.http_4xx, 'v1');
  // Not judged: dropped, aborted by the run, ended outside the window.
  l.addDropped(1200, 1200, name, 0);
  end(1300, 1310, Outcome.failed, 0, ErrorClass.aborted, 'v1');
  end(900, 990, Outcome.succeeded, 200, ErrorClass.none, 'v1');
  end(1990, 2000, Outcome.succeeded, 200, ErrorClass.none, 'v1');
  return l;
}

describe('client source: the ledger over a window', () => {
  const l = ledger();
  const window = { from: new Date(l.epochMs(1000)), to: new Date(l.epochMs(2000)) };

  it('counts requests that ended in the window: failures (5xx and no answer), 4xx apart, p99 from the schedule, per version', async () => {
    const m = await new ClientSource({ ledger: l }).measure(window);
    if (m.status !== 'ok') throw new Error(m.message);
    expect(m).toMatchObject({ source: 'client', total: 100, failed: 6, failed4xx: 4 });
    expect(m.p99Ms).toBeCloseTo(100, 3); // nearest rank: the 99th of 100 is a 500 answered 100 ms after its schedule
    expect(m.byVersion.v1).toMatchObject({ total: 50, failed: 1, failed4xx: 4 });
    expect(m.byVersion.v2).toMatchObject({ total: 49, failed: 4, failed4xx: 0 });
    expect(m.evidence.samples).toBe(100);
    expect(m.evidence.points.requests.every(([t]) => t % 1000 === 0)).toBe(true);
    expect(m.evidence.points.requests.reduce((s, [, v]) => s + v, 0)).toBe(100);
    expect(metricGates([m], { maxErrorRate: 0.01, minRequests: 50 }).verdict).toBe('FAIL');
  });

  it('a window without requests is no-data, never PASS', async () => {
    const m = await new ClientSource({ ledger: l }).measure({ from: new Date(l.epochMs(5000)), to: new Date(l.epochMs(6000)) });
    expect(m).toMatchObject({
      status: 'no-data',
      message: expect.stringMatching(/^client: no request of the ledger ended in \[/),
    });
    expect(metricGates([m], { maxErrorRate: 0.01, minRequests: 1 }).verdict).toBe('INCONCLUSIVE');
  });
});

describe('measureAll', () => {
  const l = ledger();
  const window = { from: new Date(l.epochMs(1000)), to: new Date(l.epochMs(2000)) };

  it('a provider that throws becomes an error measurement: worst-of sees it', async () => {
    const broken: MetricSource = {
      kind: 'promql',
      name: 'promql',
      measure: async () => {
        throw new Error('boom');
      },
      close: async () => {},
    };
    const ms = await measureAll([new ClientSource({ ledger: l }), broken], window);
    expect(ms.map((m) => m.status)).toEqual(['ok', 'error']);
    expect(ms[1].message).toBe('promql: the measurement broke: boom');
    expect(metricGates(ms, { maxErrorRate: 0.5, minRequests: 1 }).verdict).toBe('ERROR');
  });

  it("two sources with one name, or a window that ends before it starts, are the caller's mistake", async () => {
    await expect(measureAll([new ClientSource({ ledger: l }), new ClientSource({ ledger: l })], window)).rejects.toThrow(
      /two metric sources are named client/,
    );
    await expect(measureAll([new ClientSource({ ledger: l })], { from: window.to, to: window.from })).rejects.toThrow(
      /must be after from/,
    );
  });
});
