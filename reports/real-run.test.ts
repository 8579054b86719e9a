import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLoad } from '../lib/load/index.ts';
import { ok, startTestServer, type TestServer } from '../lib/load/testing/servers.ts';
import { readLedger } from './ledger-file.ts';
import { validateRunRecord } from './render/json.ts';
import { createRunDirectory, writeRun } from './run-directory.ts';
import type { RunRecord } from './run-record.ts';
import { launchReportBrowser, paintedPixels, type ReportBrowser } from './testing/browser.ts';
import { recordFromLoad } from './testing/from-load.ts';

/**
 * Reports of real runs: the load engine against loopback servers, its real ledger turned into a
 * RunRecord and ledger lines as the runner will, then every file written and checked, and the HTML
 * opened in Chromium.
 */
const root = mkdtempSync(join(tmpdir(), 'verdict-real-run-'));
let good: TestServer;
let flaky: TestServer;
let browser: ReportBrowser;
let sent500 = 0;

beforeAll(async () => {
  good = await startTestServer(ok((n) => `pod-${'abc'[n % 3]}`, 'v2'));
  // Every 12th request gets a 500 from pod-b: a FAIL with application-5xx failures on one pod.
  flaky = await startTestServer((req, res, n) => {
    if (n % 12 === 0) {
      sent500++;
      res.writeHead(500, { 'x-served-by': 'pod-b', 'x-app-version': 'v2' }).end('boom');
      return;
    }
    ok(`pod-${'ac'[n % 2]}`, 'v2')(req, res, n);
  });
  browser = await launchReportBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await good?.close();
  await flaky?.close();
  rmSync(root, { recursive: true, force: true });
});

async function realRun(server: TestServer, name: string) {
  const result = await runLoad({
    url: server.url,
    executor: { executor: 'constant-arrival-rate', rate: 100, duration: '3s' },
    thresholds: { http_req_failed: ['rate<1'] },
    maxScheduleDelay: '1s',
    identityHeaders: { backend: 'x-served-by', version: 'x-app-version' },
  });
  const { record, lines } = recordFromLoad(result, {
    command: 'experiment',
    check: name,
    description: `100 req/s for 3 s against ${name}`,
    url: server.url,
    minRequests: 100,
  });
  const d = await createRunDirectory(root, 'experiment', new Date());
  const files = await writeRun(d.dir, record, lines(), { env: {} });
  return { record, files, ledgerRows: result.ledger.length };
}

describe('reports of real load runs', () => {
  it("PASS: every file valid, the ledger is the engine's, the page draws", async () => {
    const { record, files, ledgerRows } = await realRun(good, 'steady');
    expect(record.verdict).toBe('PASS');
    const written = JSON.parse(readFileSync(files.reports.json, 'utf8')) as RunRecord;
    expect(validateRunRecord(written).ok).toBe(true);
    expect(files.ledgerLines).toBe(ledgerRows);
    let n = 0;
    for await (const l of readLedger(files.dir)) {
      expect(l.check).toBe('steady');
      expect(l.served_by).toMatch(/^pod-[abc]$/);
      n++;
    }
    expect(n).toBe(300);
    const xsd = new URL('./schema/junit.xsd', import.meta.url).pathname;
    expect(spawnSync('xmllint', ['--noout', '--schema', xsd, files.reports.junit]).status).toBe(0);
    const page = await browser.open(readFileSync(files.reports.html, 'utf8'));
    expect(page.errors).toEqual([]);
    expect(page.requests).toEqual([page.url]);
    for (const p of await paintedPixels(page.page)) expect(p).toBeGreaterThan(1000);
    await page.close();
  }, 60_000);

  it('FAIL: failures from the ledger in the table, filterable by cause and pod', async () => {
    const { record, files } = await realRun(flaky, 'flaky');
    expect(record.verdict).toBe('FAIL');
    const c = record.checks[0];
    expect(c.failures.map((f) => f.cause)).toEqual(['application-5xx']);
    // As many failures as the server sent 500s (25 of 300 when every arrival ran; fewer if a busy machine dropped some).
    expect(sent500).toBeGreaterThan(10);
    expect(c.requests!.failed).toBe(sent500);
    const n500 = sent500;
    const page = await browser.open(readFileSync(files.reports.html, 'utf8'));
    expect(page.errors).toEqual([]);
    expect(await page.page.locator('.failures tbody tr').count()).toBe(n500);
    await page.page.selectOption('select[data-filter="pod"]', 'pod-b');
    expect(await page.page.locator('.failures tbody tr:not([hidden])').count()).toBe(n500);
    await page.page.selectOption('select[data-filter="pod"]', '');
    await page.page.selectOption('select[data-filter="cause"]', 'application-5xx');
    expect(await page.page.locator('.failures tbody tr:not([hidden])').count()).toBe(n500);
    expect(await page.page.locator('.failures tbody tr:not([hidden]) td:nth-child(3)').allTextContents()).toEqual(
      Array(n500).fill('500'),
    );
    await page.close();
  }, 60_000);
});
