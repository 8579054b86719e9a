/**
 * How much a run's "no request failed" is worth: over every judged request of the release under
 * test (control loads of deliberately broken releases excluded), the 95 % Wilson upper bound of the
 * failure rate. verify-local makes it a goal: a zero-failure PASS must bound the rate at or below
 * `maxUpperBound`, or the run is INCONCLUSIVE (too little evidence), never PASS.
 */
import { requestsToBound, wilson, pct } from '../reports/gates.ts';
import type { CheckResult } from './runner.ts';

export function evidenceStrength(results: CheckResult[], maxUpperBound: number): CheckResult {
  const loads = results.flatMap((r) => (r.evidence?.loads ?? []).filter((l) => !l.control));
  const total = loads.reduce((n, l) => n + l.joined.total, 0);
  const failed = loads.reduce((n, l) => n + l.joined.failed, 0);
  const bound = wilson(failed, total).high;
  const need = requestsToBound(maxUpperBound);
  const startedAt = Math.min(...results.map((r) => r.startedAt), Date.now());
  const enough = total >= need;
  const verdict = failed > 0 ? 'FAIL' : enough ? 'PASS' : 'INCONCLUSIVE';
  return {
    name: 'evidence strength',
    kind: 'gate',
    description: `every judged request of the release under test, together: a zero-failure verdict must bound the failure rate at <= ${pct(maxUpperBound)}`,
    verdict,
    error: null,
    evidence: null,
    startedAt,
    endedAt: Date.now(),
    gates: [
      {
        name: 'failure rate bounded',
        verdict,
        evidence:
          failed > 0
            ? `${failed} of ${total} judged requests failed (see the checks above)`
            : `0 of ${total} judged requests failed: the failure rate is below ${pct(bound)} (95 % Wilson upper bound); ${enough ? 'within' : 'short of'} the goal of ${pct(maxUpperBound)}, which needs ${need} requests`,
        observed: { total, failed, wilson95_high: bound, goal: maxUpperBound, requests_needed: need },
      },
    ],
  };
}
