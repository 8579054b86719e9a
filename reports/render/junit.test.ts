import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../run-record.ts';
import { errorRun, everyCauseRun, noRequestsRun, podKillRun, rolloutPassRun } from '../testing/synthetic.ts';
import { renderJunit, xmlAttr, xmlText } from './junit.ts';

const XSD = new URL('../schema/junit.xsd', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'verdict-junit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** xmllint --schema on the rendered file: the check CI reporters' parsers would make. */
function xmllint(xml: string, name: string): { ok: boolean; out: string } {
  const file = join(dir, `${name}.xml`);
  writeFileSync(file, xml);
  const r = spawnSync('xmllint', ['--noout', '--schema', XSD, file], { encoding: 'utf8' });
  if (r.error)
    throw new Error(`xmllint not found (${r.error.message}): apt-get install libxml2-utils, or run scripts/setup-deps.sh`);
  return { ok: r.status === 0, out: r.stderr };
}

/** The document as a DOM-less summary, parsed by xmllint's --xpath (a real XML parser, not a regex). */
function xpath(xml: string, expr: string): string {
  const file = join(dir, 'xpath.xml');
  writeFileSync(file, xml);
  return execFileSync('xmllint', ['--xpath', expr, file], { encoding: 'utf8' }).trim();
}

const runs: Record<string, () => { record: RunRecord }> = { podKillRun, rolloutPassRun, everyCauseRun, noRequestsRun, errorRun };

describe('junit.xml', () => {
  for (const [name, make] of Object.entries(runs)) {
    it(`validates against the JUnit schema CI reporters read: ${name}`, () => {
      const r = xmllint(renderJunit(make().record), name);
      expect(r.out).toMatch(/validates/);
      expect(r.ok).toBe(true);
    });
  }

  it('the schema check is real: a file with a bad structure is refused', () => {
    const bad = '<?xml version="1.0"?><testsuites><testsuite name="x"><testcase/></testsuite></testsuites>';
    expect(xmllint(bad, 'bad').ok).toBe(false);
  });

  it('one testsuite per check, one testcase per gate; FAIL carries the evidence and observed values', () => {
    const { record } = podKillRun();
    const xml = renderJunit(record);
    expect(Number(xpath(xml, 'count(/testsuites/testsuite)'))).toBe(1);
    expect(Number(xpath(xml, 'count(//testsuite[@name="pod-kill"]/testcase)'))).toBe(record.checks[0].gates.length);
    const failed = record.checks[0].requests!.failed;
    expect(xpath(xml, 'string(//testcase[@name="no failed request"]/failure/@type)')).toBe('FAIL');
    expect(xpath(xml, 'string(//testcase[@name="no failed request"]/failure/@message)')).toContain(
      `${failed} of 12000 requests failed`,
    );
    expect(xpath(xml, 'string(//testcase[@name="no failed request"]/failure)')).toMatch(
      new RegExp(`observed:\\n  failed: ${failed}\\n  total: 12000`),
    );
    expect(xpath(xml, 'string(/testsuites/@failures)')).toBe('1');
    expect(xpath(xml, 'string(/testsuites/@tests)')).toBe(String(record.checks[0].gates.length));
    expect(Number(xpath(xml, 'count(//testcase[@name="load as planned"]/*[self::failure or self::error])'))).toBe(0);
  });

  it('INCONCLUSIVE is a failure (never green), ERROR an error', () => {
    const { record } = rolloutPassRun();
    record.checks[0].gates[1] = {
      ...record.checks[0].gates[1],
      verdict: 'INCONCLUSIVE',
      evidence: 'only 12 requests (at least 300 needed to judge)',
    };
    record.checks[0].gates[2] = { ...record.checks[0].gates[2], verdict: 'ERROR', evidence: 'the metric source answered 500' };
    const xml = renderJunit(record);
    expect(xpath(xml, 'string(//testcase[@name="no failed request"]/failure/@type)')).toBe('INCONCLUSIVE');
    expect(xpath(xml, 'string(//testcase[@name="traffic crossed the rollout"]/error/@type)')).toBe('ERROR');
    expect(xpath(xml, 'string(/testsuites/@failures)')).toBe('1');
    expect(xpath(xml, 'string(/testsuites/@errors)')).toBe('1');
    expect(xmllint(xml, 'inconclusive').ok).toBe(true);
  });

  it('a run that ended in ERROR with no checks: one testcase with the error, escaped, still valid XML', () => {
    const { record } = errorRun();
    const xml = renderJunit(record);
    expect(xmllint(xml, 'error-run').ok).toBe(true);
    expect(xpath(xml, 'string(//testcase[@name="run"]/error/@type)')).toBe('ERROR');
    const body = xpath(xml, 'string(//testcase[@name="run"]/error)');
    expect(body).toContain('kube-apiserver unreachable');
    expect(body).toContain('& <tags> "quotes" </script><!-- ]]>');
    // The output sanitiser's escapes (lib/safe-text.ts): visible, one line per field.
    expect(body).toContain('\\x1b[31mraw\\x1b[0m bytes \\x00\\x07');
    expect(body).toContain('after 5 tries\\n\\x1b[31m');
    expect(body).toContain('\\ufffe end');
    expect(xpath(xml, 'string(/testsuites/@errors)')).toBe('1');
  });

  it('a check that broke with no gates gets one testcase carrying its error', () => {
    const { record } = noRequestsRun();
    record.checks[1] = { ...record.checks[1], verdict: 'ERROR', gates: [], error: 'the Service has no endpoints' };
    const xml = renderJunit(record);
    expect(xmllint(xml, 'check-error').ok).toBe(true);
    expect(Number(xpath(xml, 'count(//testsuite[@name="smoke"]/testcase)'))).toBe(1);
    expect(xpath(xml, 'string(//testsuite[@name="smoke"]/testcase/error/@message)')).toBe('ERROR: the Service has no endpoints');
  });

  it('a record whose verdict is not PASS is never all green, even when every gate passed', () => {
    const { record } = rolloutPassRun();
    record.verdict = 'INCONCLUSIVE';
    record.headline = 'INCONCLUSIVE: the run was interrupted';
    const xml = renderJunit(record);
    expect(xmllint(xml, 'not-green').ok).toBe(true);
    expect(xpath(xml, 'string(//testcase[@name="run verdict"]/failure/@type)')).toBe('INCONCLUSIVE');
    // and a PASS record has no failure and no error at all
    const pass = renderJunit(rolloutPassRun().record);
    expect(xpath(pass, 'count(//failure | //error)')).toBe('0');
  });

  it('escapes text and attributes, including characters XML 1.0 forbids', () => {
    expect(xmlText('a < b && c > d')).toBe('a &lt; b &amp;&amp; c &gt; d');
    expect(xmlAttr('say "hi"\nthen\tgo')).toBe('say &quot;hi&quot;&#10;then&#9;go');
    expect(xmlText('\u0000\u001f\ud800x')).toBe('\\u0000\\u001f\ufffdx');
  });
});
