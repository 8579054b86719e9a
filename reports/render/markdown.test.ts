import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAILURE_CAUSES, type CheckRecord } from '../run-record.ts';
import { errorRun, everyCauseRun, longRun, noRequestsRun, podKillRun, rolloutPassRun } from '../testing/synthetic.ts';
import { SUMMARY_MAX_BYTES, appendStepSummary, mdCode, mdText, renderMarkdown } from './markdown.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'verdict-md-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('summary.md', () => {
  it('FAIL: verdict, headline, checks table, gates with evidence, failures by cause with examples', () => {
    const { record } = podKillRun();
    const md = renderMarkdown(record);
    const c = record.checks[0];
    expect(md.split('\n')[0]).toBe('## ❌ FAIL · `verdict experiment`');
    expect(md).toContain(`**${record.headline.replace(/,/g, ',')}**`);
    expect(md).toContain(`| pod-kill | experiment | ❌ FAIL | 12,000 | ${c.requests!.failed} | 0 |`);
    expect(md).toContain(`| no failed request | ❌ FAIL | ${c.requests!.failed} of 12000 requests failed`);
    expect(md).toContain('| load as planned | ✅ PASS |');
    // The failure table: cause × version × route, each cell with its count.
    expect(md).toContain('| cause | version | route | count | share |');
    for (const f of c.failures)
      for (const x of f.breakdown!) expect(md).toContain(`| ${f.cause} | ${x.version} | \`${x.route}\` | ${x.count} |`);
    const top = c.failures.reduce((a, b) => (b.count > a.count ? b : a));
    expect(md).toContain(`**Top cause:** ${top.cause}: ${top.count} of ${c.requests!.failed} failures`);
    expect(md).not.toContain('WARNING');
    expect(md).toContain('- **endpoint-not-yet-removed**');
    expect(md).toMatch(
      / {2}- \d\d:\d\d:\d\d\.\d{3} \w+: conn\\_refused on `license-api-7d9f8c-x2kqp` \(v1\.4\.2\) via the proxy — pod: /,
    );
    expect(md).not.toContain('shortened');
  });

  it('PASS and no-request runs read as such', () => {
    expect(renderMarkdown(rolloutPassRun().record)).toMatch(
      /^## ✅ PASS · `verdict verify-local`\n\n\*\*PASS: 1 check passed, 4,000 requests, none failed\*\*/,
    );
    const md = renderMarkdown(noRequestsRun().record);
    expect(md).toContain('| smoke | suite | ⚠️ INCONCLUSIVE | 0 | 0 | 0 | – |');
    expect(md).toContain('| manifest lint | probe | ✅ PASS | – | – | – | – |');
    // checks that did not pass come first
    expect(md.indexOf('### ⚠️ smoke')).toBeLessThan(md.indexOf('### ✅ manifest lint'));
  });

  it('every failure cause is listed; unknown over 1 % of the failures is a WARNING', () => {
    const { record } = everyCauseRun();
    const md = renderMarkdown(record);
    for (const cause of FAILURE_CAUSES) expect(md).toContain(`- **${cause}** (`);
    const failures = record.checks[0].failures;
    const unknown = failures.find((f) => f.cause === 'unknown')!.count;
    const total = failures.reduce((s, f) => s + f.count, 0);
    expect(unknown / total).toBeGreaterThan(0.01);
    expect(md).toContain(`> ⚠️ **WARNING:** ${unknown} of ${total} failures`);
  });

  it('a run that ended in ERROR with no checks: the error, escaped, and no table', () => {
    const md = renderMarkdown(errorRun().record);
    expect(md).toContain('## 💥 ERROR');
    expect(md).toContain('> 💥 **The run broke:** kube-apiserver unreachable');
    expect(md).toContain('&lt;tags&gt; "quotes" &lt;/script&gt;&lt;!-- \\]\\]&gt;');
    expect(md).not.toMatch(/[\u0000-\u0008\u001b\ufffe]/);
    expect(md).not.toContain('| check |');
  });

  it(
    'stays under 1 MiB for 10⁶ requests, thousands of failures and thousands of checks, and says what it left out',
    { timeout: 120_000 },
    () => {
      const big = longRun({ rate: 1000, durationS: 1000, failureShare: 0.01 }).record;
      const c = big.checks[0];
      expect(c.requests!.total).toBe(1_000_000);
      expect(c.requests!.failed).toBeGreaterThan(2000);
      // 4,000 such checks with long evidence: far more than a step summary can hold.
      const checks: CheckRecord[] = [];
      for (let i = 0; i < 4000; i++) {
        checks.push({
          ...c,
          name: `${c.name}-${i}`,
          verdict: i === 3999 ? 'FAIL' : 'PASS',
          gates: c.gates.map((g) => ({ ...g, evidence: g.evidence + ' '.padEnd(500, 'x') })),
        });
      }
      big.checks = checks;
      const md = renderMarkdown(big);
      const size = Buffer.byteLength(md);
      expect(size).toBeLessThan(MiB);
      expect(size).toBeLessThanOrEqual(SUMMARY_MAX_BYTES);
      expect(size).toBeGreaterThan(SUMMARY_MAX_BYTES * 0.8); // it used the room it had
      expect(md).toContain("This summary is shortened to stay under GitHub's 1 MiB step-summary limit");
      expect(md).toMatch(/of 4,000 checks left out/);
      // the one check that failed is shown first, in the table and in detail
      expect(md).toContain(`| ${c.name}-3999 | experiment | ❌ FAIL | 1,000,000 |`);
      expect(md.indexOf(`### ❌ ${c.name}-3999`)).toBeGreaterThan(0);
      expect(md.trimEnd().endsWith('._')).toBe(true);
    },
  );

  it('honours a small budget', () => {
    for (const max of [4096, 20_000]) {
      const md = renderMarkdown(everyCauseRun().record, { maxBytes: max });
      expect(Buffer.byteLength(md)).toBeLessThanOrEqual(max);
      expect(md).toContain('## ❌ FAIL');
    }
  });

  it('appends to $GITHUB_STEP_SUMMARY, fitting what is left of the 1 MiB', async () => {
    const file = join(dir, 'step-summary.md');
    expect(await appendStepSummary(podKillRun().record, {})).toBeNull();
    writeFileSync(file, '# earlier step output\n');
    expect(await appendStepSummary(podKillRun().record, { GITHUB_STEP_SUMMARY: file })).toBe(file);
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith('# earlier step output\n\n## ❌ FAIL')).toBe(true);
    // nearly full already: what is appended is shrunk to fit
    writeFileSync(file, 'x'.repeat(SUMMARY_MAX_BYTES - 6000));
    await appendStepSummary(everyCauseRun().record, { GITHUB_STEP_SUMMARY: file });
    expect(statSync(file).size).toBeLessThanOrEqual(SUMMARY_MAX_BYTES);
    expect(readFileSync(file, 'utf8')).toContain('every-cause');
  });

  it('escapes Markdown and HTML in text and code spans', () => {
    expect(mdText('a|b *c* <d> & e_f\nnext')).toBe('a\\|b \\*c\\* &lt;d&gt; &amp; e\\_f ⏎ next');
    expect(mdCode('pod`x|y')).toBe("`pod'x\\|y`");
  });
});
