/**
 * The run record of a suite command (`smoke`, `probes`): the same `verdict/v1` record every verdict
 * command writes, with the target a plain URL (or the cluster the checks ran on) and one
 * CheckRecord per suite.
 */
import { hostname } from 'node:os';
import { worst, type Verdict } from '../lib/verdict.ts';
import {
  RUN_RECORD_SCHEMA,
  type AppRecord,
  type CheckRecord,
  type GateRecord,
  type RunRecord,
  type TargetRecord,
  type TimelineRecord,
} from '../reports/run-record.ts';
import type { CheckResult, SuiteRun } from '../lib/checks/suite.ts';

const HARNESS_VERSION = '0.1.0';

/** A service known only by its URL. */
export function urlTarget(url: string): TargetRecord {
  return { kind: 'url', name: new URL(url).host, context: null, serverVersion: null, url, endpointLagMs: null };
}

export interface SuiteRunRecordInput {
  command: string;
  target: TargetRecord;
  app: AppRecord | null;
  checks: CheckRecord[];
  startedAt: number;
  endedAt: number;
  /** The run broke (or was interrupted) outside or across the checks. */
  error?: string | null;
}

export function suiteRunRecord(i: SuiteRunRecordInput): RunRecord {
  const error = i.error ?? null;
  const verdict: Verdict = error ? 'ERROR' : worst(i.checks.map((c) => c.verdict));
  return {
    schema: RUN_RECORD_SCHEMA,
    command: i.command,
    verdict,
    headline: headline(verdict, i.checks, error, i.target.url),
    startedAt: new Date(i.startedAt).toISOString(),
    endedAt: new Date(i.endedAt).toISOString(),
    durationMs: Math.max(0, i.endedAt - i.startedAt),
    target: i.target,
    app: i.app,
    harness: { version: HARNESS_VERSION, node: process.version, host: hostname() },
    checks: i.checks,
    error,
    files: { ledger: null },
  };
}

function headline(verdict: Verdict, checks: CheckRecord[], error: string | null, url: string | null): string {
  if (error) return `ERROR: ${error}`;
  const gates = checks.flatMap((c) => c.gates.map((g) => ({ check: c.name, ...g })));
  if (!gates.length) return `${verdict}: nothing was checked`;
  const bad = gates.filter((g) => g.verdict !== 'PASS');
  const where = url ? ` against ${url}` : '';
  if (!bad.length) return `${verdict}: all ${gates.length} checks passed${where}`;
  const names = bad
    .slice(0, 6)
    .map((g) => `${g.check}/${g.name} ${g.verdict}`)
    .join(', ');
  return `${verdict}: ${bad.length} of ${gates.length} checks did not pass${where} (${names}${bad.length > 6 ? ', …' : ''})`;
}

const iso = (ms: number) => new Date(ms).toISOString();

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** One check's result as a gate of the suite's record. */
export function gateOf(r: CheckResult): GateRecord {
  return {
    name: r.name,
    verdict: r.verdict,
    evidence: r.evidence,
    observed: {
      ...r.observed,
      verifies: r.verifies,
      writes: r.writes,
      attempts: r.attempts,
      passed_on_retry: r.passedOnRetry,
      duration_ms: Math.round(r.durationMs),
      slowest_request_ms: r.slowestMs === null ? null : Math.round(r.slowestMs * 10) / 10,
      budget_ms: r.budgetMs,
    },
  };
}

/**
 * The suite as one CheckRecord of the run record (kind `suite` or `probe`): a gate per check, a
 * `cleanup` gate when anything was registered for cleanup, the requests it sent and their latency,
 * and a timeline marker per check.
 */
export function suiteCheckRecord(run: SuiteRun, kind: 'suite' | 'probe' = 'suite'): CheckRecord {
  const gates = run.checks.map(gateOf);
  // A cleanup gate whenever something could have been left behind: a check that writes ran, or a step was registered.
  if (run.cleanup.length || run.checks.some((c) => c.writes && c.attempts > 0)) {
    const bad = run.cleanup.filter((c) => !c.ok);
    gates.push({
      name: 'cleanup',
      verdict: bad.length ? 'FAIL' : 'PASS',
      evidence: bad.length
        ? `${bad.length} of ${run.cleanup.length} cleanup steps failed: ${bad.map((c) => `${c.label}: ${c.detail}`).join('; ')}`
        : run.cleanup.length
          ? `${run.cleanup.length} cleanup step${run.cleanup.length === 1 ? '' : 's'} done: ${run.cleanup.map((c) => `${c.label}: ${c.detail}`).join('; ')}`
          : 'nothing left to undo: the checks undid what they did themselves',
      observed: { steps: run.cleanup.length, failed: bad.length },
    });
  }
  const answered = run.exchanges.filter((e) => e.status > 0);
  const byVersion: Record<string, number> = {};
  if (run.versionHeader)
    for (const e of answered) {
      const v = e.headers[run.versionHeader];
      if (v) byVersion[v] = (byVersion[v] ?? 0) + 1;
    }
  const durations = answered.map((e) => e.durationMs).sort((a, b) => a - b);
  const timeline: TimelineRecord[] = run.checks
    .filter((c) => c.attempts > 0)
    .map((c) => ({
      at: c.startedAt,
      kind: 'phase',
      object: `check/${c.name}`,
      change: c.verdict.toLowerCase(),
      detail: c.evidence.slice(0, 300),
    }));
  const leftOut = run.leftOut.length ? ` Not run: ${run.leftOut.map((l) => `${l.name} (${l.why})`).join(', ')}.` : '';
  return {
    name: run.name,
    kind,
    verdict: run.verdict,
    description: `${run.description}${leftOut}`,
    startedAt: iso(run.startedAt),
    endedAt: iso(run.endedAt),
    error: run.error,
    gates,
    requests: run.exchanges.length
      ? {
          total: run.exchanges.length,
          succeeded: answered.length,
          failed: run.exchanges.length - answered.length,
          dropped: 0,
          byVersion,
        }
      : null,
    failures: [],
    latency: durations.length
      ? {
          p50: round1(percentile(durations, 0.5)),
          p90: round1(percentile(durations, 0.9)),
          p99: round1(percentile(durations, 0.99)),
          max: round1(durations.at(-1)!),
        }
      : null,
    series: [],
    timeline,
    ledgerLabel: null,
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
