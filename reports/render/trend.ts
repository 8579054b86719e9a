/**
 * The run history as text (`verdict trend`) and as trend.html: per comparable group (experiment ×
 * target kind × app × replicas) every run with its verdict and figures, and one chart per figure
 * over time. The page is built as report.html is: one offline file, uPlot and our own script
 * (./html/trend.js) and style inlined, the data as JSON in a <script type="application/json">,
 * a Content-Security-Policy that forbids every network request, no text from the data in the markup.
 */
import { readFileSync } from 'node:fs';
import type { HistoryKey, HistoryRun } from '../history.ts';
import { loadAssets, pageHead, scriptJson } from './html.ts';

export interface TrendGroup {
  key: HistoryKey;
  /** Oldest first. */
  runs: HistoryRun[];
  /** Every figure name of its runs, sorted. */
  figures: string[];
}

/** Runs grouped by their comparable key, groups in name order, runs oldest first. */
export function trendGroups(runs: HistoryRun[]): TrendGroup[] {
  const groups = new Map<string, TrendGroup>();
  for (const r of runs) {
    const k = JSON.stringify([r.experiment, r.targetKind, r.app, r.replicas]);
    let g = groups.get(k);
    if (!g) {
      g = {
        key: { experiment: r.experiment, targetKind: r.targetKind, app: r.app, replicas: r.replicas },
        runs: [],
        figures: [],
      };
      groups.set(k, g);
    }
    g.runs.push(r);
  }
  for (const g of groups.values()) {
    g.runs.sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id - b.id);
    g.figures = [...new Set(g.runs.flatMap((r) => Object.keys(r.figures)))].sort();
  }
  return [...groups.values()].sort((a, b) =>
    JSON.stringify([a.key.experiment, a.key.targetKind, a.key.app, a.key.replicas]).localeCompare(
      JSON.stringify([b.key.experiment, b.key.targetKind, b.key.app, b.key.replicas]),
    ),
  );
}

export const groupTitle = (k: HistoryKey) =>
  `${k.experiment} · ${k.targetKind} · ${k.app || 'no app'} · ${k.replicas === null ? 'replicas unknown' : `${k.replicas} replicas`}`;

const num = (x: number | undefined) => (x === undefined ? '–' : String(Math.round(x * 1000) / 1000));

/** The history as text: per group a title line and a table of runs (oldest first), at most `last` runs each. */
export function renderTrendText(groups: TrendGroup[], last = 20): string {
  const out: string[] = [];
  for (const g of groups) {
    const comparable = g.runs.filter((r) => r.verdict === 'PASS' && r.faults.length === 0).length;
    out.push(
      `${groupTitle(g.key)}: ${g.runs.length} run${g.runs.length === 1 ? '' : 's'} (${comparable} PASS without a fault: the baseline)`,
    );
    const head = ['started (UTC)', 'verdict', 'faults', ...g.figures];
    const rows = g.runs
      .slice(-last)
      .map((r) => [
        r.startedAt.replace('T', ' ').slice(0, 16),
        r.verdict,
        r.faults.join(',') || '–',
        ...g.figures.map((f) => num(r.figures[f])),
      ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i])).join('  ')}`.trimEnd();
    out.push(line(head));
    for (const r of rows) out.push(line(r));
    if (g.runs.length > last) out.push(`  (the last ${last} of ${g.runs.length}; trend.html has them all)`);
    out.push('');
  }
  return out.join('\n');
}

let trendJs: string | undefined;

/** trend.html: the groups, each with its runs and one chart per figure. */
export function renderTrendHtml(groups: TrendGroup[], o: { history: string; generatedAt: Date }): string {
  const a = loadAssets();
  trendJs ??= readFileSync(new URL('./html/trend.js', import.meta.url), 'utf8');
  if (/<\/script|<!--/i.test(trendJs)) throw new Error('trend.js contains </script or <!--: it cannot be inlined as is');
  const data = {
    history: o.history,
    generatedAt: o.generatedAt.toISOString(),
    groups: groups.map((g) => ({
      title: groupTitle(g.key),
      figures: g.figures,
      runs: g.runs.map((r) => ({
        t: Date.parse(r.startedAt),
        verdict: r.verdict,
        faults: r.faults,
        versions: r.versions,
        runDir: r.runDir,
        figures: r.figures,
      })),
    })),
  };
  return `${pageHead(`verdict trend · ${o.generatedAt.toISOString().replace('T', ' ').slice(0, 16)} UTC`, a.appCss)}
<body>
<header id="run" class="run"><div class="title"><h1>verdict trend</h1></div>
<noscript><p>This page is drawn by its own inlined script, which is switched off here; verdict trend prints the same history as text.</p></noscript></header>
<main id="groups"></main>
<footer id="foot"></footer>
<script type="application/json" id="trend-data">${scriptJson(data)}</script>
<script>${a.uplotLicense}
${a.uplotJs}</script>
<script>${trendJs}</script>
</body>
</html>
`;
}
