/**
 * Turns the runner's results into the `verdict/v1` run record and the run's ledger lines: the one
 * place where experiment evidence becomes what every renderer reads.
 */
import { hostname } from 'node:os';
import { failuresByCause } from '../lib/evidence/join.ts';
import type { ByConnection, JoinedFailure, SecondOfEvidence } from '../lib/evidence/join.ts';
import type { Timeline } from '../lib/evidence/timeline.ts';
import { worst, type Verdict } from '../lib/verdict.ts';
import {
  RUN_RECORD_SCHEMA,
  type CheckRecord,
  type FailureGroup,
  type RunRecord,
  type TargetRecord,
} from '../reports/run-record.ts';
import type { Target } from '../cluster/target.ts';
import type { CheckResult } from './runner.ts';
import type { LoadEvidence } from './experiment.ts';

const HARNESS_VERSION = '0.1.0';
const MAX_TIMELINE = 5000;
const iso = (ms: number) => new Date(ms).toISOString();

export async function describeTarget(target: Target, url: string | null): Promise<TargetRecord> {
  return {
    kind: target.kind,
    name: target.name,
    context: target.context,
    serverVersion: await target.serverVersion(),
    url,
    endpointLagMs: target.endpointLagMs,
  };
}

const emptyByConnection = (): ByConnection => ({
  new: { total: 0, failed: 0 },
  reused: { total: 0, failed: 0 },
  unknown: { total: 0, failed: 0 },
});

/** Failed requests grouped by cause for the record: counts, version × route cells and examples with their pod's history. */
export function failureGroups(failures: JoinedFailure[], timeline?: Pick<Timeline, 'before'>): FailureGroup[] {
  return failuresByCause(failures).map((g) => ({
    cause: g.cause,
    count: g.count,
    breakdown: g.breakdown,
    examples: g.examples.map((f) => ({
      at: f.at,
      step: f.step,
      status: f.status,
      error: f.error,
      pod: f.pod,
      version: f.version,
      attributedBy: f.attributedBy,
      route: f.route,
      kind: f.kind,
      createdBy: f.createdBy,
      contrast: f.contrast,
      connection: f.connection,
      connectionAgeMs: f.connectionAgeMs,
      reason: f.reason,
      podHistory: f.pod && timeline ? timeline.before(f.pod, f.at) : [],
    })),
  }));
}

/** The requests of the release's loads, added up (null without any load). */
function requestTotals(loads: LoadEvidence[]): CheckRecord['requests'] {
  if (!loads.length) return null;
  const acc = {
    total: 0,
    succeeded: 0,
    failed: 0,
    dropped: 0,
    byVersion: {} as Record<string, number>,
    byConnection: emptyByConnection(),
  };
  for (const l of loads) {
    acc.total += l.joined.total;
    acc.succeeded += l.joined.succeeded;
    acc.failed += l.joined.failed;
    acc.dropped += l.joined.dropped;
    for (const [v, n] of Object.entries(l.joined.byVersion)) acc.byVersion[v] = (acc.byVersion[v] ?? 0) + n;
    for (const k of ['new', 'reused', 'unknown'] as const) {
      acc.byConnection[k].total += l.joined.byConnection[k].total;
      acc.byConnection[k].failed += l.joined.byConnection[k].failed;
    }
  }
  return acc;
}

/** The loads' per-second evidence merged second by second (the worst p50/p99 of a second kept). */
function mergedSeries(loads: LoadEvidence[]): SecondOfEvidence[] {
  const series = new Map<number, SecondOfEvidence>();
  for (const l of loads) {
    for (const s of l.joined.series) {
      const m = series.get(s.t);
      if (!m) {
        series.set(s.t, { ...s, failed: { ...s.failed }, versions: { ...s.versions } });
        continue;
      }
      m.requests += s.requests;
      for (const [c, n] of Object.entries(s.failed))
        m.failed[c as keyof typeof m.failed] = (m.failed[c as keyof typeof m.failed] ?? 0) + (n ?? 0);
      for (const [v, n] of Object.entries(s.versions)) m.versions[v] = (m.versions[v] ?? 0) + n;
      m.p50 = Math.max(m.p50 ?? 0, s.p50 ?? 0);
      m.p99 = Math.max(m.p99 ?? 0, s.p99 ?? 0);
    }
  }
  return [...series.values()].sort((a, b) => a.t - b.t);
}

export function checkRecord(r: CheckResult): CheckRecord {
  const e = r.evidence;
  // The release under test only: a control load (a deliberately broken release run to show the
  // harness sees a failure mode) is evidence for its own gate, not requests of this release.
  const loads = (e?.loads ?? []).filter((l) => !l.control);
  const requests = requestTotals(loads);
  const biggest = [...loads].sort((a, b) => b.joined.total - a.joined.total)[0];
  const events = e?.timeline.events ?? [];
  const figures =
    e && (r.kind ?? 'experiment') === 'experiment' ? historyFigures(r, requests, biggest?.joined.latencyByVersion) : undefined;
  return {
    name: r.name,
    kind: r.kind ?? 'experiment',
    verdict: r.verdict,
    description: r.description,
    startedAt: iso(r.startedAt),
    endedAt: iso(r.endedAt),
    error: r.error,
    gates: r.gates.map((g) => ({ name: g.name, verdict: g.verdict, evidence: g.evidence, observed: g.observed ?? {} })),
    requests,
    failures: failureGroups(
      loads.flatMap((l) => l.joined.failures),
      e?.timeline,
    ),
    latency: biggest?.joined.latency ?? null,
    series: mergedSeries(loads),
    timeline:
      events.length > MAX_TIMELINE
        ? [
            ...events.slice(0, MAX_TIMELINE - 1),
            {
              at: events[MAX_TIMELINE - 1].at,
              kind: 'phase',
              object: 'timeline',
              change: 'truncated',
              detail: `${events.length - MAX_TIMELINE + 1} more events not kept`,
            },
          ]
        : events,
    ledgerLabel: loads.length ? r.name : null,
    ...(figures ? { figures } : {}),
    ...(r.replicas !== undefined ? { replicas: r.replicas } : {}),
  };
}

/**
 * What the run history keeps of an experiment: failed requests, p99 per version and the longest
 * drain (a pod's terminating → gone on the timeline), plus the experiment's own figures.
 */
function historyFigures(
  r: CheckResult,
  requests: CheckRecord['requests'],
  latencyByVersion: Record<string, { p99: number }> | undefined,
): Record<string, number> {
  const out: Record<string, number> = {};
  if (requests) out.failed_requests = requests.failed;
  for (const [v, l] of Object.entries(latencyByVersion ?? {})) out[`p99_ms.${v}`] = l.p99;
  const terminating = new Map<string, number>();
  let drain = -1;
  for (const ev of r.evidence?.timeline.events ?? []) {
    if (ev.kind !== 'pod') continue;
    if (ev.change === 'terminating') terminating.set(ev.object, ev.at);
    else if (ev.change === 'gone' && terminating.has(ev.object)) drain = Math.max(drain, ev.at - terminating.get(ev.object)!);
  }
  if (drain >= 0) out.drain_s_max = Math.round(drain) / 1000;
  for (const [k, v] of Object.entries(r.figures ?? {})) if (Number.isFinite(v)) out[k] = v;
  return out;
}

export interface RunRecordInput {
  command: string;
  target: TargetRecord;
  app: RunRecord['app'];
  results: CheckResult[];
  startedAt: number;
  endedAt: number;
  /** The run broke outside any check. */
  error?: string | null;
  ledgerFile?: string | null;
}

export function runRecord(i: RunRecordInput): RunRecord {
  const checks = i.results.map(checkRecord);
  const verdict: Verdict = i.error ? 'ERROR' : worst(checks.map((c) => c.verdict));
  return {
    schema: RUN_RECORD_SCHEMA,
    command: i.command,
    verdict,
    headline: headline(verdict, checks, i.error ?? null),
    startedAt: iso(i.startedAt),
    endedAt: iso(i.endedAt),
    durationMs: i.endedAt - i.startedAt,
    target: i.target,
    app: i.app,
    harness: { version: HARNESS_VERSION, node: process.version, host: hostname() },
    checks,
    error: i.error ?? null,
    files: { ledger: i.ledgerFile ?? null },
  };
}

function headline(verdict: Verdict, checks: CheckRecord[], error: string | null): string {
  if (error) return `ERROR: ${error}`;
  if (checks.length === 0) return `${verdict}: nothing was checked`;
  const total = checks.reduce((n, c) => n + (c.requests?.total ?? 0), 0);
  const failed = checks.reduce((n, c) => n + (c.requests?.failed ?? 0), 0);
  const bad = checks.filter((c) => c.verdict !== 'PASS').map((c) => `${c.name} ${c.verdict}`);
  return `${verdict}: ${failed.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} requests failed across ${checks.length} check${checks.length > 1 ? 's' : ''}${bad.length ? ` (${bad.join(', ')})` : ''}`;
}

/**
 * Every request of every check as NDJSON lines (`check` names the check, `<name> (control)` for a
 * control load; failed rows carry `cause` and `pod`).
 */
export function* ledgerLines(results: CheckResult[]): Generator<string> {
  for (const r of results) {
    for (const l of r.evidence?.loads ?? []) {
      const check = l.control ? `${r.name} (control)` : r.name;
      const failures = new Map(l.joined.failures.map((f) => [f.row, f]));
      const ledger = l.result.ledger;
      for (let row = 0; row < ledger.length; row++) {
        const line = ledger.toNdjsonLine(row);
        const f = failures.get(row);
        const extra = f ? `,"cause":${JSON.stringify(f.cause)},"pod":${JSON.stringify(f.pod)}` : '';
        yield `{"check":${JSON.stringify(check)},"load":${JSON.stringify(l.label)},${line.slice(1, -1)}${extra}}`;
      }
    }
  }
}
