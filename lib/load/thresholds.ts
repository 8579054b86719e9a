/**
 * Thresholds in k6's vocabulary: `{ http_req_failed: ['rate<0.01'], 'http_req_duration{name:acquire}':
 * ['p(99)<250'] }`. A threshold on a metric without samples is "no data", never a pass.
 */
import { errorClassName } from './error-class.ts';
import { Outcome, type Ledger } from './ledger.ts';
import { RequestStatistics, type RowFilter } from './statistics.ts';
import { parseDuration } from './units.ts';

export type ThresholdEntry = string | { threshold: string; abortOnFail?: boolean; delayAbortEval?: string | number };
export type ThresholdConfig = Record<string, ThresholdEntry | ThresholdEntry[]>;

type Aggregation = 'count' | 'rate' | 'avg' | 'min' | 'med' | 'max' | { p: number };
type Op = '<' | '<=' | '>' | '>=' | '==' | '===' | '!=';

/** Metrics a threshold may name, and the aggregations each supports. */
const METRICS = {
  http_reqs: 'counter',
  http_req_failed: 'rate',
  http_req_duration: 'trend',
  http_req_blocked: 'trend',
  http_req_service_time: 'trend',
  schedule_delay: 'trend',
  dropped_iterations: 'counter',
  iterations: 'counter',
} as const;
export type MetricName = keyof typeof METRICS;
const TAGS = ['name', 'status', 'expected_response', 'error', 'served_by', 'app_version'] as const;

export interface Threshold {
  /** As written, e.g. `http_req_duration{name:acquire}`. */
  metric: string;
  base: MetricName;
  tags: Record<string, string>;
  /** As written, e.g. `p(99)<250`. */
  expression: string;
  aggregation: Aggregation;
  op: Op;
  value: number;
  abortOnFail: boolean;
  delayAbortEvalMs: number;
}

export interface ThresholdResult {
  metric: string;
  expression: string;
  /** true = holds, false = breached, null = no data to judge. */
  ok: boolean | null;
  observed: number | null;
  /** Samples behind the observed value. */
  samples: number;
  abortOnFail: boolean;
}

export class ThresholdSyntaxError extends Error {}

function parseMetric(key: string): { base: MetricName; tags: Record<string, string> } {
  const m = /^\s*([a-z_]+)\s*(?:\{([^}]*)\})?\s*$/.exec(key);
  if (!m) throw new ThresholdSyntaxError(`threshold metric "${key}" is not of the form name or name{tag:value}`);
  const base = m[1] as MetricName;
  if (!(base in METRICS)) {
    throw new ThresholdSyntaxError(`unknown metric "${m[1]}" in thresholds (known: ${Object.keys(METRICS).join(', ')})`);
  }
  const tags: Record<string, string> = {};
  for (const part of (m[2] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const i = part.indexOf(':');
    if (i < 1) throw new ThresholdSyntaxError(`tag "${part}" in "${key}" must be tag:value`);
    const tag = part.slice(0, i).trim();
    if (!(TAGS as readonly string[]).includes(tag))
      throw new ThresholdSyntaxError(`unknown tag "${tag}" in "${key}" (known: ${TAGS.join(', ')})`);
    tags[tag] = part.slice(i + 1).trim();
  }
  return { base, tags };
}

function parseExpression(expr: string, base: MetricName): { aggregation: Aggregation; op: Op; value: number } {
  const m =
    /^\s*(count|rate|avg|min|med|max|p\(\s*(\d+(?:\.\d+)?)\s*\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*(ms|s)?\s*$/.exec(
      expr,
    );
  if (!m) throw new ThresholdSyntaxError(`threshold "${expr}" is not of the form aggregation<value (e.g. rate<0.01, p(95)<500)`);
  const aggregation: Aggregation = m[2] !== undefined ? { p: Number(m[2]) } : (m[1] as Aggregation);
  if (typeof aggregation === 'object' && !(aggregation.p >= 0 && aggregation.p <= 100)) {
    throw new ThresholdSyntaxError(`percentile in "${expr}" must be between 0 and 100`);
  }
  const kind = METRICS[base];
  const name = typeof aggregation === 'object' ? 'p(N)' : aggregation;
  const allowed = kind === 'trend' ? ['avg', 'min', 'med', 'max', 'p(N)'] : kind === 'rate' ? ['rate'] : ['count', 'rate'];
  if (!allowed.includes(name)) throw new ThresholdSyntaxError(`${base} is a ${kind}: use ${allowed.join(', ')} (got "${expr}")`);
  let value = Number(m[4]);
  if (m[5] === 's') value *= 1000;
  return { aggregation, op: m[3] as Op, value };
}

/** Parses a k6-style thresholds object; throws {@link ThresholdSyntaxError} naming the bad entry. */
export function parseThresholds(config: ThresholdConfig | undefined): Threshold[] {
  const out: Threshold[] = [];
  for (const [metric, entries] of Object.entries(config ?? {})) {
    const { base, tags } = parseMetric(metric);
    for (const entry of Array.isArray(entries) ? entries : [entries]) {
      const e = typeof entry === 'string' ? { threshold: entry } : entry;
      if (!e || typeof e.threshold !== 'string')
        throw new ThresholdSyntaxError(`threshold for "${metric}" must be a string or {threshold: "..."}`);
      out.push({
        metric,
        base,
        tags,
        expression: e.threshold,
        ...parseExpression(e.threshold, base),
        abortOnFail: Boolean(e.abortOnFail),
        delayAbortEvalMs: e.delayAbortEval === undefined ? 0 : parseDuration(e.delayAbortEval),
      });
    }
  }
  return out;
}

/** Parses one CLI-style threshold: `http_req_duration: p(99)<250` (or `http_req_duration p(99)<250`). */
export function parseThresholdFlag(text: string): ThresholdConfig {
  const m = /^\s*([a-z_]+(?:\{[^}]*\})?)\s*[:\s]\s*(.+)$/.exec(text);
  if (!m) throw new ThresholdSyntaxError(`threshold "${text}" must be "metric: expression", e.g. "http_req_duration: p(99)<250"`);
  const config = { [m[1]]: [m[2].trim()] };
  parseThresholds(config);
  return config;
}

/** The row filter a threshold's tags select (null: every row). */
export function tagFilter(tags: Record<string, string>): RowFilter | null {
  const checks: RowFilter[] = [];
  for (const [tag, value] of Object.entries(tags)) {
    switch (tag) {
      case 'name':
        checks.push((l, r) => l.names.value(l.nameId(r)) === value);
        break;
      case 'status':
        checks.push((l, r) => String(l.status(r)) === value);
        break;
      case 'expected_response':
        checks.push((l, r) => (l.outcome(r) === Outcome.succeeded) === (value === 'true'));
        break;
      case 'error':
        checks.push((l, r) => l.errorClass(r) !== 0 && errorClassName(l.errorClass(r)) === value);
        break;
      case 'served_by':
        checks.push((l, r) => l.servedBy.value(l.servedById(r)) === value);
        break;
      case 'app_version':
        checks.push((l, r) => l.appVersions.value(l.appVersionId(r)) === value);
        break;
    }
  }
  if (checks.length === 0) return null;
  return (l: Ledger, r: number) => checks.every((c) => c(l, r));
}

function compare(a: number, op: Op, b: number): boolean {
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '==':
    case '===':
      return a === b;
    case '!=':
      return a !== b;
  }
}

/** Observed value of a threshold's metric and aggregation, with the samples behind it. */
export function observe(
  t: Threshold,
  s: RequestStatistics,
  iterations: number,
  elapsedMs: number,
): { value: number | null; samples: number } {
  const seconds = Math.max(elapsedMs, 1) / 1000;
  const agg = t.aggregation;
  switch (t.base) {
    case 'http_reqs':
      return { value: agg === 'count' ? s.requests : s.requests / seconds, samples: s.requests };
    case 'dropped_iterations':
      // A counter: zero drops is data, not its absence.
      return { value: agg === 'count' ? s.dropped : s.dropped / seconds, samples: s.requests + s.dropped };
    case 'iterations':
      return { value: agg === 'count' ? iterations : iterations / seconds, samples: iterations };
    case 'http_req_failed':
      return { value: s.failedRate(), samples: s.requests };
    default: {
      const h =
        t.base === 'http_req_duration'
          ? s.duration
          : t.base === 'http_req_blocked'
            ? s.blocked
            : t.base === 'http_req_service_time'
              ? s.serviceTime
              : s.scheduleDelay;
      if (h.totalCount === 0) return { value: null, samples: 0 };
      const us =
        typeof agg === 'object'
          ? h.getValueAtPercentile(agg.p)
          : agg === 'avg'
            ? h.mean
            : agg === 'min'
              ? h.minNonZeroValue
              : agg === 'max'
                ? h.maxValue
                : h.getValueAtPercentile(50);
      return { value: Math.round(us) / 1000, samples: h.totalCount };
    }
  }
}

export function evaluate(t: Threshold, s: RequestStatistics, iterations: number, elapsedMs: number): ThresholdResult {
  const { value, samples } = observe(t, s, iterations, elapsedMs);
  const ok = value === null || (samples === 0 && t.base !== 'dropped_iterations') ? null : compare(value, t.op, t.value);
  return { metric: t.metric, expression: t.expression, ok, observed: value, samples, abortOnFail: t.abortOnFail };
}
