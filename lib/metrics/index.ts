/**
 * Metric sources behind one interface (see source.ts): `client` (the ledger), `promql` (a
 * Prometheus server), `gmp` (Google Managed Prometheus), `cloud-monitoring` (listTimeSeries); the
 * ones built from command-line flags are listed, with their flags, in providers.ts.
 * The gates on their measurements are in reports/metric-gates.ts.
 */
export * from './source.ts';
export * from './provider.ts';
export { METRIC_SOURCES } from './providers.ts';
export { ClientSource, type ClientSourceOptions } from './client.ts';
export {
  PromqlSource,
  DEFAULT_PROMQL_QUERIES,
  DEFAULT_PROMQL_SELECTOR,
  type PromqlQueries,
  type PromqlSourceOptions,
} from './promql.ts';
export { gmpSource, gmpBaseUrl, GMP_SCOPE, type GmpSourceOptions } from './gmp.ts';
export {
  CloudMonitoringSource,
  LB_LATENCY_FILTER,
  LB_REQUEST_COUNT_FILTER,
  type CloudMonitoringSourceOptions,
} from './cloud-monitoring.ts';

import {
  checkWindow,
  describeError,
  evidenceWindow,
  failed,
  type Measurement,
  type MetricSource,
  type MetricWindow,
} from './source.ts';

/**
 * Measures the same window with every source at once. Never rejects for a source's failure (each
 * says so in its measurement, and a provider that throws anyway becomes an `error` measurement);
 * rejects only when `signal` aborts or the window is not a window.
 */
export async function measureAll(sources: MetricSource[], window: MetricWindow, signal?: AbortSignal): Promise<Measurement[]> {
  const names = new Set<string>();
  for (const s of sources) {
    if (names.has(s.name)) throw new RangeError(`two metric sources are named ${s.name}: give each a name of its own`);
    names.add(s.name);
  }
  checkWindow(window);
  return await Promise.all(
    sources.map(async (s) => {
      try {
        return await s.measure(window, signal);
      } catch (err) {
        if (signal?.aborted) throw err;
        return failed('error', s.name, window, `${s.name}: the measurement broke: ${describeError(err)}`, {
          queries: [],
          window: evidenceWindow(window, null),
          samples: 0,
          points: {},
        });
      }
    }),
  );
}
