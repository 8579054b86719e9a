/**
 * Gates on metric measurements (lib/metrics): pure functions, one set per source, the worst of all
 * sources decides (argo-rollouts' analysis: one provider per source, worst-of).
 *
 * Fail closed: a measurement in `error` turns every gate of its source into ERROR, `no-data` into
 * INCONCLUSIVE, so a source that could not measure can never let a release through; too few
 * requests, an unknown p99 or a version that served too little is INCONCLUSIVE, never PASS.
 *
 * - error rate: 5xx over requests against a maximum, with the Wilson 95 % bound (errorRateGate);
 * - p99 latency: against an absolute objective;
 * - canary vs baseline, when both versions served in the window (Kayenta/Argo style, a concurrent
 *   baseline rather than before/after): error rates by a one-sided Fisher's exact test at 95 %
 *   confidence (exact at any count, where a z-test needs large expected counts), and the p99 ratio
 *   with a minimum difference (no significance test: a histogram quantile has no samples to test).
 */
import type { Counts, Measurement } from '../lib/metrics/source.ts';
import { combine, errorRateGate, pct, type Gate, type Verdict } from './gates.ts';

export interface CompareOptions {
  baseline: string;
  candidate: string;
  /** Each version needs this many requests in the window, else the comparison is INCONCLUSIVE. */
  minRequestsPerVersion: number;
  /** One-sided significance level of the error-rate test. Default 0.05 (95 % confidence). */
  alpha?: number;
  /** An increase of the error rate smaller than this (absolute, e.g. 0.001) is not a regression. Default 0. */
  minErrorRateIncrease?: number;
  /** The candidate's p99 may be this many times the baseline's. Default 1.2. */
  maxP99Ratio?: number;
  /** …unless the two are closer than this many ms. Default 5. */
  minP99DifferenceMs?: number;
}

export interface MetricGateOptions {
  /** Highest acceptable 5xx rate (0: none may fail). */
  maxErrorRate: number;
  /** Fewer requests in the window is INCONCLUSIVE. */
  minRequests: number;
  /** p99 objective in ms; omitted: no p99 gate. */
  p99Ms?: number;
  /** The canary/baseline comparison, made when both versions served in the window (too few requests of either is INCONCLUSIVE). */
  compare?: CompareOptions;
}

/** The gates of one source's measurement. */
export function measurementGates(m: Measurement, o: MetricGateOptions): Gate[] {
  const names = gateNames(m.source, o);
  if (m.status !== 'ok') {
    const verdict: Verdict = m.status === 'error' ? 'ERROR' : 'INCONCLUSIVE';
    const why = m.status === 'error' ? 'the source failed' : 'the source had no data';
    return names.map((name) => ({ name, verdict, evidence: `${why}: ${m.message}`, observed: { status: m.status } }));
  }
  const gates: Gate[] = [];
  const rate = errorRateGate({
    name: names[0],
    failed: m.failed,
    total: m.total,
    maxRate: o.maxErrorRate,
    minRequests: o.minRequests,
  });
  gates.push({ ...rate, evidence: `${m.source}: ${rate.evidence}`, observed: { ...rate.observed, failed_4xx: m.failed4xx } });
  if (o.p99Ms !== undefined) gates.push(p99Gate(names[1], m, o.p99Ms, o.minRequests));
  // Compared only when both versions served in the window (a canary phase); after a full rollout
  // only the candidate serves, and the absolute gates above judge it.
  if (o.compare && (m.byVersion[o.compare.baseline]?.total ?? 0) > 0 && (m.byVersion[o.compare.candidate]?.total ?? 0) > 0) {
    gates.push(
      canaryErrorRateGate(`${m.source}: ${o.compare.candidate} vs ${o.compare.baseline} error rate`, m.byVersion, o.compare),
    );
    gates.push(canaryP99Gate(`${m.source}: ${o.compare.candidate} vs ${o.compare.baseline} p99`, m.byVersion, o.compare));
  }
  return gates;
}

/** Every source's gates and the worst verdict of them all; no measurement at all is INCONCLUSIVE. */
export function metricGates(
  measurements: Measurement[],
  o: MetricGateOptions | ((source: string) => MetricGateOptions),
): { gates: Gate[]; verdict: Verdict } {
  const gates = measurements.flatMap((m) => measurementGates(m, typeof o === 'function' ? o(m.source) : o));
  return { gates, verdict: combine(gates) };
}

function gateNames(source: string, o: MetricGateOptions): string[] {
  const names = [`${source}: error rate`];
  if (o.p99Ms !== undefined) names.push(`${source}: p99 latency`);
  return names;
}

function p99Gate(name: string, m: Counts & { source: string }, objectiveMs: number, minRequests: number): Gate {
  const observed = { p99_ms: m.p99Ms, objective_p99_ms: objectiveMs, total: m.total };
  if (m.total < minRequests)
    return {
      name,
      verdict: 'INCONCLUSIVE',
      observed,
      evidence: `${m.source}: only ${m.total} requests (at least ${minRequests} needed for a p99)`,
    };
  if (m.p99Ms === null)
    return { name, verdict: 'INCONCLUSIVE', observed, evidence: `${m.source}: p99 unknown (no latency data in the window)` };
  const over = m.p99Ms > objectiveMs;
  const shown = Number.isFinite(m.p99Ms) ? `${m.p99Ms.toFixed(1)} ms` : "above the histogram's highest bucket";
  return {
    name,
    verdict: over ? 'FAIL' : 'PASS',
    observed: { ...observed, p99_ms: Number.isFinite(m.p99Ms) ? m.p99Ms : null },
    evidence: `${m.source}: p99 ${shown} over ${m.total} requests; objective <= ${objectiveMs} ms${over ? ': over the objective' : ''}`,
  };
}

/** Too few requests of either version: the comparison cannot be made. */
function versionsOrWhy(byVersion: Record<string, Counts>, c: CompareOptions): { b: Counts; c: Counts } | string {
  const b = byVersion[c.baseline];
  const k = byVersion[c.candidate];
  const n = (x: Counts | undefined) => Math.round(x?.total ?? 0);
  if (!b || !k || n(b) < c.minRequestsPerVersion || n(k) < c.minRequestsPerVersion) {
    return `too few requests to compare: ${n(b)} from ${c.baseline}, ${n(k)} from ${c.candidate} (need ${c.minRequestsPerVersion} each; versions seen: ${Object.keys(byVersion).sort().join(', ') || 'none'})`;
  }
  return { b, c: k };
}

export function canaryErrorRateGate(name: string, byVersion: Record<string, Counts>, c: CompareOptions): Gate {
  const alpha = c.alpha ?? 0.05;
  const minIncrease = c.minErrorRateIncrease ?? 0;
  const v = versionsOrWhy(byVersion, c);
  if (typeof v === 'string')
    return { name, verdict: 'INCONCLUSIVE', evidence: v, observed: { test: 'fisher-exact-one-sided', alpha } };
  const fc = Math.round(v.c.failed);
  const nc = Math.round(v.c.total);
  const fb = Math.round(v.b.failed);
  const nb = Math.round(v.b.total);
  const rc = fc / nc;
  const rb = fb / nb;
  const p = fisherOneSided(fc, nc, fb, nb);
  const worse = p < alpha && rc - rb > minIncrease;
  const confidence = `${Math.round((1 - alpha) * 1000) / 10}%`;
  return {
    name,
    verdict: worse ? 'FAIL' : 'PASS',
    observed: {
      test: 'fisher-exact-one-sided',
      alpha,
      p_value: p,
      candidate_failed: fc,
      candidate_total: nc,
      baseline_failed: fb,
      baseline_total: nb,
      candidate_rate: rc,
      baseline_rate: rb,
      min_increase: minIncrease,
    },
    evidence:
      `${c.candidate} ${fc} of ${nc} failed (${pct(rc)}) vs ${c.baseline} ${fb} of ${nb} (${pct(rb)}); one-sided Fisher's exact test ` +
      `p = ${p.toPrecision(2)} (${confidence} confidence needs p < ${alpha})` +
      (worse
        ? `: ${c.candidate} fails more often`
        : p < alpha
          ? `, but the increase is under ${pct(minIncrease)}`
          : ': no significant increase'),
  };
}

export function canaryP99Gate(name: string, byVersion: Record<string, Counts>, c: CompareOptions): Gate {
  const maxRatio = c.maxP99Ratio ?? 1.2;
  const minDiff = c.minP99DifferenceMs ?? 5;
  const v = versionsOrWhy(byVersion, c);
  if (typeof v === 'string') return { name, verdict: 'INCONCLUSIVE', evidence: v };
  const pb = v.b.p99Ms;
  const pc = v.c.p99Ms;
  const observed = { baseline_p99_ms: pb, candidate_p99_ms: pc, max_ratio: maxRatio, min_difference_ms: minDiff };
  if (pb === null || pc === null) {
    return {
      name,
      verdict: 'INCONCLUSIVE',
      observed,
      evidence: `p99 unknown for ${pb === null ? c.baseline : c.candidate}: cannot compare latency`,
    };
  }
  const ratio = pb > 0 ? pc / pb : pc > 0 ? Infinity : 1;
  const slower = pc - pb >= minDiff && ratio > maxRatio;
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '∞');
  return {
    name,
    verdict: slower ? 'FAIL' : 'PASS',
    observed: { ...observed, ratio: Number.isFinite(ratio) ? Math.round(ratio * 100) / 100 : null },
    evidence:
      `p99 ${f(pc)} ms for ${c.candidate} vs ${f(pb)} ms for ${c.baseline} in the same window: ×${Number.isFinite(ratio) ? ratio.toFixed(2) : '∞'} ` +
      `(allowed ×${maxRatio} unless under ${minDiff} ms apart; a ratio of histogram quantiles, no significance test)${slower ? `: ${c.candidate} is slower` : ''}`,
  };
}

/**
 * One-sided Fisher's exact test: the probability, with both versions equally likely to fail, that
 * the candidate gets `fc` or more of the `fc + fb` failures among `nc + nb` requests
 * (hypergeometric upper tail). Small p: the candidate fails more often than chance explains.
 */
export function fisherOneSided(fc: number, nc: number, fb: number, nb: number): number {
  const N = nc + nb;
  const K = fc + fb;
  const hi = Math.min(nc, K);
  const lo = Math.max(0, nc - (N - K));
  if (fc <= lo) return 1;
  const logDenominator = logChoose(N, nc);
  const terms: number[] = [];
  for (let k = fc; k <= hi; k++) terms.push(logChoose(K, k) + logChoose(N - K, nc - k) - logDenominator);
  const max = Math.max(...terms);
  const p = Math.exp(max) * terms.reduce((s, t) => s + Math.exp(t - max), 0);
  return Math.min(1, Math.max(0, p));
}

function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: ~15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  x -= 1;
  let a = c[0];
  const t = x + g + 0.5;
  for (let i = 1; i < g + 2; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}
