/**
 * PASS / FAIL / INCONCLUSIVE for one load run. A breached threshold is FAIL. Missing evidence is never
 * PASS: no thresholds, a threshold without samples, too few requests, an aborted run, a schedule the
 * engine did not keep, or fewer arrivals started than planned all make the run INCONCLUSIVE.
 */
import { worst, type Verdict } from '../verdict.ts';
import type { LoadSummary } from './summary.ts';
import type { ThresholdResult } from './thresholds.ts';

/** A load run is never ERROR by itself (an engine failure throws): the other three verdicts. */
export type LoadVerdict = Exclude<Verdict, 'ERROR'>;

export interface Assessment {
  verdict: LoadVerdict;
  /** Why, one sentence each; FAIL reasons first. */
  reasons: string[];
}

/** Arrivals started must reach this share of the plan. */
export const MIN_ACHIEVED_SHARE = 0.99;
/** Default for the engine's own p99 lateness above which its measurements are not trusted (ms). */
export const MAX_SCHEDULE_DELAY_P99_MS = 50;

export function assess(
  s: LoadSummary,
  thresholds: ThresholdResult[],
  opts: { minRequests: number; maxScheduleDelayMs?: number; abortedByThreshold?: boolean; inconclusive?: string[] },
): Assessment {
  const fail: string[] = [];
  // Missing evidence the caller knows of (e.g. a distributed run's agent that never reported) comes first.
  const unsure: string[] = [...(opts.inconclusive ?? [])];
  for (const t of thresholds) {
    if (t.ok === false)
      fail.push(`threshold ${t.metric}: ${t.expression} breached (observed ${t.observed}, ${t.samples} samples)`);
    if (t.ok === null) unsure.push(`threshold ${t.metric}: ${t.expression} has no data`);
  }
  if (opts.abortedByThreshold && s.run.abortReason) fail.push(`run aborted on breach: ${s.run.abortReason}`);
  else if (s.run.abortReason) unsure.push(`run aborted before its end: ${s.run.abortReason}`);
  if (thresholds.length === 0) unsure.push('no thresholds were set, so nothing was judged');
  const ended = s.metrics.http_reqs.count;
  if (ended < opts.minRequests) unsure.push(`only ${ended} requests ended; at least ${opts.minRequests} are needed`);
  if (s.counts.pending > 0) unsure.push(`${s.counts.pending} requests never ended (engine bug)`);
  if (s.rates.planned !== null && !s.run.abortReason) {
    const planned = Math.min(s.rates.planned, s.run.maxRequests);
    const started = s.counts.iterations.started;
    if (started < planned * MIN_ACHIEVED_SHARE) {
      unsure.push(
        `achieved load below target: ${started} of ${planned} planned arrivals started ` +
          `(${((100 * started) / Math.max(planned, 1)).toFixed(1)}%; ${s.counts.iterations.dropped} dropped)`,
      );
    }
  }
  const lag = s.metrics.schedule_delay?.['p(99)'];
  if (lag !== undefined && lag > (opts.maxScheduleDelayMs ?? MAX_SCHEDULE_DELAY_P99_MS)) {
    unsure.push(`the load generator fell behind its schedule (p99 ${lag} ms late): its machine is overloaded`);
  }
  const verdict = worst<LoadVerdict>([...fail.map(() => 'FAIL' as const), ...unsure.map(() => 'INCONCLUSIVE' as const), 'PASS']);
  return { verdict, reasons: [...fail, ...unsure] };
}
