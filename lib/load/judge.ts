/**
 * The end of a run, shared by the engine and by a distributed run's merge (one implementation of the
 * numbers): statistics per threshold, the summary, threshold results and the assessment.
 */
import { assess, type Assessment } from './assessment.ts';
import type { Ledger } from './ledger.ts';
import { RequestStatistics } from './statistics.ts';
import { buildSummary, type LoadSummary, type SummaryInput } from './summary.ts';
import { evaluate, tagFilter, type Threshold, type ThresholdResult } from './thresholds.ts';

export interface ThresholdStatistics {
  t: Threshold;
  /** The run's statistics when the threshold has no tag filter, else its own. */
  stats: RequestStatistics;
}

/** One statistics object per threshold with tags; thresholds without tags share `all`. */
export function thresholdStatistics(thresholds: Threshold[], all: RequestStatistics): ThresholdStatistics[] {
  return thresholds.map((t) => {
    const filter = tagFilter(t.tags);
    return { t, stats: filter ? new RequestStatistics(filter) : all };
  });
}

/** Feeds ledger rows to the run's statistics and to every threshold's own. */
export function ingestRows(
  ledger: Ledger,
  rows: ArrayLike<number>,
  all: RequestStatistics,
  thresholds: ThresholdStatistics[],
): void {
  for (let i = 0; i < rows.length; i++) all.add(ledger, rows[i]);
  for (const { stats } of thresholds) {
    if (stats !== all) for (let i = 0; i < rows.length; i++) stats.add(ledger, rows[i]);
  }
}

export interface JudgeInput extends SummaryInput {
  thresholds: ThresholdStatistics[];
  minRequests: number;
  maxScheduleDelayMs?: number;
  abortedByThreshold: boolean;
  /** Reasons the caller already knows make the run INCONCLUSIVE. */
  inconclusive?: string[];
}

export function judgeRun(i: JudgeInput): { summary: LoadSummary; thresholds: ThresholdResult[]; assessment: Assessment } {
  const ended = i.iterations.completed + i.iterations.failed;
  const thresholds = i.thresholds.map(({ t, stats }) => evaluate(t, stats, ended, i.endedAt));
  const summary = buildSummary(i);
  const assessment = assess(summary, thresholds, {
    minRequests: i.minRequests,
    abortedByThreshold: i.abortedByThreshold,
    maxScheduleDelayMs: i.maxScheduleDelayMs,
    inconclusive: i.inconclusive,
  });
  return { summary, thresholds, assessment };
}
