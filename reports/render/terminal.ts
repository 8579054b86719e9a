/**
 * Terminal output: the one-screen summary printed at the end of every verdict-giving run, and a
 * progress line for while it runs. Colour and a rewritten progress line only on an interactive
 * terminal (a TTY, no `CI`, no `NO_COLOR`); plain lines otherwise, so CI logs stay readable.
 */
import { ExitCode, type Verdict } from '../../lib/verdict.ts';
import type { CheckRecord, RunRecord } from '../run-record.ts';
import { safeText } from '../../lib/safe-text.ts';
import { topCause, unknownWarning } from '../failure-summary.ts';

export interface OutputStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

/** `CI` set to anything but "", "0" or "false" (GitHub, GitLab, Jenkins and most others set CI=true). */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

export interface TerminalStyle {
  /** ANSI colour and a rewritten progress line. */
  interactive: boolean;
  color: boolean;
  /** Columns to fit lines into (null: do not cut; CI logs are wide). */
  width: number | null;
  /** Lines the summary may take (one screen). */
  rows: number;
}

/** Interactive when the stream is a TTY and not in CI; colour when interactive and NO_COLOR is unset (no-color.org). */
export function terminalStyle(stream: OutputStream = process.stdout, env: NodeJS.ProcessEnv = process.env): TerminalStyle {
  const interactive = Boolean(stream.isTTY) && !isCi(env);
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return {
    interactive,
    color: interactive && !noColor,
    width: interactive ? Math.max(40, stream.columns ?? 100) : null,
    rows: interactive ? Math.max(12, (stream.rows ?? 24) - 1) : 30,
  };
}

const SGR = {
  reset: '\x1b[0m',
  bold: '\x1b[1m',
  dim: '\x1b[2m',
  red: '\x1b[31m',
  green: '\x1b[32m',
  yellow: '\x1b[33m',
  magenta: '\x1b[35m',
};
const VERDICT_COLOR: Record<Verdict, string> = { PASS: SGR.green, FAIL: SGR.red, INCONCLUSIVE: SGR.yellow, ERROR: SGR.magenta };
export const VERDICT_MARK: Record<Verdict, string> = { PASS: '✓', FAIL: '✗', INCONCLUSIVE: '?', ERROR: '!' };

const int = (n: number) => n.toLocaleString('en-US');
/** Text that came from elsewhere (error messages, evidence): a report must not drive the terminal or the CI log. */
const safe = safeText;

function duration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

interface Painter {
  verdict(v: Verdict, text?: string): string;
  bold(s: string): string;
  dim(s: string): string;
}

function painter(color: boolean): Painter {
  if (!color) return { verdict: (v, t) => t ?? v, bold: (s) => s, dim: (s) => s };
  return {
    verdict: (v, t) => `${VERDICT_COLOR[v]}${SGR.bold}${t ?? v}${SGR.reset}`,
    bold: (s) => `${SGR.bold}${s}${SGR.reset}`,
    dim: (s) => `${SGR.dim}${s}${SGR.reset}`,
  };
}

/** Cuts plain text to `width` columns (counted in code points: close enough for these lines). */
function fit(s: string, width: number | null): string {
  if (width === null) return s;
  const chars = [...s];
  return chars.length <= width ? s : chars.slice(0, width - 1).join('') + '…';
}

/** A line: a head (painted as a whole, e.g. the verdict) and a tail that is cut to the width. */
interface Line {
  head: string;
  tail: string;
  paintHead?: (s: string) => string;
  paintTail?: (s: string) => string;
}

function checkLines(c: CheckRecord, p: Painter, mode: 'full' | 'line' | 'problems'): Line[] {
  const q = c.requests;
  const byConnection =
    q?.byConnection && q.failed
      ? ` (${int(q.byConnection.new.failed)} on new, ${int(q.byConnection.reused.failed)} on reused connections)`
      : '';
  const facts = q
    ? `${int(q.total)} requests · ${int(q.failed)} failed${byConnection} · ${int(q.dropped)} dropped${c.latency ? ` · p99 ${c.latency.p99.toFixed(1)} ms` : ''}`
    : c.kind === 'plan'
      ? `${int(c.gates.filter((g) => g.observed.risk !== undefined).length)} changes`
      : 'no requests';
  const passedGates = c.gates.filter((g) => g.verdict === 'PASS').length;
  const extra = mode === 'problems' && passedGates ? ` · ${passedGates} gate${passedGates === 1 ? '' : 's'} passed` : '';
  const head = `  ${safe(c.name)} (${c.kind})  `;
  const out: Line[] = [
    { head: `${head}${c.verdict}`, paintHead: () => p.bold(head) + p.verdict(c.verdict), tail: `  ${facts}${extra}` },
  ];
  if (mode === 'line') return out;
  for (const g of c.gates) {
    if (mode === 'problems' && g.verdict === 'PASS') continue;
    const left = `    ${VERDICT_MARK[g.verdict]} ${g.verdict.padEnd(12)} `;
    const text = `${safe(g.name)}: ${safe(g.evidence)}`;
    out.push({ head: left, paintHead: (s) => p.verdict(g.verdict, s), tail: text });
  }
  if (c.error !== null) out.push({ head: '    ! error: ', paintHead: (s) => p.verdict('ERROR', s), tail: safe(c.error) });
  const top = topCause(c);
  if (top) out.push({ head: '    top cause: ', paintHead: p.bold, tail: safe(top.line) });
  if (c.failures.length > 1) {
    const causes = c.failures.map((f) => `${f.cause} ${int(f.count)}`).join(' · ');
    out.push({ head: '    failures by cause: ', paintHead: p.dim, tail: causes });
  }
  const warning = unknownWarning(c);
  if (warning) out.push({ head: '    ! WARNING: ', paintHead: (s) => p.verdict('INCONCLUSIVE', s), tail: safe(warning) });
  return out;
}

export interface SummaryOptions {
  style: TerminalStyle;
  /** Path of report.html to point at (null when none was written). */
  reportPath?: string | null;
}

/** The one-screen summary: verdict and headline, each check with its gates on one line each, failures by cause, the report's path and the exit code. */
export function renderTerminalSummary(record: RunRecord, opts: SummaryOptions): string {
  const { style } = opts;
  const p = painter(style.color);
  const headline = safe(record.headline).replace(new RegExp(`^${record.verdict}:?\\s*`), '');
  const top: Line[] = [
    { head: `${record.verdict}  `, paintHead: (s) => p.verdict(record.verdict, s), tail: headline, paintTail: p.bold },
  ];
  const t = record.target;
  const target = [`${t.kind} ${t.name}`, t.context ? `context ${t.context}` : null, t.serverVersion].filter(Boolean).join(', ');
  const app = record.app
    ? ` · ${record.app.name} ${Object.values(record.app.versions).join(' → ')}${record.app.faults.length ? ` (faults: ${record.app.faults.join(', ')})` : ''}`
    : '';
  const facts = `  ${safe(target)}${safe(app)} · ${duration(record.durationMs)}`;
  top.push({ head: '', tail: facts, paintTail: p.dim });
  if (record.error !== null)
    top.push({ head: '  ! run error: ', paintHead: (s) => p.verdict('ERROR', s), tail: safe(record.error) });
  for (const a of record.approvals ?? [])
    top.push({
      head: `  approved (${a.what}): `,
      paintHead: p.bold,
      tail: safe(`by ${a.by}${a.reason ? `: ${a.reason}` : ''}${a.detail ? ` (${a.detail})` : ''}`),
    });

  const bottom: Line[] = [];
  if (opts.reportPath) bottom.push({ head: '  report: ', paintHead: p.dim, tail: opts.reportPath });
  const code = ExitCode[record.verdict];
  const exit = `  exit ${code}: ${record.verdict === 'PASS' ? 'promote' : 'do not promote'}`;
  bottom.push({ head: exit, paintHead: (s) => p.verdict(record.verdict, s), tail: '' });

  const room = Math.max(2, style.rows - top.length - bottom.length);
  const notPassed = record.checks.filter((c) => c.verdict !== 'PASS');
  const passed = record.checks.filter((c) => c.verdict === 'PASS');
  const attempts: (() => Line[])[] = [
    () => record.checks.flatMap((c) => checkLines(c, p, 'full')),
    () => record.checks.flatMap((c) => checkLines(c, p, c.verdict === 'PASS' ? 'line' : 'full')),
    () => [...notPassed.flatMap((c) => checkLines(c, p, 'problems')), ...collapsed(passed.length, p)],
  ];
  let body: Line[] | undefined;
  for (const attempt of attempts) {
    const lines = attempt();
    if (lines.length <= room) {
      body = lines;
      break;
    }
  }
  if (!body) {
    // Still too long: as many checks that did not pass as fit, then a count of the rest.
    body = [];
    let shown = 0;
    for (const c of notPassed) {
      const block = checkLines(c, p, 'problems');
      if (body.length + block.length > room - 2) break;
      body.push(...block);
      shown++;
    }
    const rest = notPassed.length - shown;
    const more = `  … and ${int(rest)} more check${rest === 1 ? '' : 's'} that did not pass (see report.html or summary.md)`;
    if (rest) body.push({ head: '', tail: more, paintTail: p.dim });
    body.push(...collapsed(passed.length, p));
  }
  return [...top, ...body, ...bottom].map((l) => renderLine(l, style)).join('\n') + '\n';
}

function collapsed(n: number, p: Painter): Line[] {
  if (!n) return [];
  const s = `  ${int(n)} check${n === 1 ? '' : 's'} passed`;
  return [{ head: s, paintHead: (x) => p.verdict('PASS', x), tail: '' }];
}

/** The tail is cut so that head + tail fit the width; the head is painted when colour is on. */
function renderLine(l: Line, style: TerminalStyle): string {
  const headLen = [...l.head].length;
  const tail = style.width === null ? l.tail : fit(l.tail, Math.max(1, style.width - headLen));
  if (!style.color) return l.head + tail;
  return (l.head && l.paintHead ? l.paintHead(l.head) : l.head) + (tail && l.paintTail ? l.paintTail(tail) : tail);
}

/** Writes the summary to `stream` with the style that stream calls for. */
export function printRunSummary(
  record: RunRecord,
  reportPath: string | null,
  stream: OutputStream = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): void {
  stream.write(renderTerminalSummary(record, { style: terminalStyle(stream, env), reportPath }));
}

export interface ProgressLineOptions {
  stream?: OutputStream;
  env?: NodeJS.ProcessEnv;
  /** Plain mode (CI, no TTY): at most one line per this many ms. Default 10 s. */
  everyMs?: number;
  now?: () => number;
}

/**
 * A live progress line. On an interactive terminal it rewrites one line in place (\r, erase to the
 * end); in CI or when the output is not a TTY it prints a plain line at most every `everyMs`.
 */
export class ProgressLine {
  readonly interactive: boolean;
  readonly #stream: OutputStream;
  readonly #everyMs: number;
  readonly #now: () => number;
  #last = -Infinity;
  #shown = '';

  constructor(opts: ProgressLineOptions = {}) {
    this.#stream = opts.stream ?? process.stderr;
    this.interactive = terminalStyle(this.#stream, opts.env ?? process.env).interactive;
    this.#everyMs = opts.everyMs ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  update(text: string): void {
    const line = safe(text);
    if (this.interactive) {
      const width = Math.max(20, (this.#stream.columns ?? 100) - 1);
      this.#shown = fit(line, width);
      this.#stream.write(`\r${this.#shown}\x1b[K`);
      return;
    }
    const now = this.#now();
    if (now - this.#last < this.#everyMs) return;
    this.#last = now;
    this.#stream.write(line + '\n');
  }

  /** Prints a line of its own above the progress line (which is redrawn); sanitised as one line. */
  log(raw: string): void {
    const text = safe(raw);
    if (this.interactive && this.#shown) this.#stream.write(`\r\x1b[K${text}\n${this.#shown}\x1b[K`);
    else this.#stream.write(text + '\n');
  }

  /** Removes the progress line (interactive) and prints `final` when given. */
  done(final?: string): void {
    if (this.interactive && this.#shown) this.#stream.write('\r\x1b[K');
    this.#shown = '';
    if (final !== undefined) this.#stream.write(safe(final) + '\n');
  }
}
