/**
 * For the tests: a RunRecord and its ledger lines from a real run of the load engine (lib/load),
 * the way the experiment runner will build them: every ledger row as `Ledger.toNdjsonLine` writes
 * it plus `check`, and `cause` and `pod` on failed rows. The cause here is a plain rule on the row
 * (a 5xx answer is application-5xx, a 4xx application-4xx, a timeout is timeout, anything else unknown): the runner's
 * join with the cluster timeline is not this file's business.
 */
import { worst } from '../../lib/verdict.ts';
import type { LoadResult } from '../../lib/load/index.ts';
import { errorRateGate } from '../gates.ts';
import {
  RUN_RECORD_SCHEMA,
  type CheckRecord,
  type FailureCause,
  type FailureGroup,
  type RunRecord,
  type SecondRecord,
  type TimelineRecord,
} from '../run-record.ts';

function causeOf(status: number, error: string | null): FailureCause {
  if (status >= 500) return 'application-5xx';
  if (status >= 400) return 'application-4xx';
  if (error === 'timeout') return 'timeout';
  return 'unknown';
}

const REASON: Partial<Record<FailureCause, string>> = {
  'application-5xx': 'a 5xx answer from a ready pod with no pod or dependency event around it',
  'application-4xx': 'a 4xx answer from the app',
  timeout: 'no response within the request timeout',
  unknown: 'no rule matched',
};

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export interface FromLoadOptions {
  command: string;
  check: string;
  description: string;
  url: string;
  minRequests?: number;
  timeline?: TimelineRecord[];
}

export function recordFromLoad(result: LoadResult, o: FromLoadOptions): { record: RunRecord; lines: () => Generator<string> } {
  const ledger = result.ledger;
  const groups = new Map<FailureCause, FailureGroup>();
  const byVersion: Record<string, number> = {};
  const perSecond = new Map<
    number,
    { lat: number[]; failed: Partial<Record<FailureCause, number>>; versions: Record<string, number> }
  >();
  const all: number[] = [];
  let succeeded = 0,
    failed = 0,
    dropped = 0,
    first = Infinity,
    last = -Infinity;
  for (const r of ledger.rows()) {
    const scheduled = ledger.epochMs(r.scheduledAt);
    first = Math.min(first, scheduled);
    if (r.outcome === 'dropped' || r.endedAt === null || r.error === 'aborted') {
      if (r.outcome === 'dropped') dropped++;
      continue;
    }
    const end = ledger.epochMs(r.endedAt);
    last = Math.max(last, end);
    const lat = r.endedAt - r.scheduledAt;
    all.push(lat);
    const s = Math.floor(end / 1000) * 1000;
    let b = perSecond.get(s);
    if (!b) perSecond.set(s, (b = { lat: [], failed: {}, versions: {} }));
    b.lat.push(lat);
    if (r.appVersion) {
      byVersion[r.appVersion] = (byVersion[r.appVersion] ?? 0) + 1;
      b.versions[r.appVersion] = (b.versions[r.appVersion] ?? 0) + 1;
    }
    if (r.outcome === 'succeeded') {
      succeeded++;
      continue;
    }
    failed++;
    const cause = causeOf(r.status, r.error);
    b.failed[cause] = (b.failed[cause] ?? 0) + 1;
    let g = groups.get(cause);
    if (!g) groups.set(cause, (g = { cause, count: 0, examples: [] }));
    g.count++;
    if (g.examples.length < 10) {
      g.examples.push({
        at: Math.round(scheduled * 1000) / 1000,
        step: r.name,
        status: r.status,
        error: r.error,
        pod: r.servedBy,
        version: r.appVersion,
        attributedBy: r.servedBy ? 'response-header' : null,
        reason: REASON[cause] ?? '',
        podHistory: [],
      });
    }
  }
  all.sort((a, b) => a - b);
  const series: SecondRecord[] = [...perSecond.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, b]) => {
      const lat = b.lat.sort((x, y) => x - y);
      return {
        t,
        requests: lat.length,
        failed: b.failed,
        p50: quantile(lat, 0.5),
        p99: quantile(lat, 0.99),
        versions: b.versions,
      };
    });
  const total = succeeded + failed;
  const g = errorRateGate({ name: 'no failed request', failed, total, maxRate: 0, minRequests: o.minRequests ?? 100 });
  const check: CheckRecord = {
    name: o.check,
    kind: 'experiment',
    verdict: 'PASS',
    description: o.description,
    startedAt: new Date(first).toISOString(),
    endedAt: new Date(Math.max(first, last)).toISOString(),
    error: null,
    gates: [
      { name: g.name, verdict: g.verdict, evidence: g.evidence, observed: g.observed ?? {} },
      {
        name: 'load as planned',
        verdict: result.assessment.verdict === 'PASS' || result.assessment.verdict === 'FAIL' ? 'PASS' : 'INCONCLUSIVE',
        evidence: result.assessment.reasons.join('; ') || 'the engine kept its schedule',
        observed: { achieved: result.summary.rates.achieved, target: result.summary.rates.target, dropped },
      },
    ],
    requests: { total, succeeded, failed, dropped, byVersion },
    failures: [...groups.values()].sort((a, b) => b.count - a.count),
    latency: all.length
      ? { p50: quantile(all, 0.5), p90: quantile(all, 0.9), p99: quantile(all, 0.99), max: all[all.length - 1] }
      : null,
    series,
    timeline: o.timeline ?? [],
    ledgerLabel: o.check,
  };
  check.verdict = worst(check.gates.map((x) => x.verdict));
  const record: RunRecord = {
    schema: RUN_RECORD_SCHEMA,
    command: o.command,
    verdict: check.verdict,
    headline: `${check.verdict}: ${failed} of ${total} requests failed in ${o.check}`,
    startedAt: check.startedAt,
    endedAt: check.endedAt,
    durationMs: Math.max(0, last - first),
    target: { kind: 'url', name: 'loopback test server', context: null, serverVersion: null, url: o.url, endpointLagMs: null },
    app: { name: 'test-server', versions: Object.fromEntries(Object.keys(byVersion).map((v) => [v, v])), faults: [] },
    harness: { version: '0.1.0', node: process.version, host: 'test' },
    checks: [check],
    error: null,
    files: { ledger: 'ledger.ndjson.gz' },
  };
  function* lines(): Generator<string> {
    for (let i = 0; i < ledger.length; i++) {
      const base = JSON.parse(ledger.toNdjsonLine(i)) as Record<string, unknown>;
      base.check = o.check;
      if (base.outcome === 'failed') {
        base.cause = causeOf(base.status as number, base.error as string | null);
        base.pod = base.served_by;
      }
      yield JSON.stringify(base);
    }
  }
  return { record, lines };
}
