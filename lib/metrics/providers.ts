/**
 * Every metric source `verdict gate --source` can build, in the order they are built. A new source
 * is a file here with its MetricSource and its MetricSourceProvider (./provider.ts), and one line in
 * this list: the gate's `--source` values, its flags and their help come from here. (`client`, the
 * gate's own load, is not built from flags: the gate always measures it.)
 */
import { cloudMonitoringProvider } from './cloud-monitoring.ts';
import { gmpProvider } from './gmp.ts';
import type { MetricSourceProvider } from './provider.ts';
import { promqlProvider } from './promql.ts';

export const METRIC_SOURCES: readonly MetricSourceProvider[] = [promqlProvider, gmpProvider, cloudMonitoringProvider];
