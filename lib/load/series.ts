/**
 * Per-second series from the ledger: how many requests were due, dropped, ended well or badly, and
 * the latency of those that ended, second by second. Exact percentiles (sorted), computed once after
 * the run.
 */
import { ErrorClass } from './error-class.ts';
import { Outcome, type Ledger } from './ledger.ts';

export interface SecondOfRun {
  /** Second since the run's origin (0 = [0 s, 1 s)). */
  second: number;
  /** Requests due in this second (by scheduled time), dropped ones included. */
  scheduled: number;
  dropped: number;
  /** Requests that ended in this second (by end time). */
  succeeded: number;
  /** Failed, not counting requests the run itself aborted (`aborted`). */
  failed: number;
  aborted: number;
  /** http_req_duration of the requests that ended in this second (ms). */
  p50: number | null;
  p99: number | null;
  max: number | null;
}

function quantile(sorted: Float64Array, q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

/**
 * The second of the run a time falls in. A merged ledger's times are re-based on the shared start
 * instant after travelling rounded to µs, so a request scheduled at that instant can land a fraction
 * of a µs before it: such times count in second 0.
 */
function secondOf(t: number): number {
  return Math.max(0, Math.floor(t / 1000));
}

export function perSecondSeries(ledger: Ledger): SecondOfRun[] {
  const n = ledger.length;
  let last = 0;
  for (let r = 0; r < n; r++) {
    const end = ledger.endedAt(r);
    const t = Number.isNaN(end) ? ledger.scheduledAt(r) : end;
    if (t > last) last = t;
  }
  const seconds = n === 0 ? 0 : Math.floor(last / 1000) + 1;
  const out: SecondOfRun[] = [];
  for (let s = 0; s < seconds; s++)
    out.push({ second: s, scheduled: 0, dropped: 0, succeeded: 0, failed: 0, aborted: 0, p50: null, p99: null, max: null });
  const ended = new Uint32Array(seconds);
  for (let r = 0; r < n; r++) {
    const s = out[secondOf(ledger.scheduledAt(r))];
    s.scheduled++;
    const o = ledger.outcome(r);
    if (o === Outcome.dropped) {
      s.dropped++;
      continue;
    }
    const end = ledger.endedAt(r);
    if (Number.isNaN(end)) continue;
    const e = out[secondOf(end)];
    if (ledger.errorClass(r) === ErrorClass.aborted) {
      e.aborted++;
      continue;
    }
    if (o === Outcome.succeeded) e.succeeded++;
    else e.failed++;
    ended[e.second]++;
  }
  // Bucket durations by end second (counting sort), then sort each bucket.
  const offsets = new Uint32Array(seconds + 1);
  for (let s = 0; s < seconds; s++) offsets[s + 1] = offsets[s] + ended[s];
  const fill = offsets.slice(0, seconds);
  const durations = new Float64Array(offsets[seconds]);
  for (let r = 0; r < n; r++) {
    const end = ledger.endedAt(r);
    if (Number.isNaN(end) || ledger.outcome(r) === Outcome.dropped || ledger.errorClass(r) === ErrorClass.aborted) continue;
    durations[fill[secondOf(end)]++] = end - ledger.scheduledAt(r);
  }
  for (let s = 0; s < seconds; s++) {
    if (ended[s] === 0) continue;
    const bucket = durations.subarray(offsets[s], offsets[s + 1]).sort();
    out[s].p50 = Math.round(quantile(bucket, 0.5) * 1000) / 1000;
    out[s].p99 = Math.round(quantile(bucket, 0.99) * 1000) / 1000;
    out[s].max = Math.round(bucket[bucket.length - 1] * 1000) / 1000;
  }
  return out;
}
