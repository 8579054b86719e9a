/**
 * report.html: one offline file a person opens from a CI artifact. Per check: a timeline (requests
 * per second, failures stacked by cause, p50/p99 latency, answers per version, with pod, endpoint,
 * node and chaos events as vertical markers), the gates with their evidence, failures by cause with
 * examples, and a table of failed requests from the ledger that can be filtered by cause and pod.
 *
 * Everything is inlined: uPlot's script and style (read from node_modules at render time, MIT
 * licence kept), our own script (./html/app.js) and style (./html/style.css), and the data as JSON
 * in a <script type="application/json">. A Content-Security-Policy meta forbids every network
 * request, and no URL with a scheme appears outside the embedded data.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CAUSES, FAILURE_CAUSES, type FailureCause, type RunRecord } from '../run-record.ts';
import { topCause, unknownWarning } from '../failure-summary.ts';
import type { ReportRenderer } from './renderer.ts';

/** At most this many failed requests per check go into the page's table (the ledger has them all). */
export const FAILED_ROWS_CAP = 5000;

export const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

// ------------------------------------------------------------------ failed rows from the ledger

/** [epoch ms scheduled, step, status, error, cause, pod, version] */
export type FailedRowTuple = [number, string, number, string | null, FailureCause | null, string | null, string | null];

export interface CheckFailedRows {
  rows: FailedRowTuple[];
  /** Failed rows of this check in the ledger (rows.length is capped). */
  total: number;
  source: 'ledger' | 'examples';
}

/**
 * Collects each check's failed rows from ledger lines as they stream past (raw NDJSON, parsed only
 * when the line can be a failed row). A row belongs to the check whose `ledgerLabel` equals its
 * `check` field; rows without one go to the only check with requests, when there is exactly one.
 */
export class FailedRowCollector {
  readonly #byLabel = new Map<string, number>();
  readonly #fallback: number | null;
  readonly #rows: FailedRowTuple[][];
  readonly #totals: number[];
  readonly #cap: number;
  /** Failed rows that matched no check. */
  unassigned = 0;
  lines = 0;

  constructor(record: RunRecord, cap = FAILED_ROWS_CAP) {
    record.checks.forEach((c, i) => {
      if (c.ledgerLabel !== null && !this.#byLabel.has(c.ledgerLabel)) this.#byLabel.set(c.ledgerLabel, i);
    });
    const withRequests = record.checks.map((c, i) => (c.requests ? i : -1)).filter((i) => i >= 0);
    this.#fallback = withRequests.length === 1 ? withRequests[0] : null;
    this.#rows = record.checks.map(() => []);
    this.#totals = record.checks.map(() => 0);
    this.#cap = cap;
  }

  add(line: string): void {
    this.lines++;
    if (!line.includes('failed')) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (o.outcome !== 'failed') return;
    const label = typeof o.check === 'string' ? o.check : null;
    const i = label !== null ? (this.#byLabel.get(label) ?? null) : this.#fallback;
    if (i === null) {
      this.unassigned++;
      return;
    }
    this.#totals[i]++;
    if (this.#rows[i].length >= this.#cap) return;
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    const cause = str(o.cause) as FailureCause | null;
    this.#rows[i].push([
      typeof o.scheduled_at === 'number' ? o.scheduled_at : 0,
      str(o.name) ?? '',
      typeof o.status === 'number' ? o.status : 0,
      str(o.error) ?? str(o.error_code),
      cause !== null && (FAILURE_CAUSES as readonly string[]).includes(cause) ? cause : null,
      str(o.pod) ?? str(o.served_by),
      str(o.app_version),
    ]);
  }

  /** Per check, in record order. Checks without ledger rows fall back to their examples from verdict.json. */
  result(record: RunRecord): CheckFailedRows[] {
    return record.checks.map((c, i) => {
      if (this.#totals[i] > 0) return { rows: this.#rows[i], total: this.#totals[i], source: 'ledger' };
      const ex: FailedRowTuple[] = c.failures.flatMap((g) =>
        g.examples.map((e): FailedRowTuple => [e.at, e.step, e.status, e.error, g.cause, e.pod, e.version]),
      );
      ex.sort((a, b) => a[0] - b[0]);
      return { rows: ex, total: ex.length, source: 'examples' };
    });
  }
}

export async function collectFailedRows(
  record: RunRecord,
  lines: AsyncIterable<string> | Iterable<string> | null,
  cap = FAILED_ROWS_CAP,
): Promise<CheckFailedRows[]> {
  const c = new FailedRowCollector(record, cap);
  if (lines) for await (const l of lines as AsyncIterable<string>) c.add(l);
  return c.result(record);
}

// ------------------------------------------------------------------ inlined assets

const require = createRequire(import.meta.url);
let assets: { uplotJs: string; uplotCss: string; uplotLicense: string; appJs: string; appCss: string } | undefined;

/**
 * Everything of an offline page up to `</head>`: the CSP that forbids any network access, no
 * referrer, no favicon request, uPlot's stylesheet and the page's own (report.html and trend.html).
 */
export function pageHead(title: string, pageCss: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${esc(title)}</title>
<style>${loadAssets().uplotCss}</style>
<style>${pageCss}</style>
</head>`;
}

/** uPlot's script, style and licence notice and the report's own script and style, read once (checked to be inlinable). */
export function loadAssets() {
  if (assets) return assets;
  const uplotDir = dirname(require.resolve('uplot/package.json'));
  const version = (JSON.parse(readFileSync(join(uplotDir, 'package.json'), 'utf8')) as { version: string }).version;
  // The banner is a URL; the licence notice below names the project instead, so that no scheme-ful URL is in the page.
  const uplotJs = readFileSync(join(uplotDir, 'dist', 'uPlot.iife.min.js'), 'utf8').replace(/^\/\*![^*]*\*\/\s*/, '');
  const license = readFileSync(join(uplotDir, 'LICENSE'), 'utf8').replace(/\*\//g, '* /');
  assets = {
    uplotJs,
    uplotCss: readFileSync(join(uplotDir, 'dist', 'uPlot.min.css'), 'utf8'),
    uplotLicense: `/*! uPlot ${version} (github.com/leeoniya/uPlot), inlined by verdict.\n${license}*/`,
    appJs: readFileSync(new URL('./html/app.js', import.meta.url), 'utf8'),
    appCss: readFileSync(new URL('./html/style.css', import.meta.url), 'utf8'),
  };
  for (const [name, text] of Object.entries(assets)) {
    if (/<\/script|<!--/i.test(text))
      throw new Error(`report asset ${name} contains </script or <!--: it cannot be inlined as is`);
  }
  return assets;
}

// ------------------------------------------------------------------ page

/** Per check, the summary's lines on its failures: the top cause and the unknown-cause warning (reports/failure-summary.ts). */
function notesOf(record: RunRecord): Array<{ top: string | null; warning: string | null }> {
  return record.checks.map((c) => ({ top: topCause(c)?.line ?? null, warning: unknownWarning(c) }));
}

/** The swatch of each cause (`.c-<cause>`), from the registry's colours (lib/evidence/causes.ts). */
export function causeCss(): string {
  return CAUSES.map((c) => {
    if (!/^#[0-9a-f]{6}$/i.test(c.colour) || !/^[a-z0-9-]+$/.test(c.name))
      throw new Error(`cause ${c.name}: colour ${c.colour} must be #rrggbb and the name lower-case letters, digits and dashes`);
    return `.c-${c.name} { background: ${c.colour}; }`;
  }).join('\n');
}

/** Text and attribute values: &, <, >, " and ' escaped; control characters (but tab and newline) dropped. */
export function esc(s: string): string {
  return s
    .toWellFormed()
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON for a <script type="application/json">: every < escaped (no </script, no <!--), and U+2028/9. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * The page. Its markup holds no text from the record: the record (and each check's failed rows)
 * is embedded once as JSON and the page's script builds everything from it with textContent. So
 * the only text outside the data is ours, which is what lets the tests say that nothing in the page
 * but the data can even name a URL.
 */
export function renderHtml(record: RunRecord, failed: CheckFailedRows[]): string {
  const a = loadAssets();
  const title = `${record.verdict} · verdict ${record.command.replace(/[^a-z0-9-]/gi, '')} · ${record.startedAt.replace('T', ' ').slice(0, 16)} UTC`;
  return `${pageHead(
    title,
    `${a.appCss}
${causeCss()}`,
  )}
<body>
<header id="run" class="run v-${record.verdict}"><div class="title"><span class="badge v-${record.verdict}">${record.verdict}</span><h1>verdict ${esc(record.command.replace(/[^a-z0-9-]/gi, ''))}</h1></div>
<noscript><p>This report is drawn by its own inlined script, which is switched off here. The same data is in verdict.json beside this file (and summary.md reads without a browser).</p></noscript></header>
<main id="checks"></main>
<footer id="foot"></footer>
<script type="application/json" id="verdict-data">${scriptJson({ causes: CAUSES, record, failures: failed, notes: notesOf(record) })}</script>
<script>${a.uplotLicense}
${a.uplotJs}</script>
<script>${a.appJs}</script>
</body>
</html>
`;
}

/** report.html: the only format that reads the ledger (its table of failed requests). */
export const htmlReport: ReportRenderer<'html', CheckFailedRows[]> = {
  format: 'html',
  file: 'report.html',
  readLedger(record) {
    const collector = new FailedRowCollector(record);
    return { add: (line) => collector.add(line), result: () => collector.result(record) };
  },
  render: (record, failed) => renderHtml(record, failed),
};
