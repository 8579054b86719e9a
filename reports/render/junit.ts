/**
 * junit.xml: what CI test reporters read (Jenkins, GitLab, the GitHub test-report actions). One
 * <testsuite> per check, one <testcase> per gate; validated in the tests against our schema of the format
 * CI reporters read (reports/schema/junit.xsd).
 *
 * Verdicts map to JUnit as follows:
 *   PASS          a testcase with no child: green.
 *   FAIL          <failure type="FAIL" message="evidence">evidence + observed values</failure>
 *   ERROR         <error type="ERROR" ...>: the measurement or the run broke.
 *   INCONCLUSIVE  <failure type="INCONCLUSIVE" ...>. JUnit has no "not judged" outcome, and the
 *                 nearest one, <skipped>, is shown as neutral or even green by most reporters and
 *                 does not fail a build. INCONCLUSIVE must never look like a pass ("do not
 *                 promote"), so it is a failure whose type says it was not a FAIL.
 * A check that broke with no gates gets one testcase carrying its error; a run-level error gets a
 * suite of its own. Whatever the checks say, a record whose verdict is not PASS never produces an
 * all-green file: if nothing else failed, a "run verdict" testcase carries the record's verdict.
 */
import { ExitCode, type Verdict } from '../../lib/verdict.ts';
import type { CheckRecord, GateRecord, RunRecord } from '../run-record.ts';
import type { ReportRenderer } from './renderer.ts';
import { safeText as field } from '../../lib/safe-text.ts';

// ------------------------------------------------------------------ XML text

/**
 * Characters XML 1.0 does not allow at all (not even as &#n; references): C0 controls other than
 * tab, LF and CR, U+FFFE, U+FFFF and lone surrogates. They are written as a visible `\u001b`-style
 * escape so the evidence keeps its meaning.
 */
const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

function clean(s: string): string {
  return s.toWellFormed().replace(FORBIDDEN, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Text content: &, < and > escaped (> too, so `]]>` can never appear). */
export function xmlText(s: string): string {
  return clean(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An attribute value in double quotes; newlines and tabs as references so parsers keep them. */
export function xmlAttr(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

// ------------------------------------------------------------------ the document

const seconds = (ms: number) => (Math.max(0, ms) / 1000).toFixed(3);
const span = (a: string, b: string) => seconds(Date.parse(b) - Date.parse(a));
/** Ant/Surefire timestamps: ISO 8601 without a zone (these are UTC). */
const stamp = (iso: string) => iso.slice(0, 19);

interface Case {
  name: string;
  classname: string;
  verdict: Verdict;
  message: string;
  body: string;
}

function observedText(o: GateRecord['observed']): string {
  const entries = Object.entries(o);
  if (!entries.length) return '';
  return '\n\nobserved:\n' + entries.map(([k, v]) => `  ${field(k)}: ${v === null ? 'null' : field(String(v))}`).join('\n');
}

function caseXml(c: Case, indent: string): string {
  const open = `${indent}<testcase name="${xmlAttr(c.name)}" classname="${xmlAttr(c.classname)}" time="0"`;
  if (c.verdict === 'PASS')
    return c.body ? `${open}>\n${indent}  <system-out>${xmlText(c.body)}</system-out>\n${indent}</testcase>` : `${open}/>`;
  const tag = c.verdict === 'ERROR' ? 'error' : 'failure';
  return `${open}>\n${indent}  <${tag} type="${c.verdict}" message="${xmlAttr(`${c.verdict}: ${c.message}`)}">${xmlText(c.body)}</${tag}>\n${indent}</testcase>`;
}

function checkCases(record: RunRecord, check: CheckRecord): Case[] {
  const classname = `verdict.${record.command}.${check.name}`;
  // Each field passes the output sanitiser (a CI reporter prints these lines): no control
  // characters, no line break inside a field, no leading `::` workflow command.
  const cases: Case[] = check.gates.map((g) => ({
    name: field(g.name),
    classname,
    verdict: g.verdict,
    message: field(g.evidence),
    body:
      g.verdict === 'PASS'
        ? field(g.evidence) + observedText(g.observed)
        : `${field(g.evidence)}${observedText(g.observed)}\n\ncheck: ${field(check.name)} (${check.kind}), verdict ${check.verdict}`,
  }));
  if (check.error !== null) {
    cases.push({
      name: field(check.gates.length ? `${check.name}: error` : check.name),
      classname,
      verdict: 'ERROR',
      message: field(check.error),
      body: field(check.error),
    });
  } else if (!check.gates.length) {
    // Nothing judged it: one testcase with the check's own verdict (INCONCLUSIVE when not PASS).
    cases.push({
      name: check.name,
      classname,
      verdict: check.verdict,
      message: field(check.description || 'no gate judged this check'),
      body: field(check.description),
    });
  } else if (check.verdict !== 'PASS' && cases.every((c) => c.verdict === 'PASS')) {
    cases.push({
      name: `${check.name}: verdict`,
      classname,
      verdict: check.verdict,
      message: `the check's verdict is ${check.verdict} although every gate passed`,
      body: field(check.description),
    });
  }
  return cases;
}

function suiteXml(
  name: string,
  cases: Case[],
  attrs: { time: string; timestamp: string; hostname: string },
  properties: Record<string, string>,
): string {
  const failures = cases.filter((c) => c.verdict === 'FAIL' || c.verdict === 'INCONCLUSIVE').length;
  const errors = cases.filter((c) => c.verdict === 'ERROR').length;
  const props = Object.entries(properties)
    .map(([k, v]) => `      <property name="${xmlAttr(k)}" value="${xmlAttr(v)}"/>`)
    .join('\n');
  return [
    `  <testsuite name="${xmlAttr(name)}" tests="${cases.length}" failures="${failures}" errors="${errors}" skipped="0" time="${attrs.time}" timestamp="${attrs.timestamp}" hostname="${xmlAttr(attrs.hostname)}">`,
    ...(props ? ['    <properties>', props, '    </properties>'] : []),
    ...cases.map((c) => caseXml(c, '    ')),
    '  </testsuite>',
  ].join('\n');
}

export function renderJunit(record: RunRecord): string {
  const host = record.harness.host;
  const suites: { name: string; cases: Case[]; xml: string }[] = [];
  for (const check of record.checks) {
    const cases = checkCases(record, check);
    const props: Record<string, string> = { verdict: check.verdict, kind: check.kind, description: field(check.description) };
    if (check.requests) {
      props['requests.total'] = String(check.requests.total);
      props['requests.failed'] = String(check.requests.failed);
      props['requests.dropped'] = String(check.requests.dropped);
    }
    for (const f of check.failures) props[`failures.${f.cause}`] = String(f.count);
    suites.push({
      name: check.name,
      cases,
      xml: suiteXml(
        check.name,
        cases,
        { time: span(check.startedAt, check.endedAt), timestamp: stamp(check.startedAt), hostname: host },
        props,
      ),
    });
  }
  const runCases: Case[] = [];
  const classname = `verdict.${record.command}`;
  if (record.error !== null) {
    runCases.push({
      name: 'run',
      classname,
      verdict: 'ERROR',
      message: field(record.error),
      body: `${field(record.headline)}\n\n${field(record.error)}`,
    });
  } else if (record.verdict !== 'PASS' && suites.every((s) => s.cases.every((c) => c.verdict === 'PASS'))) {
    runCases.push({
      name: 'run verdict',
      classname,
      verdict: record.verdict,
      message: field(record.headline),
      body: field(record.headline),
    });
  } else if (record.checks.length === 0) {
    // A PASS with nothing judged cannot be (worst-of of nothing is INCONCLUSIVE); keep the file non-empty anyway.
    runCases.push({
      name: 'run verdict',
      classname,
      verdict: record.verdict,
      message: field(record.headline),
      body: field(record.headline),
    });
  }
  if (runCases.length) {
    const props = {
      verdict: record.verdict,
      'exit code': String(ExitCode[record.verdict]),
      target: `${record.target.kind} ${record.target.name}`,
    };
    suites.push({
      name: `${record.command} (run)`,
      cases: runCases,
      xml: suiteXml(
        `${record.command} (run)`,
        runCases,
        { time: seconds(record.durationMs), timestamp: stamp(record.startedAt), hostname: host },
        props,
      ),
    });
  }
  const all = suites.flatMap((s) => s.cases);
  const failures = all.filter((c) => c.verdict === 'FAIL' || c.verdict === 'INCONCLUSIVE').length;
  const errors = all.filter((c) => c.verdict === 'ERROR').length;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<!-- ${xmlText(`verdict ${record.command}: ${record.verdict} (exit ${ExitCode[record.verdict]}); written from verdict.json (schema verdict/v1)`).replace(/-(?=-)/g, '- ')} -->`,
    `<testsuites name="${xmlAttr(`verdict ${record.command}`)}" tests="${all.length}" failures="${failures}" errors="${errors}" time="${seconds(record.durationMs)}">`,
    ...suites.map((s) => s.xml),
    '</testsuites>',
    '',
  ].join('\n');
}

export const junitReport: ReportRenderer<'junit'> = {
  format: 'junit',
  file: 'junit.xml',
  render: (record) => renderJunit(record),
};
