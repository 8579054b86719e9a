/**
 * The PromQL source: the Prometheus HTTP API's `/api/v1/query_range`, against a Prometheus server
 * or anything that speaks its API (Google Managed Prometheus: see gmp.ts).
 *
 * Counts are `increase()` over the whole window, evaluated at its end: requests, 5xx and 4xx (by
 * `status` class), per app version (`sum by (version)`); the raw samples behind them are counted
 * with `count_over_time()` (too few is no-data). p99 is `histogram_quantile(0.99, …rate(…_bucket[<window>]))`
 * at the window's end. Per-step `increase()` series (requests, 5xx) are kept as evidence only.
 *
 * Why one range and not a sum of per-step increases: increase() extrapolates each range to its
 * edges, and the increments that fall between two steps' last and first samples are only
 * recovered by that extrapolation. Measured against the license API (whose /metrics snapshot is up
 * to 1 s old, so the data moves in 2 s jumps at a 1 s scrape), summed 5 s steps counted 343 of 400
 * requests; one range over the window has that error only at its two edges.
 *
 * Known limits: a series born inside the window (a new pod, a pod's first 500) loses the
 * increments of its first scrape, and the edges are extrapolated, so counts are close to, not
 * equal to, what was sent (the tests measure how close).
 */
import { PROMQL_SELECTOR_FLAG, SourceUsageError, type MetricSourceProvider } from './provider.ts';
import {
  abortedByCaller,
  boundPoints,
  checkWindow,
  deadlineSignal,
  DEFAULT_TIMEOUT_MS,
  describeError,
  evidenceWindow,
  failed,
  quote,
  type Counts,
  type Measurement,
  type MetricSource,
  type MetricWindow,
  type SourceKind,
} from './source.ts';

/**
 * Query templates. Placeholders: `$selector` (the label matchers, without braces), `$window` (the
 * whole window as a PromQL duration, e.g. `300000ms`), `$step` (one evidence step). Every query but
 * the per-step ones is evaluated once, at the window's end: the counts must return one increase per
 * version over `$window`, `samples` the raw samples behind them, the p99 queries seconds. The
 * per-step queries are evaluated every step for the evidence. `null` turns a query off (`requests`
 * and `failed` cannot be).
 */
export interface PromqlQueries {
  requests: string;
  failed: string;
  failed4xx: string | null;
  samples: string | null;
  p99: string | null;
  p99ByVersion: string | null;
  requestsPerStep: string | null;
  failedPerStep: string | null;
}

/** Excludes the scrapes and the probes: they are not the workload's traffic. */
export const DEFAULT_PROMQL_SELECTOR = 'route!~"/metrics|/health/.*"';

export const DEFAULT_PROMQL_QUERIES: PromqlQueries = {
  requests: 'sum by (version) (increase(http_requests_total{$selector}[$window]))',
  failed: 'sum by (version) (increase(http_requests_total{$selector,status=~"5.."}[$window]))',
  failed4xx: 'sum by (version) (increase(http_requests_total{$selector,status=~"4.."}[$window]))',
  samples: 'sum(count_over_time(http_requests_total{$selector}[$window]))',
  p99: 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{$selector}[$window])))',
  p99ByVersion: 'histogram_quantile(0.99, sum by (le, version) (rate(http_request_duration_seconds_bucket{$selector}[$window])))',
  requestsPerStep: 'sum(increase(http_requests_total{$selector}[$step]))',
  failedPerStep: 'sum(increase(http_requests_total{$selector,status=~"5.."}[$step]))',
};

export interface PromqlSourceOptions {
  /** Prometheus' base URL, e.g. `http://127.0.0.1:9090` (the API paths are appended). */
  baseUrl: string;
  name?: string;
  /** Label matchers for the workload, without braces. Default {@link DEFAULT_PROMQL_SELECTOR}. */
  selector?: string;
  /** Replaces some or all of {@link DEFAULT_PROMQL_QUERIES}. */
  queries?: Partial<PromqlQueries>;
  /** Step of the evidence series (at least two scrape intervals). Default 30 s. */
  stepSeconds?: number;
  /** The label that names the app version. Default `version`. */
  versionLabel?: string;
  /** Fewer raw samples than this behind the counts (the `samples` query) is no-data. Default 2. */
  minSamples?: number;
  /** For the whole measurement (all queries). Default 10 s. */
  timeoutMs?: number;
  /** Headers for every request (GMP's bearer token); a rejection is an `error` measurement. */
  headers?: (signal: AbortSignal) => Promise<Record<string, string>>;
  /** The kind reported (gmp.ts reuses this source). */
  kind?: SourceKind;
  /** Said after an HTTP 401/403, e.g. what credentials are needed. */
  authHint?: string;
}

interface Series {
  metric: Record<string, string>;
  values: Array<[number, string]>;
}

class QueryError extends Error {}

export class PromqlSource implements MetricSource {
  readonly kind: SourceKind;
  readonly name: string;
  readonly #o: Required<Omit<PromqlSourceOptions, 'headers' | 'name' | 'kind' | 'authHint' | 'queries'>> & {
    queries: PromqlQueries;
  };
  readonly #headers?: PromqlSourceOptions['headers'];
  readonly #authHint?: string;

  constructor(o: PromqlSourceOptions) {
    let base: URL;
    try {
      base = new URL(o.baseUrl);
    } catch {
      throw new RangeError(`promql: base URL ${JSON.stringify(o.baseUrl)} is not a URL (e.g. http://127.0.0.1:9090)`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new RangeError(`promql: base URL ${o.baseUrl} must be http or https`);
    this.kind = o.kind ?? 'promql';
    this.name = o.name ?? this.kind;
    const stepSeconds = o.stepSeconds ?? 30;
    if (!(stepSeconds > 0)) throw new RangeError(`${this.name}: stepSeconds must be positive`);
    this.#o = {
      baseUrl: o.baseUrl.replace(/\/+$/, ''),
      selector: o.selector ?? DEFAULT_PROMQL_SELECTOR,
      queries: { ...DEFAULT_PROMQL_QUERIES, ...o.queries },
      stepSeconds,
      versionLabel: o.versionLabel ?? 'version',
      minSamples: o.minSamples ?? 2,
      timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    };
    this.#headers = o.headers;
    this.#authHint = o.authHint;
  }

  /** The query as sent, for a window split into steps of `stepMs`. */
  expand(template: string, stepMs: number, windowMs: number): string {
    return (
      template
        .replaceAll('$selector', this.#o.selector)
        .replaceAll('$step', `${stepMs}ms`)
        .replaceAll('$window', `${windowMs}ms`)
        // An empty selector leaves `{,status=…}`.
        .replace(/\{\s*,/g, '{')
    );
  }

  async measure(window: MetricWindow, signal?: AbortSignal): Promise<Measurement> {
    checkWindow(window);
    const o = this.#o;
    const from = window.from.getTime();
    const to = window.to.getTime();
    const windowMs = to - from;
    // Evidence steps that tile the window exactly: evaluated at from+step, …, to, each covering (t-step, t].
    const k = Math.max(1, Math.round(windowMs / (o.stepSeconds * 1000)));
    const stepMs = Math.max(1, Math.round(windowMs / k));
    const start = to - (k - 1) * stepMs;
    const x = (t: string | null) => (t === null ? null : this.expand(t, stepMs, windowMs));
    const q = {
      requests: x(o.queries.requests)!,
      failed: x(o.queries.failed)!,
      failed4xx: x(o.queries.failed4xx),
      samples: x(o.queries.samples),
      p99: x(o.queries.p99),
      p99ByVersion: x(o.queries.p99ByVersion),
      requestsPerStep: x(o.queries.requestsPerStep),
      failedPerStep: x(o.queries.failedPerStep),
    };
    const queries = Object.values(q).filter((v): v is string => v !== null);
    const ev = {
      queries,
      window: evidenceWindow(window, stepMs / 1000),
      samples: 0,
      points: {} as Record<string, Array<[number, number]>>,
    };
    const deadline = deadlineSignal(o.timeoutMs, signal);
    let headers: Record<string, string>;
    try {
      headers = this.#headers ? await this.#headers(deadline) : {};
    } catch (err) {
      if (abortedByCaller(signal)) throw signal!.reason;
      const why = deadline.aborted ? `no token within ${o.timeoutMs / 1000} s` : describeError(err);
      return failed(
        'error',
        this.name,
        window,
        `${this.name}: cannot authenticate to ${o.baseUrl} (${why}); no query was sent (first: ${quote(q.requests)})`,
        ev,
      );
    }
    // Evaluated once at the window's end (a one-point range), or at every step.
    const atEnd = (query: string | null) =>
      query === null ? null : this.#queryRange(query, to, to, 1000, headers, deadline, signal);
    const perStep = (query: string | null) =>
      query === null ? null : this.#queryRange(query, start, to, stepMs, headers, deadline, signal);
    let a: Array<Series[] | null>;
    try {
      a = await Promise.all([
        atEnd(q.requests),
        atEnd(q.failed),
        atEnd(q.failed4xx),
        atEnd(q.samples),
        atEnd(q.p99),
        atEnd(q.p99ByVersion),
        perStep(q.requestsPerStep),
        perStep(q.failedPerStep),
      ]);
    } catch (err) {
      if (abortedByCaller(signal)) throw signal!.reason;
      return failed(
        'error',
        this.name,
        window,
        err instanceof QueryError ? err.message : `${this.name}: query ${quote(q.requests)} failed: ${describeError(err)}`,
        ev,
      );
    }
    const [requests, failures, failures4xx, sampleCount, p99, p99ByVersion, requestSteps, failedSteps] = a as [
      Series[],
      Series[],
      ...Array<Series[] | null>,
    ];
    const label = o.versionLabel;
    const series = (list: Series[] | null) => {
      const m = new Map<number, number>();
      for (const s of list ?? [])
        for (const [t, v] of s.values) {
          const n = parse(v);
          if (Number.isFinite(n)) m.set(t * 1000, (m.get(t * 1000) ?? 0) + n);
        }
      return boundPoints([...m.entries()], 'sum');
    };
    if (requestSteps) ev.points.requests = series(requestSteps);
    if (failedSteps) ev.points.failed = series(failedSteps);
    const finite = (list: Series[] | null) =>
      (list ?? []).flatMap((s) => s.values.map(([, v]) => parse(v))).filter(Number.isFinite);
    // The raw samples behind the counts; without a samples query, the count points themselves.
    const samples = q.samples === null ? finite(requests).length : finite(sampleCount).reduce((n, v) => n + v, 0);
    ev.samples = samples;
    if (finite(requests).length === 0) {
      return failed(
        'no-data',
        this.name,
        window,
        `${this.name}: query ${quote(q.requests)} returned no series between ${window.from.toISOString()} and ${window.to.toISOString()} (is the selector right, and is the workload scraped?)`,
        ev,
      );
    }
    if (samples < o.minSamples) {
      return failed(
        'no-data',
        this.name,
        window,
        `${this.name}: query ${quote(q.samples ?? q.requests)} found ${samples} samples, fewer than the ${o.minSamples} needed (window too short for the scrape interval, or scrapes missing)`,
        ev,
      );
    }
    const byVersion: Record<string, Counts> = {};
    const slot = (v: string) => (byVersion[v] ??= { total: 0, failed: 0, failed4xx: failures4xx ? 0 : null, p99Ms: null });
    const sum = (list: Series[] | null, add: (version: string | undefined, n: number) => void) => {
      for (const s of list ?? [])
        for (const [, v] of s.values) {
          const n = parse(v);
          if (Number.isFinite(n)) add(s.metric[label], n);
        }
    };
    let total = 0;
    let nFailed = 0;
    let n4xx = 0;
    sum(requests, (ver, n) => {
      total += n;
      if (ver !== undefined) slot(ver).total += n;
    });
    sum(failures, (ver, n) => {
      nFailed += n;
      if (ver !== undefined) slot(ver).failed += n;
    });
    sum(failures4xx, (ver, n) => {
      n4xx += n;
      if (ver !== undefined) slot(ver).failed4xx! += n;
    });
    // histogram_quantile answers +Inf when the quantile lies above the highest bucket: slower than
    // anything the histogram can say, which an objective must see (NaN: no requests, unknown).
    const last = (s: Series) => {
      const v = s.values.map(([, n]) => parse(n)).filter((n) => !Number.isNaN(n));
      return v.length ? v[v.length - 1] : null;
    };
    const p99Seconds = p99 && p99.length ? last(p99[0]) : null;
    for (const s of p99ByVersion ?? []) {
      const ver = s.metric[label];
      const n = last(s);
      if (ver !== undefined && n !== null) slot(ver).p99Ms = round(n * 1000);
    }
    for (const c of Object.values(byVersion)) {
      c.total = Math.round(c.total);
      c.failed = Math.round(c.failed);
      if (c.failed4xx !== null) c.failed4xx = Math.round(c.failed4xx);
    }
    if (p99Seconds !== null) ev.points.p99_ms = [[to, round(p99Seconds * 1000)]];
    const counts: Counts = {
      total: Math.round(total),
      failed: Math.round(nFailed),
      failed4xx: failures4xx ? Math.round(n4xx) : null,
      p99Ms: p99Seconds === null ? null : round(p99Seconds * 1000),
    };
    return {
      status: 'ok',
      source: this.name,
      window,
      ...counts,
      byVersion,
      evidence: { source: this.name, ...ev },
      message:
        `${this.name}: ${counts.total} requests, ${counts.failed} 5xx${counts.failed4xx === null ? '' : `, ${counts.failed4xx} 4xx`}, ` +
        `p99 ${counts.p99Ms === null ? 'unknown' : `${counts.p99Ms} ms`} over ${(windowMs / 1000).toFixed(0)} s from ${samples} samples` +
        `${Object.keys(byVersion).length ? ` (versions: ${Object.keys(byVersion).sort().join(', ')})` : ''}`,
    };
  }

  async #queryRange(
    query: string,
    startMs: number,
    endMs: number,
    stepMs: number,
    headers: Record<string, string>,
    deadline: AbortSignal,
    caller?: AbortSignal,
  ): Promise<Series[]> {
    const base = this.#o.baseUrl;
    const url = `${base}/api/v1/query_range?${new URLSearchParams({ query, start: String(startMs / 1000), end: String(endMs / 1000), step: String(stepMs / 1000) })}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { headers: { accept: 'application/json', ...headers }, signal: deadline });
      text = await res.text();
    } catch (err) {
      if (abortedByCaller(caller)) throw err;
      if (deadline.aborted)
        throw new QueryError(
          `${this.name}: no answer from ${base} within ${this.#o.timeoutMs / 1000} s for query ${quote(query)}`,
        );
      throw new QueryError(`${this.name}: cannot reach ${base} for query ${quote(query)}: ${describeError(err)}`);
    }
    let body:
      | {
          status?: string;
          error?: string | { message?: string; status?: string };
          errorType?: string;
          data?: { resultType?: string; result?: Series[] };
        }
      | undefined;
    try {
      body = JSON.parse(text);
    } catch {
      /* said below */
    }
    if (!res.ok || body?.status !== 'success') {
      // Prometheus: {status: "error", errorType, error}; Google's front end: {error: {code, message, status}}.
      const e = body?.error;
      const detail =
        typeof e === 'string'
          ? `${body?.errorType ? `${body.errorType}: ` : ''}${e}`
          : e?.message
            ? `${e.status ? `${e.status}: ` : ''}${e.message}`
            : text.slice(0, 300).trim() || res.statusText;
      const hint = (res.status === 401 || res.status === 403) && this.#authHint ? `; ${this.#authHint}` : '';
      throw new QueryError(`${this.name}: HTTP ${res.status} from ${base} for query ${quote(query)}: ${detail}${hint}`);
    }
    if (body.data?.resultType !== 'matrix' || !Array.isArray(body.data.result)) {
      throw new QueryError(
        `${this.name}: query ${quote(query)} did not return a range vector (got ${body.data?.resultType ?? 'nothing'})`,
      );
    }
    return body.data.result;
  }

  async close(): Promise<void> {}
}

/** Prometheus sends sample values as strings, including "NaN", "+Inf" and "-Inf". */
function parse(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** `--source promql`: a Prometheus server's HTTP API. */
export const promqlProvider: MetricSourceProvider = {
  name: 'promql',
  flags: [{ flag: '--prometheus-url <url>', description: 'the Prometheus HTTP API' }, PROMQL_SELECTOR_FLAG],
  create(v) {
    if (!v['prometheus-url'])
      throw new SourceUsageError('--source promql needs --prometheus-url (the Prometheus HTTP API, e.g. http://prometheus:9090)');
    return new PromqlSource({ baseUrl: v['prometheus-url'], selector: v['promql-selector'] });
  },
};
