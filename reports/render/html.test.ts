import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAUSES, FAILURE_CAUSES } from '../run-record.ts';
import { launchReportBrowser, paintedPixels, type ReportBrowser } from '../testing/browser.ts';
import {
  errorRun,
  everyCauseRun,
  longRun,
  noRequestsRun,
  podKillRun,
  rolloutPassRun,
  type SyntheticRun,
} from '../testing/synthetic.ts';
import { CSP, FailedRowCollector, collectFailedRows, renderHtml, scriptJson } from './html.ts';

async function html(run: SyntheticRun): Promise<string> {
  return renderHtml(run.record, await collectFailedRows(run.record, run.ledgerLines ? run.ledgerLines() : null));
}

/** The page without its embedded data (the one place a URL may appear: the target's, as data). */
const withoutData = (page: string) => page.replace(/<script type="application\/json" id="verdict-data">[\s\S]*?<\/script>/, '');

describe('report.html as a file', () => {
  it('is one self-contained file: no URL with a scheme outside the embedded data, no external reference', async () => {
    for (const run of [podKillRun(), rolloutPassRun(), everyCauseRun(), noRequestsRun(), errorRun()]) {
      const page = await html(run);
      const rest = withoutData(page);
      expect(rest.length).toBeLessThan(page.length + 1);
      expect(rest).not.toMatch(/https?:\/\//i);
      expect(rest).not.toMatch(/\/\/[a-z0-9.-]+\.[a-z]{2,}\//i); // protocol-relative URLs
      for (const m of rest.matchAll(/\s(?:src|href|action|poster|srcset)\s*=\s*"([^"]*)"/gi)) expect(m[1]).toMatch(/^(data:|#)/);
      expect(rest).not.toMatch(/@import|url\(/i);
      expect(page).toContain(`<meta http-equiv="Content-Security-Policy" content="${CSP}">`);
      expect(page.match(/<script type="application\/json"/g)).toHaveLength(1);
    }
  });

  it('the target URL is there, as data', async () => {
    const page = await html(podKillRun());
    expect(page).toContain('http://127.0.0.1:30080');
  });

  it('embedded data cannot end its script or open a comment', async () => {
    const run = podKillRun();
    run.record.checks[0].name = 'pod-kill </script><script>alert(1)</script><!--';
    run.record.checks[0].timeline[0].object = '</SCRIPT><img src=x onerror=alert(1)>';
    const page = await html(run);
    const start = page.indexOf('id="verdict-data">');
    const data = page.slice(start, page.indexOf('</script>', start));
    expect(data).not.toMatch(/<\/script|<!--/i);
    expect(page).not.toContain('<script>alert(1)');
    expect(page).not.toContain('<img src=x');
    expect(JSON.parse(scriptJson({ s: '</script><!-- \u2028' }))).toEqual({ s: '</script><!-- \u2028' });
  });

  it('collects failed rows per check from ledger lines, capped, and falls back to the examples', () => {
    const run = podKillRun();
    const c = new FailedRowCollector(run.record, 10);
    for (const line of run.ledgerLines!()) c.add(line);
    const [rows] = c.result(run.record);
    expect(rows.source).toBe('ledger');
    expect(rows.total).toBe(run.record.checks[0].requests!.failed);
    expect(rows.rows).toHaveLength(10);
    expect(rows.rows[0]).toEqual([
      expect.any(Number),
      expect.any(String),
      0,
      expect.stringMatching(/conn_/),
      expect.stringMatching(/reset-during-drain|endpoint-not-yet-removed/),
      'license-api-7d9f8c-x2kqp',
      null,
    ]);
    const none = new FailedRowCollector(run.record).result(run.record)[0];
    expect(none.source).toBe('examples');
    expect(none.rows.length).toBe(run.record.checks[0].failures.reduce((s, f) => s + f.examples.length, 0));
  });
});

describe('report.html in Chromium', () => {
  let browser: ReportBrowser;
  beforeAll(async () => {
    browser = await launchReportBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  async function check(run: SyntheticRun, expectCharts: number) {
    const opened = await browser.open(await html(run));
    try {
      expect(opened.errors).toEqual([]);
      expect(opened.requests).toEqual([opened.url]);
      const painted = await paintedPixels(opened.page);
      expect(painted).toHaveLength(expectCharts);
      for (const p of painted) expect(p).toBeGreaterThan(2000);
      return opened;
    } catch (err) {
      await opened.close();
      throw err;
    }
  }

  it('FAIL (pod kill): three charts drawn, no console error, no request but the page', async () => {
    const opened = await check(podKillRun(), 3);
    const legend = await opened.page.$$eval('.uplot .u-legend .u-label', (ls) => ls.map((l) => l.textContent));
    expect(legend).toEqual(
      expect.arrayContaining(['requests/s', 'reset-during-drain', 'endpoint-not-yet-removed', 'p50 ms', 'p99 ms', 'v1.4.2']),
    );
    expect(await opened.page.locator('table.gates tr.row-FAIL').count()).toBe(1);
    // failures by cause, with the examples from verdict.json behind a click
    const c = podKillRun().record.checks[0];
    expect(await opened.page.locator('table.causes tbody tr').count()).toBe(c.failures.length);
    await opened.page.locator('table.causes details summary').first().click();
    const first = opened.page.locator('table.causes details').first().locator('ul.examples li');
    expect(await first.count()).toBe(c.failures[0].examples.length);
    expect(await first.first().textContent()).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} \w+: conn_refused on license-api-7d9f8c-x2kqp \(v1\.4\.2\) via the proxy — pod: ready/,
    );
    await opened.close();
  });

  it('PASS (rollout), every cause, 300,000 requests, no requests, ERROR: each renders without an error', async () => {
    await (await check(rolloutPassRun(), 3)).close();
    await (await check(everyCauseRun(), 3)).close();
    const long = await check(longRun(), 3);
    const shown = await long.page.locator('.failures [data-role="shown"]').textContent();
    expect(shown).toMatch(/^showing \d+ of \d+$/);
    await long.close();
    const none = await check(noRequestsRun(), 0);
    expect(await none.page.locator('.charts p.none').count()).toBe(2);
    await none.close();
    const error = await check(errorRun(), 0);
    expect(await error.page.locator('header .error').textContent()).toContain('kube-apiserver unreachable');
    await error.close();
  });

  it('the failure filter: a cause hides the rows of other causes, a pod likewise, both together', async () => {
    const run = everyCauseRun();
    const opened = await check(run, 3);
    const { page } = opened;
    const rows = page.locator('.failures tbody tr');
    const visible = page.locator('.failures tbody tr:not([hidden])');
    const total = await rows.count();
    expect(total).toBe(run.record.checks[0].requests!.failed);
    const causes = await page.$$eval('select[data-filter="cause"] option', (os) =>
      os.map((o) => (o as unknown as { value: string }).value).filter(Boolean),
    );
    expect(new Set(causes)).toEqual(new Set(FAILURE_CAUSES));

    await page.selectOption('select[data-filter="cause"]', 'reset-during-drain');
    const onlyCause = await visible.evaluateAll((trs) => trs.map((t) => t.getAttribute('data-cause')));
    expect(onlyCause.length).toBe(run.record.checks[0].failures.find((f) => f.cause === 'reset-during-drain')!.count);
    expect(new Set(onlyCause)).toEqual(new Set(['reset-during-drain']));
    expect(await page.locator('.failures [data-role="shown"]').textContent()).toBe(`showing ${onlyCause.length} of ${total}`);

    await page.selectOption('select[data-filter="cause"]', '');
    const pod = 'license-api-7d9f8c-p1';
    await page.selectOption('select[data-filter="pod"]', pod);
    const onlyPod = await visible.evaluateAll((trs) =>
      trs.map((t) => [t.getAttribute('data-pod'), t.getAttribute('data-cause')]),
    );
    expect(onlyPod.length).toBeGreaterThan(0);
    expect(onlyPod.length).toBeLessThan(total);
    expect(new Set(onlyPod.map((p) => p[0]))).toEqual(new Set([pod]));
    expect(new Set(onlyPod.map((p) => p[1])).size).toBeGreaterThan(1); // this pod failed in more than one way

    const cause = onlyPod.find((p) => p[1] !== 'unknown')![1]!;
    await page.selectOption('select[data-filter="cause"]', cause);
    const both = await visible.evaluateAll((trs) => trs.map((t) => [t.getAttribute('data-pod'), t.getAttribute('data-cause')]));
    expect(both.length).toBeGreaterThan(0);
    expect(both.length).toBeLessThan(onlyPod.length);
    for (const [p, c] of both) {
      expect(p).toBe(pod);
      expect(c).toBe(cause);
    }
    expect(opened.errors).toEqual([]);
    await opened.close();
  });

  it('the failure table by cause × version × route, the top cause, the unknown warning and the legend from the cause registry', async () => {
    const run = everyCauseRun();
    const c = run.record.checks[0];
    const opened = await check(run, 3);
    const { page } = opened;
    const cells = c.failures.flatMap((f) => f.breakdown!.map((x) => [f.cause, x.version ?? '–', x.route, String(x.count)]));
    const rows = await page.$$eval('table.breakdown tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 4).map((td) => td.textContent)),
    );
    expect(rows).toEqual(cells);
    expect(await page.locator('.cause-summary .top-cause').textContent()).toMatch(/^Top cause: \S+: \d+ of \d+ failures/);
    expect(await page.locator('.cause-summary .warning').textContent()).toMatch(
      /^WARNING: \d+ of \d+ failures .* have no known cause/,
    );
    // The legend lists every cause in rule order, and each swatch has the registry's colour.
    const legend = await page.$$eval('details.legend tbody tr', (trs) =>
      trs.map((tr: any) => [
        tr.children[1].textContent,
        (globalThis as any).getComputedStyle(tr.querySelector('.swatch')).backgroundColor,
      ]),
    );
    const rgb = (hex: string) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;
    expect(legend).toEqual(CAUSES.map((x) => [x.name, rgb(x.colour)]));
    // The chart's failure bars take their colours from the registry too.
    const strokes: string[][] = await page.$$eval('.uplot .u-legend .u-series', (series) =>
      series.map((x: any) => [
        x.querySelector('.u-label')?.textContent,
        (globalThis as any).getComputedStyle(x.querySelector('.u-marker')).borderColor,
      ]),
    );
    for (const x of CAUSES) {
      const drawn = strokes.find(([label]) => label === x.name);
      if (c.failures.some((f) => f.cause === x.name)) expect(drawn?.[1]).toBe(rgb(x.colour));
    }
    expect(opened.errors).toEqual([]);
    await opened.close();
  });

  it('caps the table of failed requests and says where the rest is', async () => {
    const run = everyCauseRun();
    const failed = run.record.checks[0].requests!.failed;
    const opened = await browser.open(renderHtml(run.record, await collectFailedRows(run.record, run.ledgerLines!(), 50)));
    expect(await opened.page.locator('.failures tbody tr').count()).toBe(50);
    expect(await opened.page.locator('section.check h3', { hasText: 'Failed requests (' }).textContent()).toBe(
      `Failed requests (the first 50 of ${failed}; ledger.ndjson.gz has them all)`,
    );
    expect(await opened.page.locator('.failures [data-role="shown"]').textContent()).toBe(
      `showing 50 of 50 (of ${failed} failed in the ledger)`,
    );
    expect(opened.errors).toEqual([]);
    await opened.close();
  });

  it('text from the record is shown as text, never run as markup', async () => {
    const run = podKillRun();
    run.record.checks[0].name = 'pod-kill </script><script>window.pwned=1</script><!--';
    run.record.checks[0].gates[0].evidence = '<img src=x onerror="window.pwned=2"> & more';
    const opened = await browser.open(await html(run));
    expect(await opened.page.locator('section.check h2').textContent()).toContain(
      'pod-kill </script><script>window.pwned=1</script><!--',
    );
    expect(await opened.page.locator('table.gates tbody tr').first().textContent()).toContain(
      '<img src=x onerror="window.pwned=2"> & more',
    );
    expect(await opened.page.evaluate(() => (globalThis as { pwned?: number }).pwned ?? null)).toBeNull();
    expect(opened.errors).toEqual([]);
    expect(opened.requests).toEqual([opened.url]);
    await opened.close();
  });

  it('the Content-Security-Policy stops a script in the page from reaching the network', async () => {
    const before = browser.served.length;
    const opened = await browser.open(await html(podKillRun()));
    const port = new URL(opened.url).port;
    const outcome = await opened.page.evaluate(async (p) => {
      try {
        await fetch(`http://127.0.0.1:${p}/exfiltrate`);
        return 'fetched';
      } catch (e) {
        return `blocked: ${(e as Error).message}`;
      }
    }, port);
    expect(outcome).toMatch(/^blocked/);
    // Refused by the page's policy itself, before the test's own request filter could see it.
    expect(opened.errors.join('\n')).toMatch(/violates the following Content Security Policy directive: "default-src 'none'"/);
    expect(opened.requests).toEqual([opened.url]);
    expect(browser.served.slice(before)).toEqual([new URL(opened.url).pathname]);
    await opened.close();
  });
});
