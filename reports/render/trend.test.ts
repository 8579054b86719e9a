import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunHistory, type HistoryRun } from '../history.ts';
import type { RunRecord } from '../run-record.ts';
import { launchReportBrowser, paintedPixels, type ReportBrowser } from '../testing/browser.ts';
import { podKillRun, rolloutPassRun } from '../testing/synthetic.ts';
import { CSP } from './html.ts';
import { renderTrendHtml, renderTrendText, trendGroups } from './trend.ts';

const dir = mkdtempSync(join(tmpdir(), 'verdict-trend-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Twelve days of two experiments (synthetic records with figures), one a deliberately broken run. */
function history(): HistoryRun[] {
  using h = RunHistory.open(join(dir, 'history.sqlite'));
  for (let day = 1; day <= 12; day++) {
    const kill = structuredClone(podKillRun().record) as RunRecord;
    kill.startedAt = `2026-03-${String(day).padStart(2, '0')}T14:00:00Z`;
    kill.checks[0].name = 'pod-kill-force';
    kill.checks[0].verdict = 'PASS';
    kill.checks[0].figures = { failed_requests: 10 + (day % 4), 'p99_ms.v1.4.2': 30 + day, drain_s_max: 8.1 };
    kill.checks[0].replicas = 3;
    if (day === 7) kill.app = { ...kill.app!, faults: ['naive-shutdown'] };
    h.append(kill, `/runs/experiment-${day}`);
    const roll = structuredClone(rolloutPassRun().record) as RunRecord;
    roll.startedAt = `2026-03-${String(day).padStart(2, '0')}T15:00:00Z`;
    roll.checks[0].name = 'rollout-under-load';
    roll.checks[0].figures = { failed_requests: 0, rollout_s: 25 + day / 2, 'p99_ms.v1': 20, 'p99_ms.v2': 21 + day };
    roll.checks[0].replicas = 3;
    h.append(roll);
  }
  return h.runs();
}

describe('verdict trend', () => {
  let browser: ReportBrowser;
  beforeAll(async () => {
    browser = await launchReportBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('prints each comparable group with its runs and figures', () => {
    const groups = trendGroups(history());
    expect(groups.map((g) => g.key.experiment)).toEqual(['pod-kill-force', 'rollout-under-load']);
    const text = renderTrendText(groups, 5);
    expect(text).toContain(
      'pod-kill-force · embedded · license-api · 3 replicas: 12 runs (11 PASS without a fault: the baseline)',
    );
    expect(text).toMatch(/ {2}started \(UTC\) +verdict +faults +drain_s_max +failed_requests +p99_ms\.v1\.4\.2\n/);
    expect(text).toMatch(/ {2}2026-03-12 14:00 +PASS +– +8\.1 +10 +42\n/);
    expect(text).toContain('(the last 5 of 12; trend.html has them all)');
  });

  it('trend.html: one offline CSP-locked file whose charts draw in Chromium without a console error or a request', async () => {
    const groups = trendGroups(history());
    const page = renderTrendHtml(groups, { history: '/ci/history.sqlite', generatedAt: new Date(Date.UTC(2026, 2, 13)) });
    expect(page).toContain(`<meta http-equiv="Content-Security-Policy" content="${CSP}">`);
    expect(page.replace(/<script type="application\/json" id="trend-data">[\s\S]*?<\/script>/, '')).not.toMatch(/https?:\/\//i);
    const opened = await browser.open(page);
    try {
      expect(opened.errors).toEqual([]);
      expect(opened.requests).toEqual([opened.url]);
      const figures = groups.reduce((n, g) => n + g.figures.length, 0);
      const painted = await paintedPixels(opened.page);
      expect(painted).toHaveLength(figures);
      for (const p of painted) expect(p).toBeGreaterThan(500);
      expect(await opened.page.locator('section.check h2').allTextContents()).toEqual([
        'pod-kill-force · embedded · license-api · 3 replicas',
        'rollout-under-load · embedded · license-api · 3 replicas',
      ]);
      // Newest first; the deliberately broken run is there, named.
      expect(await opened.page.locator('#group-0 table.trend-runs tbody tr').count()).toBe(12);
      expect(await opened.page.locator('#group-0 table.trend-runs tbody tr').nth(5).textContent()).toContain('naive-shutdown');
    } finally {
      await opened.close();
    }
  });

  it('an empty history draws a page that says so', async () => {
    const opened = await browser.open(renderTrendHtml([], { history: 'h.sqlite', generatedAt: new Date() }));
    try {
      expect(opened.errors).toEqual([]);
      expect(await opened.page.locator('main p.none').textContent()).toBe('The history holds no run yet.');
    } finally {
      await opened.close();
    }
  });
});
