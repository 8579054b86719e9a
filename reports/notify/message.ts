/**
 * What a notification says about one run, read from its `verdict/v1` record only: the verdict and
 * headline, the target and the releases, the gates that did not pass with their evidence, the most
 * frequent failure causes with counts, whether a rollback ran and was verified, approvals, and the
 * link to the uploaded run directory. Slack (slack.ts) and the generic webhook (webhook.ts) render it.
 */
import type { Verdict } from '../../lib/verdict.ts';
import type { FailureCause, RunRecord } from '../run-record.ts';

export interface FailedGate {
  check: string;
  gate: string;
  verdict: Verdict;
  evidence: string;
}

export interface Rollback {
  /** `rolled-back` (and verified), `rollback-failed`, `would-roll-back` (--no-rollback), `held`, `not-needed`. */
  state: 'rolled-back' | 'rollback-failed' | 'would-roll-back' | 'held' | 'not-needed';
  ran: boolean;
  /** The read-only smoke after the rollback passed (null when none ran). */
  verified: boolean | null;
  detail: string;
}

export interface Notification {
  verdict: Verdict;
  command: string;
  headline: string;
  /** e.g. `existing gke_acme_prod (https://api.example.com)` */
  target: string;
  /** The app's versions, e.g. {candidate: 'v1.0.42', baseline: 'v1.0.41'}. */
  releases: Record<string, string>;
  failedGates: FailedGate[];
  /** Failure causes over every check, most frequent first. */
  causes: Array<{ cause: FailureCause; count: number }>;
  requests: { total: number; failed: number } | null;
  /** Only for a command that can roll back (the gate); null otherwise. */
  rollback: Rollback | null;
  approvals: Array<{ what: string; by: string; reason: string | null }>;
  reportUrl: string | null;
  startedAt: string;
  durationMs: number;
  error: string | null;
}

function rollbackOf(r: RunRecord): Rollback | null {
  if (r.command !== 'gate') return null;
  const check = r.checks.find((c) => c.name === 'rollback');
  if (!check)
    return r.verdict === 'PASS' ? { state: 'not-needed', ran: false, verified: null, detail: 'the release passed' } : null;
  const gate = (name: string) => check.gates.find((g) => g.name === name);
  if (gate('rollback not done'))
    return { state: 'would-roll-back', ran: false, verified: null, detail: gate('rollback not done')!.evidence };
  if (gate('held')) return { state: 'held', ran: false, verified: null, detail: gate('held')!.evidence };
  const smoke = gate('read-only smoke after the rollback');
  const ok = check.gates.every((g) => g.verdict === 'PASS');
  return {
    state: ok ? 'rolled-back' : 'rollback-failed',
    ran: true,
    verified: smoke ? smoke.verdict === 'PASS' : false,
    detail: check.gates.map((g) => `${g.name}: ${g.verdict}`).join('; '),
  };
}

/** The notification of a run. */
export function notificationOf(r: RunRecord, reportUrl: string | null = null): Notification {
  const causes = new Map<FailureCause, number>();
  let total = 0;
  let failed = 0;
  let any = false;
  for (const c of r.checks) {
    for (const f of c.failures) causes.set(f.cause, (causes.get(f.cause) ?? 0) + f.count);
    if (c.requests) {
      any = true;
      total += c.requests.total;
      failed += c.requests.failed;
    }
  }
  const t = r.target;
  return {
    verdict: r.verdict,
    command: r.command,
    headline: r.headline,
    target: `${t.kind} ${t.name}${t.context && t.context !== t.name ? ` (context ${t.context})` : ''}${t.url ? ` ${t.url}` : ''}`,
    releases: { ...r.app?.versions },
    failedGates: r.checks.flatMap((c) =>
      c.gates
        .filter((g) => g.verdict !== 'PASS')
        .map((g) => ({ check: c.name, gate: g.name, verdict: g.verdict, evidence: g.evidence })),
    ),
    causes: [...causes]
      .map(([cause, count]) => ({ cause, count }))
      .sort((a, b) => b.count - a.count || a.cause.localeCompare(b.cause)),
    requests: any ? { total, failed } : null,
    rollback: rollbackOf(r),
    approvals: (r.approvals ?? []).map((a) => ({ what: a.what, by: a.by, reason: a.reason })),
    reportUrl,
    startedAt: r.startedAt,
    durationMs: r.durationMs,
    error: r.error,
  };
}
