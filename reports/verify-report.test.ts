import { describe, expect, it } from 'vitest';
import type { RolloutUnderLoadResult } from '../chaos/rollout-under-load.ts';
import { buildReport } from './verify-report.ts';

/** A rollout-under-load result with only the fields the gates read. */
function result(over: Partial<RolloutUnderLoadResult> = {}): RolloutUnderLoadResult {
  const summary = {
    rates: { target: 20, achieved: 20, planned: 1200 },
    counts: { dropped: 0 },
    metrics: { http_reqs: { count: 3000 }, http_req_failed: { fails: 0 }, schedule_delay: { 'p(99)': 2 }, http_req_duration: { 'p(99)': 20 } },
  };
  return {
    load: { summary } as unknown as RolloutUnderLoadResult['load'],
    rollout: { ok: true, startedAt: 0, endedAt: 30_000 },
    timeline: [], minReady: 3, timelineSamples: 200, maxActive: 4,
    versions: { v1: 2000, v2: 1000 }, failures: [], ...over,
  };
}
const ctx = { from: 'v1', to: 'v2', replicas: 3, maxSurge: 1, minRequests: 300 };

describe('verify-local report', () => {
  it('passes a clean rollout with full evidence', () => {
    expect(buildReport(result(), ctx).verdict).toBe('PASS');
  });

  it('never passes capacity on missing pod samples', () => {
    const rep = buildReport(result({ timelineSamples: 0, minReady: Infinity, maxActive: 0 }), ctx);
    expect(rep.gates.find((g) => g.name === 'capacity held')?.verdict).toBe('INCONCLUSIVE');
    expect(rep.verdict).toBe('INCONCLUSIVE');
  });

  it('fails when ready pods dropped below the replicas', () => {
    expect(buildReport(result({ minReady: 2 }), ctx).verdict).toBe('FAIL');
  });

  it('is INCONCLUSIVE when the load never reached the new version', () => {
    expect(buildReport(result({ versions: { v1: 3000 } }), ctx).verdict).toBe('INCONCLUSIVE');
  });
});
