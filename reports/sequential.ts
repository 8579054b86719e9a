/**
 * The early stop of a long post-deploy watch (the seed: "Monitor for 30+ minutes", error rate under
 * 1 %): judge after every interval, stop and FAIL as soon as the evidence is strong enough, PASS only
 * at the end of the planned window. Not wired into the gate yet; the API:
 *
 * ```ts
 * const rule = new SequentialErrorRateRule({ maxErrorRate: 0.01, plannedLooks: 30 }); // 30 one-minute looks
 * for each interval:   const s = rule.look({ requests, errors });
 *                      if (s.decision === 'STOP-FAIL') roll back now (s.evidence says why)
 * after the last look: s.decision is PASS, FAIL or INCONCLUSIVE (the fixed-window rule of errorRateGate)
 * ```
 * `sequentialDecision(intervals, options)` does the same over a list and returns the last state.
 *
 * The rule: a mixture sequential probability ratio test (mSPRT) for a binomial rate, one-sided.
 * H0: the release's error rate p is at most `maxErrorRate` (p0). For an alternative q > p0 the
 * likelihood ratio after e errors in n requests is (q/p0)^e ((1-q)/(1-p0))^(n-e); the statistic is
 * the average of these over a fixed set of alternatives (by default q = 1.5, 2, 3, 5, 10 and 20
 * times p0, equal weights). For every true p <= p0 each ratio, hence their mixture, is a
 * nonnegative supermartingale with mean at most 1 (E[(q/p0)^X ((1-q)/(1-p0))^(1-X)] = 1 at p = p0
 * and decreases as p falls, since q > p0), so by Ville's inequality the probability that it EVER
 * reaches 1/alpha is at most alpha: the bound holds after any number of looks, at any interval sizes,
 * and even if the window is stopped or extended on the way (Wald 1945 for the SPRT; Robbins 1970 for
 * mixtures; Johari, Koomen, Pekelis and Walsh, "Always Valid Inference", Operations Research 2022, for
 * the mSPRT as used in A/B testing; Howard, Ramdas, McAuliffe and Sekhon, Annals of Statistics 2021,
 * for confidence sequences built this way).
 *
 * Why not an alpha-spending rule (Pocock, O'Brien–Fleming, Lan–DeMets): those need the maximum
 * information fixed in advance and lean on a normal approximation of the error rate at each look;
 * here traffic per minute varies, and at a 1 % threshold a minute's few hundred requests hold a
 * handful of errors, where the normal approximation is poor. The mSPRT uses the exact binomial
 * likelihood, needs no schedule of looks, and its guarantee does not depend on how many looks are
 * taken. What it costs: with no look schedule to spend alpha on, it is conservative at the edge (a
 * release exactly at the threshold is stopped far less often than alpha; the tests measure it) and a
 * release only slightly worse than the threshold is caught at the end rather than early.
 *
 * With `maxErrorRate` 0 (no error allowed) the first error stops the watch: under H0 none can happen.
 */
import { wilson } from './gates.ts';

export type SequentialDecision = 'STOP-FAIL' | 'CONTINUE' | 'PASS' | 'FAIL' | 'INCONCLUSIVE';

export interface SequentialOptions {
  /** The threshold p0: a release whose true error rate is at most this must pass. */
  maxErrorRate: number;
  /** The window's looks (intervals); the last one decides PASS/FAIL/INCONCLUSIVE if nothing stopped earlier. */
  plannedLooks: number;
  /** Bound on the probability that a release at or under the threshold is ever stopped (default 0.05). */
  alpha?: number;
  /** At the end, fewer requests than this is INCONCLUSIVE (default 300, as gates.deploy.minRequests). */
  minRequests?: number;
  /** The alternatives of the mixture, as multiples of maxErrorRate above 1 (default 1.5, 2, 3, 5, 10, 20). */
  alternatives?: number[];
}

export interface IntervalCounts {
  requests: number;
  errors: number;
}

export interface SequentialState {
  /** Looks taken so far (1-based after the first). */
  look: number;
  plannedLooks: number;
  requests: number;
  errors: number;
  /** log of the mixture likelihood ratio; STOP-FAIL when it reaches `logThreshold` = log(1/alpha). */
  logLikelihoodRatio: number;
  logThreshold: number;
  decision: SequentialDecision;
  /** One sentence: what was seen against what is needed. */
  evidence: string;
}

const pct = (x: number) => `${(x * 100).toPrecision(2)}%`;

function logSumExp(xs: number[]): number {
  const m = Math.max(...xs);
  if (m === -Infinity || m === Infinity) return m;
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
}

export class SequentialErrorRateRule {
  readonly p0: number;
  readonly alpha: number;
  readonly plannedLooks: number;
  readonly minRequests: number;
  readonly alternatives: number[];
  #state: SequentialState;

  constructor(o: SequentialOptions) {
    if (!(o.maxErrorRate >= 0 && o.maxErrorRate < 1)) throw new RangeError('maxErrorRate must be at least 0 and below 1');
    if (!Number.isInteger(o.plannedLooks) || o.plannedLooks < 1)
      throw new RangeError('plannedLooks must be a whole number of at least 1');
    const alpha = o.alpha ?? 0.05;
    if (!(alpha > 0 && alpha < 1)) throw new RangeError('alpha must be between 0 and 1');
    const multiples = o.alternatives ?? [1.5, 2, 3, 5, 10, 20];
    if (!multiples.length || multiples.some((m) => !(m > 1)))
      throw new RangeError('alternatives are multiples of maxErrorRate above 1');
    this.p0 = o.maxErrorRate;
    this.alpha = alpha;
    this.plannedLooks = o.plannedLooks;
    this.minRequests = o.minRequests ?? 300;
    // Alternatives at or above 1 are capped just under it (a rate of 1 would make one success infinitely unlikely).
    this.alternatives = [...new Set(multiples.map((m) => Math.min(m * this.p0, 1 - 1e-9)))].filter((q) => q > this.p0);
    this.#state = {
      look: 0,
      plannedLooks: o.plannedLooks,
      requests: 0,
      errors: 0,
      logLikelihoodRatio: 0,
      logThreshold: Math.log(1 / alpha),
      decision: 'CONTINUE',
      evidence: 'nothing judged yet',
    };
  }

  get state(): SequentialState {
    return { ...this.#state };
  }

  /** log of the mixture likelihood ratio after `errors` of `requests`. */
  logLikelihoodRatio(requests: number, errors: number): number {
    if (this.p0 === 0) return errors > 0 ? Infinity : 0;
    const ok = requests - errors;
    const terms = this.alternatives.map(
      (q) => errors * Math.log(q / this.p0) + ok * Math.log((1 - q) / (1 - this.p0)) - Math.log(this.alternatives.length),
    );
    return logSumExp(terms);
  }

  /** One more interval's counts; returns the state after it. A stopped or finished watch stays as it is. */
  look(i: IntervalCounts): SequentialState {
    const s = this.#state;
    if (s.decision !== 'CONTINUE') return this.state;
    if (!Number.isInteger(i.requests) || !Number.isInteger(i.errors) || i.requests < 0 || i.errors < 0 || i.errors > i.requests)
      throw new RangeError(
        `interval counts must be whole numbers with 0 <= errors <= requests (got ${i.errors} of ${i.requests})`,
      );
    s.look++;
    s.requests += i.requests;
    s.errors += i.errors;
    s.logLikelihoodRatio = this.logLikelihoodRatio(s.requests, s.errors);
    const rate = s.requests ? s.errors / s.requests : 0;
    const seen = `${s.errors} of ${s.requests} requests failed (${pct(rate)}) after look ${s.look} of ${s.plannedLooks}`;
    if (s.logLikelihoodRatio >= s.logThreshold) {
      s.decision = 'STOP-FAIL';
      s.evidence = `${seen}: the error rate is above ${pct(this.p0)} with confidence ${pct(1 - this.alpha)} valid under repeated looks (mixture likelihood ratio ${fmtRatio(s.logLikelihoodRatio)} >= ${fmtRatio(s.logThreshold)}): stop now`;
    } else if (s.look < s.plannedLooks) {
      s.decision = 'CONTINUE';
      s.evidence = `${seen}: not enough to stop (likelihood ratio ${fmtRatio(s.logLikelihoodRatio)} < ${fmtRatio(s.logThreshold)}); a PASS needs the whole window`;
    } else {
      const w = wilson(s.errors, s.requests);
      const tail = `95% upper bound ${pct(w.high)}; allowed: ${this.p0 === 0 ? 'none' : pct(this.p0)}`;
      if (s.requests < this.minRequests) {
        s.decision = 'INCONCLUSIVE';
        s.evidence = `${seen}: the window is over with fewer than ${this.minRequests} requests`;
      } else if (this.p0 === 0 ? s.errors > 0 : rate > this.p0) {
        s.decision = 'FAIL';
        s.evidence = `${seen}: the window is over and the error rate is above the threshold (${tail})`;
      } else {
        s.decision = 'PASS';
        s.evidence = `${seen}: the whole window passed (${tail})`;
      }
    }
    return this.state;
  }
}

function fmtRatio(logR: number): string {
  if (logR === Infinity) return '∞';
  const r = Math.exp(logR);
  return r >= 1e6 ? r.toExponential(1) : r.toFixed(r < 10 ? 2 : 0);
}

/** Runs the rule over the intervals in order (stopping at a STOP-FAIL) and returns the last state. */
export function sequentialDecision(intervals: Iterable<IntervalCounts>, o: SequentialOptions): SequentialState {
  const rule = new SequentialErrorRateRule(o);
  let s = rule.state;
  for (const i of intervals) {
    s = rule.look(i);
    if (s.decision !== 'CONTINUE') break;
  }
  return s;
}
