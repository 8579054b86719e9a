/**
 * Promotion gates and the verdict they add up to. Four outcomes, never fail-open: missing data,
 * too few requests or too little load is INCONCLUSIVE, a broken measurement is ERROR, and only a
 * run with enough evidence and no failure is PASS.
 */
export type Verdict = 'PASS' | 'FAIL' | 'INCONCLUSIVE' | 'ERROR';

export interface Gate {
  name: string;
  verdict: Verdict;
  /** One sentence: what was observed against what was required. */
  evidence: string;
  observed?: Record<string, number | string | null>;
}

const RANK: Record<Verdict, number> = { PASS: 0, INCONCLUSIVE: 1, FAIL: 2, ERROR: 3 };

/** The worst gate decides; no gates at all is INCONCLUSIVE, not PASS. */
export function combine(gates: Gate[]): Verdict {
  if (gates.length === 0) return 'INCONCLUSIVE';
  return gates.reduce<Verdict>((v, g) => (RANK[g.verdict] > RANK[v] ? g.verdict : v), 'PASS');
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
}

/**
 * Error-rate gate. FAIL when the observed rate is above `maxRate` (for 0: any failure);
 * INCONCLUSIVE when there are fewer than `minRequests` requests. Evidence carries the Wilson bound.
 */
export function errorRateGate(i: ErrorRateGateInput): Gate {
  const rate = i.total > 0 ? i.failed / i.total : null;
  const w = wilson(i.failed, i.total);
  const observed = { failed: i.failed, total: i.total, rate, wilson95_high: w.high, max_rate: i.maxRate, min_requests: i.minRequests };
  const fmt = (x: number) => `${(x * 100).toPrecision(2)}%`;
  if (i.total < i.minRequests) {
    return { name: i.name, verdict: 'INCONCLUSIVE', observed, evidence: `only ${i.total} requests (at least ${i.minRequests} needed to judge)` };
  }
  const over = i.maxRate === 0 ? i.failed > 0 : (rate ?? 0) > i.maxRate;
  return {
    name: i.name, verdict: over ? 'FAIL' : 'PASS', observed,
    evidence: `${i.failed} of ${i.total} requests failed (${fmt(rate ?? 0)}; 95% upper bound ${fmt(w.high)}); allowed: ${i.maxRate === 0 ? 'none' : fmt(i.maxRate)}`,
  };
}
