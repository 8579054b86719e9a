import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { historyGates, RunHistory } from './history.ts';
import type { RunRecord } from './run-record.ts';
import { podKillRun } from './testing/synthetic.ts';

const dir = mkdtempSync(join(tmpdir(), 'verdict-history-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `h${n++}`, 'history.sqlite');

/**
 * A pod-kill-force run on day `day` (ISO date 2026-03-<day>) with these figures: a synthetic
 * record (reports/testing/synthetic.ts) whose check is renamed and given the figures.
 */
function run(
  day: number,
  figures: Record<string, number>,
  o: { replicas?: number; faults?: string[]; verdict?: 'PASS' | 'FAIL' } = {},
): RunRecord {
  const { record } = podKillRun();
  const r = structuredClone(record);
  r.startedAt = `2026-03-${String(day).padStart(2, '0')}T14:00:00Z`;
  r.app = { ...r.app!, faults: o.faults ?? [] };
  const c = r.checks[0];
  c.name = 'pod-kill-force';
  c.verdict = o.verdict ?? 'PASS';
  c.figures = figures;
  c.replicas = o.replicas ?? 3;
  return r;
}
const N = 5;

describe('the run history (node:sqlite)', () => {
  it('no worse than history is INCONCLUSIVE on an empty history, saying how many runs it needs, never PASS', () => {
    using h = RunHistory.open(fresh());
    const [g] = historyGates(h, run(20, { failed_requests: 3, 'p99_ms.v1': 40 }), { runs: N });
    expect(g.name).toBe('pod-kill-force: no worse than history');
    expect(g.verdict).toBe('INCONCLUSIVE');
    expect(g.evidence).toContain('failed_requests 3: only 0 comparable runs (5 needed: 5 more)');
    expect(g.observed).toMatchObject({ failed_requests_needs_runs: 5, comparable_runs: 0 });
  });

  it('FAILs a run made worse on purpose after N good ones; a run like them PASSes; fewer than N is INCONCLUSIVE', () => {
    const path = fresh();
    {
      using h = RunHistory.open(path);
      // Four good runs: still one short.
      for (let d = 1; d <= 4; d++) expect(h.append(run(d, { failed_requests: 2 + (d % 3), 'p99_ms.v1': 30 + d }))).toBe(1);
      const short = historyGates(h, run(10, { failed_requests: 3, 'p99_ms.v1': 31 }), { runs: N })[0];
      expect(short.verdict).toBe('INCONCLUSIVE');
      expect(short.evidence).toContain('only 4 comparable runs (5 needed: 1 more)');
      h.append(run(5, { failed_requests: 4, 'p99_ms.v1': 33 }));
    }
    // Reopened: the history is in the file.
    using h = RunHistory.open(path);
    expect(h.runs({ experiment: 'pod-kill-force' })).toHaveLength(5);
    const good = historyGates(h, run(10, { failed_requests: 4, 'p99_ms.v1': 34 }), { runs: N })[0];
    expect(good.verdict).toBe('PASS');
    expect(good.evidence).toContain('failed_requests 4 <= 4 (P99 of the last 5; median 3)');
    // Made worse on purpose: ten times the failures of any earlier run.
    const worse = historyGates(h, run(11, { failed_requests: 40, 'p99_ms.v1': 34 }), { runs: N })[0];
    expect(worse.verdict).toBe('FAIL');
    expect(worse.evidence).toMatch(
      /^against the last comparable runs \(embedded, license-api, 3 replicas; no fault, PASS\): failed_requests 40 > 4 /,
    );
    expect(worse.evidence).toMatch(/: worse than history$/);
    expect(worse.observed).toMatchObject({ failed_requests: 40, failed_requests_limit: 4 });
    // A declared margin over the median instead of the P99: p99 within 50 % of the median (33) passes, above fails.
    const margins = { p99_ms: 0.5 };
    expect(historyGates(h, run(12, { failed_requests: 3, 'p99_ms.v1': 49 }), { runs: N, margins })[0].verdict).toBe('PASS');
    const slow = historyGates(h, run(12, { failed_requests: 3, 'p99_ms.v1': 50 }), { runs: N, margins })[0];
    expect(slow.verdict).toBe('FAIL');
    expect(slow.evidence).toContain('p99_ms.v1 50 > 49.5 (median 33 + 50 %; median 33)');
  });

  it('only comparable runs count: same target kind, app and replicas, no deliberate fault, PASS, and earlier', () => {
    using h = RunHistory.open(fresh());
    for (let d = 1; d <= N; d++) {
      h.append(run(d, { failed_requests: 1 }, { replicas: 5 })); // other replicas
      h.append(run(d + 5, { failed_requests: 1 }, { faults: ['naive-shutdown'] })); // detector runs
      h.append(run(d + 10, { failed_requests: 1 }, { verdict: 'FAIL' }));
    }
    h.append(run(28, { failed_requests: 1 })); // after the run judged
    const g = historyGates(h, run(27, { failed_requests: 9 }), { runs: N })[0];
    expect(g.verdict).toBe('INCONCLUSIVE');
    expect(g.evidence).toContain('only 0 comparable runs');
    expect(h.runs()).toHaveLength(3 * N + 1);
  });

  it('a run appended twice is kept once; a file that is not a history is refused, naming the fix', () => {
    using h = RunHistory.open(fresh());
    const r = run(1, { failed_requests: 0 });
    expect(h.append(r)).toBe(1);
    expect(h.append(r)).toBe(0);
    expect(h.runs()[0]).toMatchObject({
      experiment: 'pod-kill-force',
      targetKind: 'embedded',
      app: 'license-api',
      replicas: 3,
      verdict: 'PASS',
      faults: [],
      figures: { failed_requests: 0 },
    });
    const notDb = join(dir, 'not-a-db.sqlite');
    writeFileSync(notDb, 'hello, this is not SQLite at all, but it is long enough to look like a file header........');
    expect(() => RunHistory.open(notDb)).toThrow(
      /not-a-db\.sqlite is not a verdict run history \(.*\): give another --history path/,
    );
  });
});
