/**
 * The summary of a run: k6-named metrics (http_reqs, http_req_failed, http_req_duration,
 * dropped_iterations, iterations) plus what an SRE needs to read a failure: counts per status, error
 * class, serving pod and app version, per request name, and per second. Plain JSON.
 */
import type { ErrorClassName } from './error-class.ts';
import type { Plan } from './executors.ts';
import type { Ledger } from './ledger.ts';
import { perSecondSeries, type SecondOfRun } from './series.ts';
import { RequestStatistics, trendOf, type Trend } from './statistics.ts';
import type { VettedTarget } from './target-guard.ts';

export interface IterationCounts {
  started: number;
  completed: number;
  /** Ended early because a step failed. */
  failed: number;
  /** Cut short by an abort or the request cap before all steps ran. */
  interrupted: number;
  dropped: number;
}

export interface LoadSummary {
  run: {
    executor: string;
    model: 'open' | 'closed';
    url: string;
    target: { kind: VettedTarget['kind']; address: string };
    /** Wall-clock time of the ledger's origin. */
    startedAt: string;
    originEpochMs: number;
    plannedDurationMs: number;
    /** Origin → last request ended and connections closed. */
    elapsedMs: number;
    /** When the schedule stopped issuing new work (ms since origin). */
    schedulingEndedAtMs: number;
    stopReason: string;
    abortReason: string | null;
    connections: number;
    timeoutMs: number;
    maxRequests: number;
    maxVUs: number | null;
  };
  counts: {
    /** Ledger rows. Invariant: scheduled = succeeded + failed + dropped (+ pending, which must be 0). */
    scheduled: number;
    succeeded: number;
    failed: number;
    dropped: number;
    /** Of the failed: cut short by the run itself (abort, graceful-stop deadline); not judged. */
    abortedByRun: number;
    pending: number;
    iterations: IterationCounts;
  };
  rates: {
    /** Planned iterations per second (open model), averaged over the plan; null for VUs. */
    target: number | null;
    /** Iterations started per second while the schedule ran (open), or requests per second (closed). */
    achieved: number;
    /** Iterations the plan asked for (open model). */
    planned: number | null;
  };
  metrics: {
    /** Ended requests, not counting those the run aborted. */
    http_reqs: { count: number; rate: number };
    http_req_failed: { rate: number | null; fails: number; passes: number };
    http_req_duration: Trend | null;
    http_req_blocked: Trend | null;
    http_req_service_time: Trend | null;
    schedule_delay: Trend | null;
    dropped_iterations: { count: number; rate: number };
    iterations: { count: number; rate: number };
  };
  statuses: Record<string, number>;
  errors: Partial<Record<ErrorClassName, number>>;
  servedBy: Record<string, number>;
  appVersions: Record<string, number>;
  byName: Record<string, { requests: number; failed: number; dropped: number; http_req_duration: Trend | null }>;
  series: SecondOfRun[];
  ledger: { rows: number; bytes: number; bytesPerRequest: number; ndjsonRows: number | null };
}

export interface SummaryInput {
  ledger: Ledger;
  stats: RequestStatistics;
  plan: Plan;
  target: VettedTarget;
  iterations: IterationCounts;
  connections: number;
  timeoutMs: number;
  maxRequests: number;
  schedulingEndedAt: number;
  lastIssuedAt: number;
  endedAt: number;
  stopReason: string;
  abortReason: string | null;
  ndjsonRows: number | null;
}

function named(map: Map<number, number>, value: (id: number) => string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [id, n] of [...map].sort((a, b) => b[1] - a[1])) out[value(id) ?? String(id)] = n;
  return out;
}

export function buildSummary(i: SummaryInput): LoadSummary {
  const { ledger, stats, plan } = i;
  const tally = ledger.tally();
  const seconds = Math.max(i.endedAt, 1) / 1000;
  // The window the schedule ran: a completed schedule spans its whole planned duration even though
  // its last arrival is due a little before the end; a late engine or an early stop shows here.
  const schedulingEnded = Number.isNaN(i.schedulingEndedAt) ? i.endedAt : i.schedulingEndedAt;
  const window = i.stopReason === 'schedule complete' ? Math.max(plan.durationMs, schedulingEnded) : schedulingEnded;
  const scheduleSeconds = Math.max(window, 1) / 1000;
  const iterationsEnded = i.iterations.completed + i.iterations.failed;

  // Per-name statistics: one pass over the ledger when the scenario has more than one request name.
  const byName: LoadSummary['byName'] = {};
  const nameIds = ledger.names.size;
  if (nameIds <= 1) {
    const only = ledger.names.values()[0] ?? '';
    byName[only] = {
      requests: stats.requests,
      failed: stats.failed,
      dropped: stats.dropped,
      http_req_duration: trendOf(stats.duration),
    };
  } else {
    const per = Array.from({ length: nameIds + 1 }, () => new RequestStatistics());
    for (let r = 0; r < ledger.length; r++) per[ledger.nameId(r)].add(ledger, r);
    for (let id = 1; id <= nameIds; id++) {
      const s = per[id];
      byName[ledger.names.value(id) ?? String(id)] = {
        requests: s.requests,
        failed: s.failed,
        dropped: s.dropped,
        http_req_duration: trendOf(s.duration),
      };
    }
  }
  const statuses: Record<string, number> = {};
  for (const [status, n] of [...stats.byStatus].sort((a, b) => a[0] - b[0])) statuses[String(status)] = n;
  const mem = ledger.memory();
  const open = plan.model === 'open';
  return {
    run: {
      executor: plan.executor,
      model: plan.model,
      url: i.target.url.href,
      target: { kind: i.target.kind, address: i.target.address },
      startedAt: new Date(ledger.origin.epochMs).toISOString(),
      originEpochMs: ledger.origin.epochMs,
      plannedDurationMs: plan.durationMs,
      elapsedMs: Math.round(i.endedAt * 1000) / 1000,
      schedulingEndedAtMs: Math.round(i.schedulingEndedAt * 1000) / 1000,
      stopReason: i.stopReason,
      abortReason: i.abortReason,
      connections: i.connections,
      timeoutMs: i.timeoutMs,
      maxRequests: i.maxRequests,
      maxVUs: open ? plan.maxVUs : null,
    },
    counts: {
      scheduled: ledger.length,
      succeeded: tally.succeeded,
      failed: tally.failed,
      dropped: tally.dropped,
      abortedByRun: stats.aborted,
      pending: tally.pending,
      iterations: i.iterations,
    },
    rates: {
      target: open ? plan.arrivals.count / (plan.durationMs / 1000) : null,
      achieved: open ? i.iterations.started / scheduleSeconds : stats.requests / scheduleSeconds,
      planned: open ? plan.arrivals.count : null,
    },
    metrics: {
      http_reqs: { count: stats.requests, rate: stats.requests / seconds },
      http_req_failed: { rate: stats.failedRate(), fails: stats.failed, passes: stats.succeeded },
      http_req_duration: trendOf(stats.duration),
      http_req_blocked: trendOf(stats.blocked),
      http_req_service_time: trendOf(stats.serviceTime),
      schedule_delay: trendOf(stats.scheduleDelay),
      dropped_iterations: { count: i.iterations.dropped, rate: i.iterations.dropped / seconds },
      iterations: { count: iterationsEnded, rate: iterationsEnded / seconds },
    },
    statuses,
    errors: stats.errorCounts(),
    servedBy: named(stats.byServedBy, (id) => ledger.servedBy.value(id)),
    appVersions: named(stats.byAppVersion, (id) => ledger.appVersions.value(id)),
    byName,
    series: perSecondSeries(ledger),
    ledger: {
      rows: ledger.length,
      bytes: mem.bytes,
      bytesPerRequest: Math.round(mem.bytesPerRequest * 10) / 10,
      ndjsonRows: i.ndjsonRows,
    },
  };
}
