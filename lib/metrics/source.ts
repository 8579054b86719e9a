/**
 * Metric sources: one interface, one provider per source (argo-rollouts' analysis has the same
 * shape), so a post-deploy gate can judge the same window from the harness's own ledger, a
 * Prometheus server, Google Managed Prometheus and Cloud Monitoring, and take the worst.
 *
 * Fail closed. A source that cannot be reached, answers an error, returns no series or fewer
 * samples than it needs does not throw and does not return zeros: its measurement says `error` or
 * `no-data` with one sentence naming the source and the query, and carries no numbers at all (the
 * type has none to read), so no gate built on it can PASS.
 */

/** The interval judged: requests that ended in [from, to). */
export interface MetricWindow {
  from: Date;
  to: Date;
}

export type MeasurementStatus = 'ok' | 'no-data' | 'error';

/** What a source saw of the workload over the window (or of one app version). */
export interface Counts {
  /** Requests answered (or, for the client, ended) in the window. */
  total: number;
  /** Server errors: 5xx answers (the client also counts requests that got no answer: resets, timeouts). */
  failed: number;
  /** 4xx answers, counted apart (null when the source was not asked for them). */
  failed4xx: number | null;
  /** 99th percentile latency over the window in milliseconds; null when the source cannot say. */
  p99Ms: number | null;
}

/** What a measurement was made from: enough to re-run the queries and check the numbers. */
export interface MeasurementEvidence {
  source: string;
  /** The queries sent as they were sent (PromQL expressions, Cloud Monitoring filters, the ledger selection). */
  queries: string[];
  window: { from: string; to: string; stepSeconds: number | null };
  /** Data points the numbers were computed from (all series, all queries' points that were finite). */
  samples: number;
  /** A few named series over the window, e.g. `requests` and `failed` per step: `[epoch ms, value]`, at most {@link MAX_POINTS} each. */
  points: Record<string, Array<[number, number]>>;
}

interface MeasurementBase {
  /** The source's name (`client`, `promql`, `gmp`, `cloud-monitoring`, or the name it was given). */
  source: string;
  window: MetricWindow;
  /** One sentence: what was measured, or what went wrong, naming the source and the query. */
  message: string;
  evidence: MeasurementEvidence;
}

export interface OkMeasurement extends MeasurementBase, Counts {
  status: 'ok';
  /** The same counts per app version (label `version`), for a canary/baseline comparison; {} when the source has no version. */
  byVersion: Record<string, Counts>;
}

/** A measurement without numbers: the source failed (`error`) or had nothing to say (`no-data`). */
export interface FailedMeasurement extends MeasurementBase {
  status: 'error' | 'no-data';
}

export type Measurement = OkMeasurement | FailedMeasurement;

/** `client` (the ledger), or the name a provider registers in providers.ts (`promql`, `gmp`, `cloud-monitoring`, ...). */
export type SourceKind = string;

/**
 * One provider per metric source. `measure` resolves with an `error` or `no-data` measurement for
 * anything the source does wrong (unreachable, an error answer, a timeout, no series, too few
 * samples); it rejects only when `signal` aborts (the caller gave up: there is no verdict to give).
 *
 * Call it once the window is over and the source has caught up (for Prometheus: two scrape
 * intervals after `to`, or the last step reads a partial scrape).
 */
export interface MetricSource {
  readonly kind: SourceKind;
  /** Unique among the sources of one gate; defaults to the kind. */
  readonly name: string;
  measure(window: MetricWindow, signal?: AbortSignal): Promise<Measurement>;
  /** Releases connections (gRPC channels); a no-op for sources that hold none. */
  close(): Promise<void>;
}

/** At most this many points per evidence series (longer series are merged into wider buckets). */
export const MAX_POINTS = 300;

/** Default time a source may take for one measurement, all its queries together. */
export const DEFAULT_TIMEOUT_MS = 10_000;

export function checkWindow(w: MetricWindow): void {
  const from = w.from.getTime();
  const to = w.to.getTime();
  if (!Number.isFinite(from) || !Number.isFinite(to)) throw new RangeError('metric window: from and to must be valid dates');
  if (to <= from) throw new RangeError(`metric window: to (${w.to.toISOString()}) must be after from (${w.from.toISOString()})`);
}

export function evidenceWindow(w: MetricWindow, stepSeconds: number | null): MeasurementEvidence['window'] {
  return { from: w.from.toISOString(), to: w.to.toISOString(), stepSeconds };
}

/**
 * Bounds a series to `max` points by merging runs of consecutive points: each merged point has the
 * last timestamp of its run and the sum (counts) or the maximum (latencies) of its values.
 */
export function boundPoints(points: Array<[number, number]>, merge: 'sum' | 'max', max = MAX_POINTS): Array<[number, number]> {
  const sorted = [...points].sort((a, b) => a[0] - b[0]);
  if (sorted.length <= max) return sorted;
  const size = Math.ceil(sorted.length / max);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < sorted.length; i += size) {
    const run = sorted.slice(i, i + size);
    const v = merge === 'sum' ? run.reduce((s, p) => s + p[1], 0) : Math.max(...run.map((p) => p[1]));
    out.push([run[run.length - 1][0], v]);
  }
  return out;
}

/** Aborts when the caller's signal does or after `timeoutMs`, whichever comes first. */
export function deadlineSignal(timeoutMs: number, signal?: AbortSignal): AbortSignal {
  const t = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([signal, t]) : t;
}

/** True when `err` is the caller's abort (not our own timeout): measure() rethrows those. */
export function abortedByCaller(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

export function failed(
  status: 'error' | 'no-data',
  source: string,
  window: MetricWindow,
  message: string,
  evidence: Omit<MeasurementEvidence, 'source'>,
): FailedMeasurement {
  return { status, source, window, message, evidence: { source, ...evidence } };
}

/** A query quoted for a message, shortened so one sentence stays readable. */
export function quote(query: string, max = 300): string {
  const q = query.replace(/\s+/g, ' ').trim();
  return `\`${q.length > max ? `${q.slice(0, max)}…` : q}\``;
}

export { describeError } from '../errors.ts';
