import { describe, expect, it } from 'vitest';
import { ErrorClass } from '../load/error-class.ts';
import { ConnectionUse, Ledger, Outcome } from '../load/ledger.ts';
import { latencyGate } from '../../reports/gates.ts';
import { failuresByCause, joinLedger } from './join.ts';
import { Timeline } from './timeline.ts';

/** A ledger from (start s, duration ms, version, ok) tuples; origin at epoch 0. */
function ledgerOf(rows: Array<[number, number, string, boolean]>): Ledger {
  const l = new Ledger(performance.now() - performance.timeOrigin);
  const name = l.names.id('heartbeat');
  rows.forEach(([s, ms, v, ok], i) => {
    const t = s * 1000;
    const row = l.add(t, t, name, i);
    l.markStarted(row, t, 0);
    l.finish(
      row,
      t + ms,
      ok ? Outcome.succeeded : Outcome.failed,
      ok ? 200 : 500,
      ok ? 0 : ErrorClass.http_5xx,
      0,
      l.servedBy.id('pod-a'),
      l.appVersions.id(v),
    );
  });
  return l;
}

describe('joinLedger', () => {
  it('counts, versions and one cause per failure', () => {
    const j = joinLedger(
      ledgerOf([
        [0, 5, 'v1', true],
        [0.5, 5, 'v1', false],
        [1, 5, 'v2', true],
      ]),
      { timeline: new Timeline() },
    );
    expect(j).toMatchObject({ total: 3, succeeded: 2, failed: 1, byVersion: { v1: 1, v2: 1 } });
    expect(j.failures).toHaveLength(1);
    expect(j.series.map((s) => s.requests).reduce((a, b) => a + b)).toBe(3);
  });

  it('counts requests and failures by the connection they went out on (new, reused, unknown)', () => {
    const l = ledgerOf([
      [0, 5, 'v1', true],
      [0.1, 5, 'v1', true],
      [0.2, 5, 'v1', false],
      [0.3, 5, 'v1', false],
    ]);
    l.markConnection(0, ConnectionUse.new, 0.5);
    l.markConnection(1, ConnectionUse.reused, 100);
    l.markConnection(2, ConnectionUse.reused, 200);
    const j = joinLedger(l, { timeline: new Timeline() });
    expect(j.byConnection).toEqual({
      new: { total: 1, failed: 0 },
      reused: { total: 2, failed: 1 },
      unknown: { total: 1, failed: 1 },
    });
    expect(j.failures.map((f) => [f.connection, f.connectionAgeMs])).toEqual([
      ['reused', 200],
      [null, null],
    ]);
  });

  it('compares versions only over the seconds both answered (canary against baseline)', () => {
    // v1 alone for 20 s while the machine is calm (2 ms), then the rollout: for 10 s both answer while
    // it is busy (40 ms for both), v1 only a little. Over the whole run v2 looks 20 times slower; in
    // the shared window it is not.
    const rows: Array<[number, number, string, boolean]> = [];
    for (let s = 0; s < 20; s += 0.01) rows.push([s, 2, 'v1', true]);
    for (let s = 20; s < 30; s += 0.01) rows.push([s, 40, 'v2', true]);
    for (let s = 20.5; s < 30; s += 1) rows.push([s, 40, 'v1', true]);
    const j = joinLedger(ledgerOf(rows), { timeline: new Timeline() });
    expect(j.latencyByVersion.v2.p99).toBeGreaterThan(10 * j.latencyByVersion.v1.p50);
    expect(j.latencyWhileAllServed.seconds).toBeGreaterThanOrEqual(10); // 10 s, 11 when the ends straddle a second boundary
    expect(j.latencyWhileAllServed.seconds).toBeLessThanOrEqual(11);
    const gate = (versions: typeof j.latencyByVersion) =>
      latencyGate({
        versions,
        baseline: 'v1',
        candidate: 'v2',
        p99Ms: 1000,
        maxP99Ratio: 1.5,
        minP99DifferenceMs: 20,
        minRequestsPerVersion: 5,
      });
    expect(gate(j.latencyByVersion).verdict).toBe('FAIL');
    expect(gate(j.latencyWhileAllServed.versions).verdict).toBe('PASS');
    // A release that is really slower is slower in the shared window too.
    const slow: Array<[number, number, string, boolean]> = [];
    for (let s = 0; s < 10; s += 0.01) {
      slow.push([s, 10, 'v1', true]);
      slow.push([s + 0.005, 160, 'v2', true]);
    }
    const k = joinLedger(ledgerOf(slow), { timeline: new Timeline() });
    const g = gate(k.latencyWhileAllServed.versions);
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(/the new version is slower/);
  });

  it('with one version only there is no shared window, and the latency gate is INCONCLUSIVE', () => {
    const j = joinLedger(
      ledgerOf([
        [0, 5, 'v1', true],
        [1, 5, 'v1', true],
      ]),
      { timeline: new Timeline() },
    );
    expect(j.latencyWhileAllServed).toEqual({ seconds: 2, versions: {} });
    expect(
      latencyGate({
        versions: j.latencyWhileAllServed.versions,
        baseline: 'v1',
        candidate: 'v2',
        p99Ms: 1000,
        maxP99Ratio: 1.5,
        minP99DifferenceMs: 20,
        minRequestsPerVersion: 1,
      }).verdict,
    ).toBe('INCONCLUSIVE');
  });
});

describe('joinLedger: versions compared within the run', () => {
  const HB = 'POST /api/v1/licenses/heartbeat {session_id:string}';
  /** Rows (start s, version, pod, status, creator version) of heartbeats; creator null: untagged. */
  function heartbeats(rows: Array<[number, string, string, number, string | null]>): Ledger {
    const l = new Ledger(performance.now() - performance.timeOrigin);
    const name = l.names.id('heartbeat');
    rows.forEach(([s, v, pod, status, creator], i) => {
      const t = s * 1000;
      const row = l.add(t, t, name, i);
      l.describe(row, l.kinds.id(HB), l.creatorId(creator ? { version: creator, pod: `${creator}-pod` } : null));
      l.markStarted(row, t, 0);
      const ok = status < 400;
      l.finish(
        row,
        t + 3,
        ok ? Outcome.succeeded : Outcome.failed,
        status,
        ok ? 0 : ErrorClass.http_4xx,
        0,
        l.servedBy.id(pod),
        l.appVersions.id(v),
      );
    });
    return l;
  }

  it('v2 refuses every heartbeat v1 accepted: contract-break, with v1 answer as the example pair, grouped by version and route', () => {
    const rows: Array<[number, string, string, number, string | null]> = [];
    for (let i = 0; i < 50; i++) rows.push([i * 0.1, 'v1', 'v1-pod', 200, null]);
    for (let i = 0; i < 30; i++) rows.push([5 + i * 0.1, 'v2', 'v2-pod', 400, null]);
    const j = joinLedger(heartbeats(rows), { timeline: new Timeline() });
    expect(j.failures.map((f) => f.cause)).toEqual(Array(30).fill('contract-break'));
    const f = j.failures[0];
    expect(f).toMatchObject({ version: 'v2', route: 'POST /api/v1/licenses/heartbeat', kind: HB });
    expect(f.contrast).toMatchObject({ version: 'v1', pod: 'v1-pod', status: 200 });
    expect(f.contrast!.at).toBe(j.from); // the earliest accepted one
    expect(f.reason).toMatch(/v1 accepted 50 .* v2 accepted none and refused 30 with a 4xx/);
    expect(failuresByCause(j.failures)[0].breakdown).toEqual([
      { version: 'v2', route: 'POST /api/v1/licenses/heartbeat', count: 30 },
    ]);
  });

  it('v2 answers 404 for sessions v1 created and 200 for its own: state-not-shared, naming the creator', () => {
    const rows: Array<[number, string, string, number, string | null]> = [];
    for (let i = 0; i < 40; i++) rows.push([i * 0.1, 'v1', 'v1-pod', 200, 'v1']);
    for (let i = 0; i < 20; i++) rows.push([5 + i * 0.1, 'v2', 'v2-pod', 200, 'v2']);
    for (let i = 0; i < 25; i++) rows.push([5.05 + i * 0.1, 'v2', 'v2-pod', 404, 'v1']);
    const j = joinLedger(heartbeats(rows), { timeline: new Timeline(), resourceName: 'session' });
    expect(j.failures.map((f) => f.cause)).toEqual(Array(25).fill('state-not-shared'));
    expect(j.failures[0].createdBy).toEqual({ version: 'v1', pod: 'v1-pod' });
    expect(j.failures[0].reason).toBe(
      'a session created by v1, pod v1-pod is unknown to v2, pod v2-pod: HTTP 404; v2 accepted 20 requests of this kind (for sessions it knows)',
    );
  });
});
