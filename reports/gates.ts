/**
 * Promotion gates: pure functions of evidence, each returning a verdict with one sentence of
 * evidence and the observed numbers. Never fail-open: missing data, too few requests or too
 * little load is INCONCLUSIVE, a broken measurement is ERROR, and only a gate with enough
 * evidence and nothing wrong is PASS. The verdicts' order and exit codes live in lib/verdict.ts.
 */
import { worst, type Verdict } from '../lib/verdict.ts';
import type { ByConnection } from '../lib/evidence/join.ts';

export type { Verdict };

export interface Gate {
  name: string;
  verdict: Verdict;
  /** One sentence: what was observed against what was required. */
  evidence: string;
  observed?: Record<string, number | string | boolean | null>;
}

/** The worst gate decides; no gates at all is INCONCLUSIVE, not PASS. */
export function combine(gates: Gate[]): Verdict {
  return worst(gates.map((g) => g.verdict));
}

/** Wilson score interval for a proportion (95 % by default): honest bounds even at 0 failures. */
export function wilson(failures: number, n: number, z = 1.959964): { low: number; high: number } {
  if (n <= 0) return { low: 0, high: 1 };
  const p = failures / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  // At 0 (or n) failures the bound is exactly 0 (or 1); floating-point noise must not say otherwise.
  return { low: failures === 0 ? 0 : Math.max(0, centre - half), high: failures === n ? 1 : Math.min(1, centre + half) };
}

export interface ErrorRateGateInput {
  name: string;
  failed: number;
  total: number;
  /** Highest acceptable failure rate (0 for "no request may fail"). */
  maxRate: number;
  minRequests: number;
  /** The requests and failures by the connection they went out on (new or reused), counted apart in the evidence. */
  byConnection?: ByConnection;
}

/** "on new connections 0 of 1,200 failed, on reused 14 of 9,800" (unknown only when there are some). */
export function connectionEvidence(b: ByConnection): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const part = (k: keyof ByConnection, label: string) => `${label} ${n(b[k].failed)} of ${n(b[k].total)}`;
  return [part('new', 'on new connections'), part('reused', 'on reused'), b.unknown.total ? part('unknown', 'on unknown') : null]
    .filter(Boolean)
    .join(', ');
}

/**
 * Error-rate gate. FAIL when the observed rate is above `maxRate` (for 0: any failure);
 * INCONCLUSIVE when there are fewer than `minRequests` requests. Evidence carries the Wilson bound.
 */
export function errorRateGate(i: ErrorRateGateInput): Gate {
  const rate = i.total > 0 ? i.failed / i.total : null;
  const w = wilson(i.failed, i.total);
  const observed: Record<string, number | null> = {
    failed: i.failed,
    total: i.total,
    rate,
    wilson95_high: w.high,
    max_rate: i.maxRate,
    min_requests: i.minRequests,
  };
  if (i.byConnection) {
    for (const k of ['new', 'reused'] as const) {
      observed[`failed_${k}_connection`] = i.byConnection[k].failed;
      observed[`total_${k}_connection`] = i.byConnection[k].total;
    }
  }
  const fmt = (x: number) => `${(x * 100).toPrecision(2)}%`;
  if (i.total < i.minRequests) {
    return {
      name: i.name,
      verdict: 'INCONCLUSIVE',
      observed,
      evidence: `only ${i.total} requests (at least ${i.minRequests} needed to judge)`,
    };
  }
  const over = i.maxRate === 0 ? i.failed > 0 : (rate ?? 0) > i.maxRate;
  return {
    name: i.name,
    verdict: over ? 'FAIL' : 'PASS',
    observed,
    evidence:
      `${i.failed} of ${i.total} requests failed (${fmt(rate ?? 0)}; 95% upper bound ${fmt(w.high)}); allowed: ${i.maxRate === 0 ? 'none' : fmt(i.maxRate)}` +
      (i.byConnection ? `; ${connectionEvidence(i.byConnection)}` : ''),
  };
}

const pct = (x: number) => `${(x * 100).toPrecision(2)}%`;

export interface LoadAsPlannedInput {
  /** Arrivals started per second against the plan (open model). */
  achieved: number;
  target: number | null;
  dropped: number;
  /** The engine's own lateness, p99 ms (null when unmeasured). */
  scheduleDelayP99Ms: number | null;
  minAchievedShare: number;
  maxScheduleDelayP99Ms: number;
}

/** The load ran as planned: enough arrivals started, on time. A busy load generator's numbers are not evidence. */
export function loadAsPlannedGate(i: LoadAsPlannedInput, name = 'load as planned'): Gate {
  const share = i.target ? i.achieved / i.target : 0;
  const late = i.scheduleDelayP99Ms;
  const ok = share >= i.minAchievedShare && late !== null && late <= i.maxScheduleDelayP99Ms;
  return {
    name,
    verdict: ok ? 'PASS' : 'INCONCLUSIVE',
    evidence: `${i.achieved.toFixed(1)} of ${(i.target ?? 0).toFixed(1)} arrivals/s started (${(share * 100).toFixed(1)}%, need ${(i.minAchievedShare * 100).toFixed(0)}%), ${i.dropped} dropped; engine lateness p99 ${late?.toFixed(1) ?? '?'} ms (need <= ${i.maxScheduleDelayP99Ms})`,
    observed: { achieved: i.achieved, target: i.target, dropped: i.dropped, schedule_delay_p99_ms: late },
  };
}

export interface LatencyInput {
  /**
   * Each version's successful requests in the window: their count, p99 and, where known, p90. The
   * versions are compared at p90 when both have it (else p99), the candidate's p99 is held to the
   * objective.
   */
  versions: Record<string, { count: number; p99: number; p90?: number }>;
  /** Where the numbers come from, for the evidence (e.g. "the 41 s both versions answered"). */
  window?: string;
  baseline: string;
  candidate: string;
  p99Ms: number;
  /** The compared quantile of the candidate may be this many times the baseline's... */
  maxP99Ratio: number;
  /** ...unless they are less than this far apart (ms). */
  minP99DifferenceMs: number;
  minRequestsPerVersion: number;
}

/**
 * Latency: the candidate against an absolute objective (its p99) and against the baseline in the
 * same run (same machine, same load). The comparison is at p90 where both are known: with a few
 * hundred answers a p99 is the 2nd to 4th slowest request, which one GC pause or a busy machine
 * moves by tens of ms (a good release's p99 came out x2-x3 its baseline's in short windows), while
 * a p90 is the 20th to 40th; a release slower in steady state moves every quantile. Too few
 * requests of either is INCONCLUSIVE.
 */
export function latencyGate(i: LatencyInput, name = 'latency held'): Gate {
  const b = i.versions[i.baseline];
  const c = i.versions[i.candidate];
  const observed = {
    baseline_p99_ms: b?.p99 ?? null,
    candidate_p99_ms: c?.p99 ?? null,
    baseline_p90_ms: b?.p90 ?? null,
    candidate_p90_ms: c?.p90 ?? null,
    baseline_n: b?.count ?? 0,
    candidate_n: c?.count ?? 0,
    objective_p99_ms: i.p99Ms,
    max_ratio: i.maxP99Ratio,
  };
  if (!c || c.count < i.minRequestsPerVersion || !b || b.count < i.minRequestsPerVersion) {
    return {
      name,
      verdict: 'INCONCLUSIVE',
      observed,
      evidence: `too few answers to compare latency${i.window ? ` ${i.window}` : ''}: ${b?.count ?? 0} from ${i.baseline}, ${c?.count ?? 0} from ${i.candidate} (need ${i.minRequestsPerVersion} each)`,
    };
  }
  const q = b.p90 !== undefined && c.p90 !== undefined ? 'p90' : 'p99';
  const bq = q === 'p90' ? b.p90! : b.p99;
  const cq = q === 'p90' ? c.p90! : c.p99;
  const ratio = bq > 0 ? cq / bq : Infinity;
  const slower = cq - bq >= i.minP99DifferenceMs && ratio > i.maxP99Ratio;
  const overObjective = c.p99 > i.p99Ms;
  const verdict = slower || overObjective ? 'FAIL' : 'PASS';
  const both =
    q === 'p90'
      ? `p90 ${cq.toFixed(1)} ms (p99 ${c.p99.toFixed(1)}) for ${i.candidate} (n=${c.count}) vs ${bq.toFixed(1)} ms (p99 ${b.p99.toFixed(1)}) for ${i.baseline} (n=${b.count})`
      : `p99 ${c.p99.toFixed(1)} ms for ${i.candidate} (n=${c.count}) vs ${b.p99.toFixed(1)} ms for ${i.baseline} (n=${b.count})`;
  return {
    name,
    verdict,
    observed: { ...observed, compared: q, ratio: Number.isFinite(ratio) ? Math.round(ratio * 100) / 100 : null },
    evidence:
      `${both} ${i.window ?? 'in the same run'}: ` +
      `${q} ×${Number.isFinite(ratio) ? ratio.toFixed(2) : '∞'} (allowed ×${i.maxP99Ratio} unless under ${i.minP99DifferenceMs} ms apart); objective p99 <= ${i.p99Ms} ms` +
      (slower ? ': the new version is slower' : overObjective ? ': over the objective' : ''),
  };
}

export interface ColdStartInput {
  /** Latency (ms) of the requests new pods served in their cold start, per version, with their counts and those pods. */
  versions: Record<string, { count: number; p99: number; pods: number }>;
  candidate: string;
  /** The cold start's length after Ready (ms). */
  windowMs: number;
  /** The cold start's own budget: p99 at most this (ms). */
  p99Ms: number;
  minRequests: number;
}

/**
 * Cold start, judged apart from steady state: the new version's requests served by pods in their
 * first `windowMs` after Ready, against their own p99 budget. No new pod seen turning Ready, or too
 * few of its requests, is INCONCLUSIVE.
 */
export function coldStartGate(i: ColdStartInput, name = 'cold-start latency'): Gate {
  const c = i.versions[i.candidate];
  const secs = (i.windowMs / 1000).toFixed(1);
  const observed = {
    candidate_cold_p99_ms: c?.p99 ?? null,
    candidate_cold_n: c?.count ?? 0,
    new_pods: c?.pods ?? 0,
    window_ms: i.windowMs,
    budget_p99_ms: i.p99Ms,
  };
  if (!c || c.count < i.minRequests) {
    return {
      name,
      verdict: 'INCONCLUSIVE',
      observed,
      evidence: !c
        ? `no new pod of ${i.candidate} was seen turning Ready and then answering while the load ran, so its cold start was not measured`
        : `only ${c.count} answers from ${i.candidate}'s ${c.pods} new pods in their first ${secs} s of serving (need ${i.minRequests})`,
    };
  }
  const over = c.p99 > i.p99Ms;
  return {
    name,
    verdict: over ? 'FAIL' : 'PASS',
    observed,
    evidence: `p99 ${c.p99.toFixed(1)} ms for ${i.candidate} (n=${c.count}) in its ${c.pods} new pods' first ${secs} s of serving; budget p99 <= ${i.p99Ms} ms${over ? ': the new pods are too slow to start' : ''}`,
  };
}

/** Minimum requests for a zero-failure result to bound the failure rate at `bound` (Wilson 95 %). */
export function requestsToBound(bound: number): number {
  let lo = 1;
  let hi = 100_000_000;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (wilson(0, mid).high <= bound) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export { pct };
