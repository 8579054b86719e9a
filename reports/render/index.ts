/**
 * Every report format of a run directory, in the order they are written. A new format is a file
 * here exporting a ReportRenderer (./renderer.ts) and one line in this list: `writeRun`,
 * `renderRunDirectory` and `verdict report --format` take it from here.
 */
import { htmlReport } from './html.ts';
import { jsonReport } from './json.ts';
import { junitReport } from './junit.ts';
import { markdownReport } from './markdown.ts';
import type { ReportRenderer } from './renderer.ts';

export const RENDERERS = [jsonReport, junitReport, markdownReport, htmlReport] as const;

export type ReportFormat = (typeof RENDERERS)[number]['format'];
export const REPORT_FORMATS: readonly ReportFormat[] = RENDERERS.map((r) => r.format);

/** The renderer of `format`. */
export function rendererOf(format: ReportFormat): ReportRenderer<ReportFormat, unknown> {
  return RENDERERS.find((r) => r.format === format) as ReportRenderer<ReportFormat, unknown>;
}

export type { LedgerReader, ReportRenderer } from './renderer.ts';
