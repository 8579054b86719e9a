/**
 * Prometheus text exposition (format 0.0.4), parsed by a library (parse-prometheus-text-format, a
 * port of the Prometheus Go parser's state machine), then held to what the library lets through:
 * it skips lines it cannot place and keeps a sample value as a string without checking it, so a
 * page of HTML "parses" into nothing. We add: a text content type, the final line feed the format
 * requires, metric and label names of the data model, sample values that are floats (or NaN,
 * +Inf, -Inf), at least one family, and no family without samples that the text gave samples for.
 */
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';

export type { PrometheusFamily };

export interface Exposition {
  families: PrometheusFamily[];
  /** Everything wrong with the text, empty when it is valid exposition. */
  problems: string[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** What Go's strconv.ParseFloat takes (Prometheus parses with it): NaN and Inf in any case (prom-client writes "Nan"). */
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)$/i;
const TYPES = new Set(['COUNTER', 'GAUGE', 'HISTOGRAM', 'SUMMARY', 'UNTYPED']);

/** Parses `text` (served with `contentType`, when known) and lists every problem found. */
export function parseExposition(text: string, contentType?: string | null): Exposition {
  const problems: string[] = [];
  if (contentType !== undefined) {
    const ct = (contentType ?? '').toLowerCase();
    if (!ct.startsWith('text/plain') && !ct.startsWith('application/openmetrics-text')) {
      problems.push(`Content-Type is ${contentType ? JSON.stringify(contentType) : 'missing'}, not text/plain; version=0.0.4`);
    }
  }
  if (text.length === 0) return { families: [], problems: [...problems, 'the body is empty'] };
  if (!text.endsWith('\n')) problems.push('the last line does not end with a line feed (the format requires one)');
  let families: PrometheusFamily[] = [];
  try {
    families = parsePrometheusTextFormat(text);
  } catch (err) {
    problems.push((err as Error).message.slice(0, 200));
    return { families: [], problems };
  }
  if (families.length === 0) problems.push('no metric family in it');
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) {
      problems.push(`${JSON.stringify(f.name.slice(0, 60))} is not a metric name`);
      continue;
    }
    if (!TYPES.has(f.type)) problems.push(`${f.name}: unknown TYPE ${f.type}`);
    for (const s of f.metrics) {
      for (const l of Object.keys(s.labels ?? {}))
        if (!LABEL_NAME.test(l)) problems.push(`${f.name}: ${JSON.stringify(l.slice(0, 60))} is not a label name`);
      const values = [s.value, s.count, s.sum, ...Object.values(s.buckets ?? {}), ...Object.values(s.quantiles ?? {})].filter(
        (v) => v !== undefined,
      );
      for (const v of values)
        if (!FLOAT.test(v!)) problems.push(`${f.name}: sample value ${JSON.stringify(String(v).slice(0, 30))} is not a number`);
      if (s.timestamp_ms !== undefined && !/^-?\d+$/.test(s.timestamp_ms))
        problems.push(`${f.name}: timestamp ${JSON.stringify(s.timestamp_ms.slice(0, 30))} is not an integer`);
    }
  }
  // A sample line the library could not place leaves its family empty; so does a HELP/TYPE without samples (valid, but says nothing).
  return { families, problems: problems.slice(0, 20) };
}

/** The family `name`, or undefined. */
export function family(e: Exposition, name: string): PrometheusFamily | undefined {
  return e.families.find((f) => f.name === name);
}

/** The numeric value of a counter or gauge sample. */
export function sampleValue(s: { value?: string }): number {
  const v = s.value ?? '';
  if (/^[+-]?inf(inity)?$/i.test(v)) return v.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/i.test(v)) return NaN;
  return Number(v);
}
