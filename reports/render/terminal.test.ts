import { describe, expect, it } from 'vitest';
import type { CheckRecord } from '../run-record.ts';
import { errorRun, everyCauseRun, podKillRun, rolloutPassRun } from '../testing/synthetic.ts';
import { ProgressLine, isCi, printRunSummary, renderTerminalSummary, terminalStyle, type OutputStream } from './terminal.ts';

const ESC = '\x1b';

function sink(tty: boolean, columns = 100, rows = 24): OutputStream & { text: string } {
  const s = {
    text: '',
    isTTY: tty,
    columns,
    rows,
    write(x: string) {
      s.text += x;
      return true;
    },
  };
  return s;
}

describe('terminal style', () => {
  it('colour only on a TTY, outside CI, without NO_COLOR', () => {
    expect(terminalStyle(sink(true), {})).toMatchObject({ interactive: true, color: true, width: 100 });
    expect(terminalStyle(sink(true), { CI: 'true' })).toMatchObject({ interactive: false, color: false, width: null });
    expect(terminalStyle(sink(true), { NO_COLOR: '1' })).toMatchObject({ interactive: true, color: false });
    expect(terminalStyle(sink(true), { NO_COLOR: '' })).toMatchObject({ color: true });
    expect(terminalStyle(sink(false), {})).toMatchObject({ interactive: false, color: false });
    expect(isCi({ CI: 'false' })).toBe(false);
    expect(isCi({ CI: '1' })).toBe(true);
  });
});

describe('the one-screen summary', () => {
  it('plain in CI: verdict, each gate on one line, failures by cause, the report path, the exit code', () => {
    const { record } = podKillRun();
    const out = sink(true);
    printRunSummary(record, '/runs/experiment-x/report.html', out, { CI: 'true' });
    expect(out.text).not.toContain(ESC);
    const lines = out.text.trimEnd().split('\n');
    expect(lines[0]).toBe(`FAIL  ${record.checks[0].requests!.failed} of 12,000 requests failed in pod-kill`);
    const q = record.checks[0].requests!;
    expect(out.text).toContain(
      ` · ${q.failed} failed (${q.byConnection!.new.failed} on new, ${q.byConnection!.reused.failed} on reused connections) · `,
    );
    for (const g of record.checks[0].gates)
      expect(lines.filter((l) => l.includes(`${g.verdict}`) && l.includes(`${g.name}: ${g.evidence}`))).toHaveLength(1);
    expect(out.text).toMatch(/failures by cause: endpoint-not-yet-removed \d+ · reset-during-drain \d+/);
    // The top cause in one line: how many, where most of them were, and why.
    const top = record.checks[0].failures[0];
    const lead = top.breakdown![0];
    expect(lines.filter((l) => l.startsWith('    top cause: '))).toEqual([
      `    top cause: ${top.cause}: ${top.count} of ${record.checks[0].requests!.failed} failures (${Math.round((top.count / record.checks[0].requests!.failed) * 100)} %), mostly ${lead.version} · ${lead.route} (${lead.count}): ${top.examples[0].reason}`,
    ]);
    expect(out.text).not.toContain('WARNING');
    expect(out.text).toContain('  report: /runs/experiment-x/report.html\n');
    expect(lines.at(-1)).toBe('  exit 1: do not promote');
  });

  it('unknown causes over 1 % of the failures: a WARNING line', () => {
    const { record } = everyCauseRun();
    const out = sink(false);
    printRunSummary(record, null, out, { CI: 'true' });
    const unknown = record.checks[0].failures.find((f) => f.cause === 'unknown')!.count;
    expect(out.text).toMatch(
      new RegExp(
        `\\n {4}! WARNING: ${unknown} of ${record.checks[0].requests!.failed} failures \\(\\d+(\\.\\d)? %\\) have no known cause \\(unknown\\)`,
      ),
    );
  });

  it('coloured on a terminal, and cut to its width', () => {
    const out = sink(true, 60);
    printRunSummary(rolloutPassRun().record, 'r.html', out, {});
    expect(out.text).toContain(`${ESC}[32m${ESC}[1mPASS`);
    const visible = out.text
      .replace(/\x1b\[[0-9;]*m/g, '')
      .trimEnd()
      .split('\n');
    for (const l of visible) expect([...l].length).toBeLessThanOrEqual(60);
    expect(visible.at(-1)).toBe('  exit 0: promote');
  });

  it('an ERROR run with no checks says why', () => {
    const text = renderTerminalSummary(errorRun().record, { style: terminalStyle(sink(false), {}), reportPath: null });
    expect(text.split('\n')[0]).toBe('ERROR  the cluster was lost before any check ran (<no verdict> & "no evidence")');
    expect(text).toContain('! run error: kube-apiserver unreachable');
    expect(text).not.toMatch(/[\u0000-\u0008\u001b]/); // nothing from the error drives the terminal
    expect(text.trimEnd().split('\n').at(-1)).toBe('  exit 3: do not promote');
  });

  it('fits one screen however many checks: failing ones with their failing gates, passing ones counted', () => {
    const base = podKillRun().record;
    const c = base.checks[0];
    const checks: CheckRecord[] = [];
    for (let i = 0; i < 200; i++)
      checks.push({
        ...c,
        name: `check-${i}`,
        verdict: i % 50 === 7 ? 'FAIL' : 'PASS',
        gates: i % 50 === 7 ? c.gates : c.gates.map((g) => ({ ...g, verdict: 'PASS' })),
      });
    base.checks = checks;
    const text = renderTerminalSummary(base, {
      style: { interactive: true, color: false, width: 120, rows: 24 },
      reportPath: 'r.html',
    });
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBeLessThanOrEqual(24);
    expect(text).toContain('check-7 (experiment)  FAIL');
    expect(text).toContain('check-157 (experiment)  FAIL');
    expect(text).toContain('✗ FAIL         no failed request');
    expect(text).not.toContain('✓ PASS         load as planned');
    expect(text).toContain('  196 checks passed');
    // with 40 failing checks not even that fits: the rest is counted
    base.checks = checks.map((x, i) => ({ ...x, verdict: i % 5 === 0 ? 'FAIL' : x.verdict }));
    const more = renderTerminalSummary(base, {
      style: { interactive: true, color: false, width: 120, rows: 24 },
      reportPath: 'r.html',
    });
    expect(more.trimEnd().split('\n').length).toBeLessThanOrEqual(24);
    expect(more).toMatch(/… and \d+ more checks that did not pass/);
  });
});

describe('ProgressLine', () => {
  it('rewrites one line on a TTY', () => {
    const out = sink(true, 30);
    const p = new ProgressLine({ stream: out, env: {} });
    p.update('10 s  200 req/s  0 failed');
    p.update('11 s  200 req/s  1 failed and a long tail that will not fit');
    p.log('pod deleted');
    p.done('finished');
    expect(out.text).toBe(
      '\r10 s  200 req/s  0 failed\x1b[K' +
        '\r11 s  200 req/s  1 failed an…\x1b[K' +
        '\r\x1b[Kpod deleted\n11 s  200 req/s  1 failed an…\x1b[K' +
        '\r\x1b[Kfinished\n',
    );
  });

  it('prints plain lines at most every N seconds in CI', () => {
    const out = sink(true);
    let now = 0;
    const p = new ProgressLine({ stream: out, env: { CI: 'true' }, everyMs: 5000, now: () => now });
    for (now = 0; now <= 12_000; now += 1000) p.update(`t=${now}`);
    p.done();
    expect(out.text).toBe('t=0\nt=5000\nt=10000\n');
    expect(out.text).not.toContain('\r');
  });

  it('a step line with what a service or a cluster said cannot drive the terminal or command CI (issue 19 item 10)', () => {
    const hostile = `pod x: ${ESC}]52;c;cHduZWQ=\x07${ESC}[2J\r\n[   1.0s] rollout: PASS forged\n::error::forged`;
    for (const tty of [true, false]) {
      const out = sink(tty);
      const p = new ProgressLine({ stream: out, env: tty ? {} : { CI: 'true' } });
      p.log(hostile);
      p.done('::add-mask::x');
      const lines = out.text
        .replace(/\r\x1b\[K/g, '')
        .split('\n')
        .filter(Boolean);
      expect(lines).toEqual([
        'pod x: \\x1b]52;c;cHduZWQ=\\x07\\x1b[2J\\r\\n[   1.0s] rollout: PASS forged\\n::error::forged',
        '\\x3a:add-mask::x',
      ]);
    }
  });
});
