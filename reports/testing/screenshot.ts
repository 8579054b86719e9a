/**
 * Makes docs/report-fail.png, the README's picture of a FAIL report: the synthetic pod-kill run
 * (200 req/s for 60 s, two pod deletions, ~30 failed requests by endpoint-not-yet-removed and
 * reset-during-drain), written as a run directory and opened in Debian's Chromium.
 *
 *   node reports/testing/screenshot.ts [--out docs/report-fail.png]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createRunDirectory, writeRun } from '../run-directory.ts';
import { launchReportBrowser } from './browser.ts';
import { podKillRun } from './synthetic.ts';

const { values } = parseArgs({
  options: { out: { type: 'string', default: resolve(import.meta.dirname, '../../docs/report-fail.png') } },
});
const dir = await mkdtemp(join(tmpdir(), 'verdict-screenshot-'));
const browser = await launchReportBrowser();
try {
  const run = podKillRun();
  const d = await createRunDirectory(dir, 'experiment', new Date(Date.parse(run.record.startedAt)));
  const files = await writeRun(d.dir, run.record, run.ledgerLines!(), { env: {} });
  const page = await browser.open(await readFile(files.reports.html, 'utf8'), { width: 1280, height: 900 });
  if (page.errors.length) throw new Error(`the page logged errors: ${page.errors.join('; ')}`);
  // Open the first cause's examples, as a reader would.
  await page.page.locator('table.causes details summary').first().click();
  await page.page.screenshot({ path: values.out!, fullPage: true });
  await page.close();
  console.log(`${values.out} (${run.record.headline})`);
} finally {
  await browser.close();
  await rm(dir, { recursive: true, force: true });
}
