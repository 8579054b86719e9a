/**
 * summary.md: the run in GitHub-flavoured Markdown, made to be appended to `$GITHUB_STEP_SUMMARY`.
 * GitHub refuses a step summary over 1 MiB, so the text is built under a byte budget: the header
 * and the table of checks first, then each check's gates and failures; when the budget runs short
 * the examples shrink (10 → 3 → 1 → none), then whole sections are left out, and the summary says
 * what it left out and where to find it (report.html, verdict.json, the ledger).
 */
import { appendFile, stat } from 'node:fs/promises';
import { ExitCode, type Verdict } from '../../lib/verdict.ts';
import type { CheckRecord, FailureExample, RunRecord } from '../run-record.ts';
import type { ReportRenderer } from './renderer.ts';
import { safeText } from '../../lib/safe-text.ts';
import { topCause, unknownWarning } from '../failure-summary.ts';
import { connectionEvidence } from '../gates.ts';

/** GitHub's limit for one step's summary is 1 MiB; stay a little under it. */
export const SUMMARY_MAX_BYTES = 1024 * 1024 - 16 * 1024;

export const VERDICT_ICON: Record<Verdict, string> = { PASS: '✅', FAIL: '❌', INCONCLUSIVE: '⚠️', ERROR: '💥' };

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const int = (n: number) => n.toLocaleString('en-US');

/** Inline text: newlines folded, then the output sanitiser (lib/safe-text.ts), then Markdown and HTML specials escaped. */
export function mdText(s: string, max = 2000): string {
  let t = safeText(s.replace(/\r?\n/g, ' ⏎ ')).replace(/[\uFFFE\uFFFF]/g, '');
  if (t.length > max) t = t.slice(0, max) + '… (cut)';
  return t.replace(/[\\`*_[\]|<>&#]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : `\\${c}`));
}

/** Text for a `code span`: no escapes work there, so backticks and newlines are replaced instead. */
export function mdCode(s: string, max = 300): string {
  let t = safeText(s.replace(/\r?\n/g, ' '))
    .replace(/[\uFFFE\uFFFF]/g, ' ')
    .replace(/`/g, "'");
  if (t.length > max) t = t.slice(0, max) + '…';
  // GFM splits table cells on | before it parses code spans.
  return '`' + t.replace(/\|/g, '\\|') + '`';
}

const utc = (ms: number) => new Date(ms).toISOString().slice(11, 23);

function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

function header(r: RunRecord): string {
  const lines = [
    `## ${VERDICT_ICON[r.verdict]} ${r.verdict} · ${mdCode(`verdict ${r.command}`, 100)}`,
    '',
    `**${mdText(r.headline)}**`,
    '',
  ];
  const t = r.target;
  const target = [`${t.kind} ${mdCode(t.name, 200)}`];
  if (t.context) target.push(`context ${mdCode(t.context, 200)}`);
  if (t.serverVersion) target.push(`Kubernetes ${mdText(t.serverVersion, 100)}`);
  if (t.url) target.push(mdText(t.url, 300));
  const facts = [`**Target** ${target.join(', ')}`];
  if (r.app) {
    const v = Object.entries(r.app.versions)
      .map(([k, x]) => `${mdText(k, 50)} ${mdText(x, 100)}`)
      .join(', ');
    facts.push(
      `**App** ${mdText(r.app.name, 100)}${v ? ` (${v})` : ''}${r.app.faults.length ? ` · **deliberate faults:** ${r.app.faults.map((f) => mdText(f, 100)).join(', ')}` : ''}`,
    );
  }
  facts.push(
    `**Ran** ${r.startedAt.replace('T', ' ').slice(0, 19)} UTC for ${duration(r.durationMs)} · exit code ${ExitCode[r.verdict]} · harness ${mdText(r.harness.version, 50)} on Node ${mdText(r.harness.node, 50)}`,
  );
  for (const a of r.approvals ?? [])
    facts.push(
      `**Approved** (${mdText(a.what, 50)}) by ${mdText(a.by, 200)}${a.reason ? `: ${mdText(a.reason, 500)}` : ''}${a.detail ? ` (${mdText(a.detail, 500)})` : ''}`,
    );
  lines.push(facts.join('  \n'), '');
  if (r.error !== null) lines.push(`> 💥 **The run broke:** ${mdText(r.error, 4000)}`, '');
  return lines.join('\n') + '\n';
}

function checkRow(c: CheckRecord): string {
  const q = c.requests;
  const cols = [
    mdText(c.name, 200),
    c.kind,
    `${VERDICT_ICON[c.verdict]} ${c.verdict}`,
    q ? int(q.total) : '–',
    q ? int(q.failed) : '–',
    q ? int(q.dropped) : '–',
    c.latency ? `${c.latency.p99.toFixed(1)} ms` : '–',
    c.failures.length
      ? c.failures
          .slice(0, 3)
          .map((f) => `${f.cause} ${int(f.count)}`)
          .join(', ') + (c.failures.length > 3 ? ', …' : '')
      : '',
  ];
  return `| ${cols.join(' | ')} |\n`;
}
/** Version × route rows per cause in the summary's failure table (the rest are summed in one row). */
const BREAKDOWN_ROWS = 5;

const CHECKS_HEAD =
  '| check | kind | verdict | requests | failed | dropped | p99 | failures by cause |\n|---|---|---|--:|--:|--:|--:|---|\n';

function example(e: FailureExample): string {
  const what = [e.status ? String(e.status) : null, e.error].filter(Boolean).join(' ') || 'failed';
  const pod = e.pod
    ? `${mdCode(e.pod, 200)}${e.version ? ` (${mdText(e.version, 50)})` : ''}${e.attributedBy === 'proxy-connection' ? ' via the proxy' : ''}`
    : 'pod unknown';
  const hist = e.podHistory.length
    ? ` — pod: ${e.podHistory
        .slice(-3)
        .map((h) => `${mdText(h.change, 60)} ${utc(h.at)}`)
        .join(', ')}`
    : '';
  return `  - ${utc(e.at)} ${mdText(e.step, 100)}: ${mdText(what, 100)} on ${pod}${hist}\n`;
}

function checkDetail(c: CheckRecord, examples: number, evidenceMax: number): string {
  const out: string[] = [`### ${VERDICT_ICON[c.verdict]} ${mdText(c.name, 200)} (${c.kind}): ${c.verdict}\n`];
  if (c.description) out.push(`${mdText(c.description, 1000)}\n\n`);
  if (c.error !== null) out.push(`> 💥 **Error:** ${mdText(c.error, evidenceMax * 2)}\n\n`);
  if (c.gates.length) {
    out.push('| gate | verdict | evidence |\n|---|---|---|\n');
    for (const g of c.gates)
      out.push(`| ${mdText(g.name, 200)} | ${VERDICT_ICON[g.verdict]} ${g.verdict} | ${mdText(g.evidence, evidenceMax)} |\n`);
  }
  if (c.failures.length) {
    const total = c.failures.reduce((s, f) => s + f.count, 0);
    const top = topCause(c);
    if (top) out.push(`\n**Top cause:** ${mdText(top.line, evidenceMax)}\n`);
    if (c.requests?.byConnection) out.push(`\n**Failed by connection:** ${connectionEvidence(c.requests.byConnection)}\n`);
    const warning = unknownWarning(c);
    if (warning) out.push(`\n> ⚠️ **WARNING:** ${mdText(warning, evidenceMax)}\n`);
    out.push(
      `\n**Failed requests by cause, version and route** (${int(total)}):\n\n| cause | version | route | count | share |\n|---|---|---|--:|--:|\n`,
    );
    for (const f of c.failures) {
      const cells = f.breakdown?.length ? f.breakdown : [{ version: null, route: '', count: f.count }];
      const shown = cells.slice(0, BREAKDOWN_ROWS);
      for (const x of shown)
        out.push(
          `| ${f.cause} | ${x.version === null ? '–' : mdText(x.version, 50)} | ${x.route ? mdCode(x.route, 120) : '–'} | ${int(x.count)} | ${((x.count / total) * 100).toFixed(1)}% |\n`,
        );
      const rest = cells.slice(BREAKDOWN_ROWS).reduce((n, x) => n + x.count, 0);
      if (rest)
        out.push(
          `| ${f.cause} | … | ${int(cells.length - shown.length)} more | ${int(rest)} | ${((rest / total) * 100).toFixed(1)}% |\n`,
        );
    }
    if (examples > 0) {
      out.push('\n<details><summary>Examples, earliest first</summary>\n\n');
      for (const f of c.failures) {
        out.push(`- **${f.cause}** (${int(f.count)})${f.examples[0] ? `: ${mdText(f.examples[0].reason, 400)}` : ''}\n`);
        for (const e of f.examples.slice(0, examples)) out.push(example(e));
      }
      out.push('\n</details>\n');
    }
  }
  return out.join('') + '\n';
}

function footer(cut: string[]): string {
  const lines = [
    '---',
    '',
    'The timeline (request rate, failures by cause, latency, versions, pod and chaos events) and every failed request are in **report.html** in the run directory; `verdict report <run-dir>` re-renders every file from `verdict.json` and `ledger.ndjson.gz`.',
  ];
  if (cut.length)
    lines.push(
      '',
      `_This summary is shortened to stay under GitHub's 1 MiB step-summary limit: ${cut.join('; ')}. Nothing is left out of verdict.json, report.html or the ledger._`,
    );
  return lines.join('\n') + '\n';
}

export interface MarkdownOptions {
  /** Byte budget for the whole text (default SUMMARY_MAX_BYTES). */
  maxBytes?: number;
}

/** summary.md's text, always under `maxBytes` (UTF-8). */
export function renderMarkdown(record: RunRecord, opts: MarkdownOptions = {}): string {
  const max = opts.maxBytes ?? SUMMARY_MAX_BYTES;
  const cut: string[] = [];
  const reserve = bytes(footer(['x'.repeat(600)]));
  let text = header(record);
  if (bytes(text) + reserve > max) {
    text = `## ${VERDICT_ICON[record.verdict]} ${record.verdict} · ${mdCode(`verdict ${record.command}`, 100)}\n\n**${mdText(record.headline, 500)}**\n\n`;
    cut.push('the run facts');
  }
  let used = bytes(text);
  const budget = max - reserve;
  // Checks that did not pass come first: they are what a reader needs.
  const order = record.checks
    .map((c, i) => ({ c, i }))
    .sort((a, b) => Number(a.c.verdict === 'PASS') - Number(b.c.verdict === 'PASS') || a.i - b.i);
  if (order.length) {
    let table = CHECKS_HEAD;
    let rows = 0;
    for (const { c } of order) {
      const row = checkRow(c);
      if (used + bytes(table) + bytes(row) > budget * 0.5) break;
      table += row;
      rows++;
    }
    if (rows < order.length) cut.push(`${int(order.length - rows)} of ${int(order.length)} checks left out of the table`);
    text += table + '\n';
    used = bytes(text);
  }
  let detailed = 0;
  let fewer = false;
  for (const { c } of order) {
    let block = '';
    for (const [examples, evidenceMax] of [
      [10, 2000],
      [3, 1000],
      [1, 500],
      [0, 300],
    ] as const) {
      block = checkDetail(c, examples, evidenceMax);
      if (used + bytes(block) <= budget) {
        if (examples < 10) fewer = true;
        break;
      }
      block = '';
    }
    if (!block) break;
    text += block;
    used += bytes(block);
    detailed++;
  }
  if (fewer) cut.push('fewer failure examples, shorter evidence');
  if (detailed < order.length) cut.push(`the gates of ${int(order.length - detailed)} of ${int(order.length)} checks left out`);
  text += footer(cut);
  // The budget above makes this unreachable; it is the guarantee, not the plan.
  if (bytes(text) > max)
    text =
      Buffer.from(text)
        .subarray(0, max - 64)
        .toString('utf8')
        .replace(/\uFFFD$/, '') + '\n\n_(cut at the size limit)_\n';
  return text;
}

/**
 * Appends the summary to `$GITHUB_STEP_SUMMARY` when that variable is set. The step's whole summary
 * must stay under 1 MiB, so when the file already holds text (another command of the same step),
 * the summary is rendered again to fit what is left (and nothing is appended when less than 1 KiB
 * is left). Returns the file written to, or null.
 */
export async function appendStepSummary(record: RunRecord, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const file = env.GITHUB_STEP_SUMMARY;
  if (!file) return null;
  const existing = await stat(file).then(
    (s) => s.size,
    () => 0,
  );
  const room = SUMMARY_MAX_BYTES - existing;
  if (room < 1024) return null;
  const text =
    room >= 8 * 1024
      ? renderMarkdown(record, { maxBytes: room })
      : `\n**verdict ${mdText(record.command, 100)}: ${record.verdict}** ${mdText(record.headline, 300)} (the step summary is full; see summary.md in the run directory)\n`;
  await appendFile(file, (existing > 0 ? '\n' : '') + text);
  return file;
}

/** summary.md (writeRun also appends it to `$GITHUB_STEP_SUMMARY` when set). */
export const markdownReport: ReportRenderer<'markdown'> = {
  format: 'markdown',
  file: 'summary.md',
  render: (record) => renderMarkdown(record),
};
