/**
 * How a metric source is chosen and built from the command line (argo-rollouts' `metricproviders/`
 * shape: one provider per source, one list in ./providers.ts). A provider names itself (the value of
 * `verdict gate --source`), declares the flags it reads and builds its MetricSource from their values.
 * The CLI makes one option of each distinct flag (two providers may share one, e.g. `--project`).
 */
import type { MetricSource } from './source.ts';

/** A flag a provider reads. */
export interface SourceFlag {
  /** The option as the CLI spells it, e.g. `--prometheus-url <url>`. */
  readonly flag: string;
  /** What it is, for `--help` (the CLI prefixes the sources that read it). */
  readonly description: string;
}

export interface MetricSourceProvider {
  /** The `--source` value. */
  readonly name: string;
  readonly flags: readonly SourceFlag[];
  /**
   * The source, from the values of its flags by long name without dashes (`values['prometheus-url']`).
   * A missing or bad value throws SourceUsageError naming the flag to give.
   */
  create(values: Readonly<Record<string, string | undefined>>): MetricSource;
}

/** A flag a provider needs is missing or wrong: the user can fix it (the CLI exits 64). */
export class SourceUsageError extends Error {
  override name = 'SourceUsageError';
}

/** `--prometheus-url <url>` → `prometheus-url`. */
export function flagName(f: SourceFlag): string {
  const m = /^--([a-z0-9][a-z0-9-]*)/.exec(f.flag);
  if (!m) throw new Error(`metric source flag ${JSON.stringify(f.flag)} must start with --name`);
  return m[1];
}

/** Label matchers for the workload: read by every source that speaks PromQL. */
export const PROMQL_SELECTOR_FLAG: SourceFlag = {
  flag: '--promql-selector <matchers>',
  description: 'label matchers for the workload, e.g. namespace="coditect",route!~"/health/.*"',
};

/** The Google Cloud project: read by every source that asks Google Cloud. */
export const GCP_PROJECT_FLAG: SourceFlag = {
  flag: '--project <id>',
  description: 'the Google Cloud project (credentials: Application Default Credentials)',
};
