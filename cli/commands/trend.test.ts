import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunHistory } from '../../reports/history.ts';
import { podKillRun } from '../../reports/testing/synthetic.ts';

const verdict = resolve(import.meta.dirname, '../verdict.ts');
const root = mkdtempSync(join(tmpdir(), 'verdict-trend-cli-'));
const history = join(root, 'ci-cache', 'history.sqlite');

beforeAll(() => {
  using h = RunHistory.open(history);
  for (let day = 1; day <= 3; day++) {
    const r = structuredClone(podKillRun().record);
    r.startedAt = `2026-03-0${day}T14:00:00Z`;
    r.checks[0].figures = { failed_requests: day };
    r.checks[0].replicas = 3;
    h.append(r);
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [verdict, 'trend', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: 'true' },
      cwd: root,
    });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('verdict trend', () => {
  it('prints a shared history (--history) and writes trend.html beside it', async () => {
    const r = await cli(['pod-kill', '--history', history]);
    expect(r.stderr).toContain(`verdict trend: wrote ${join(root, 'ci-cache', 'trend.html')}`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('pod-kill · embedded · license-api · 3 replicas: 3 runs (0 PASS without a fault: the baseline)');
    expect(r.stdout).toMatch(/2026-03-03 14:00 +FAIL +– +3\n/);
    expect(readFileSync(join(root, 'ci-cache', 'trend.html'), 'utf8')).toContain(
      '<script type="application/json" id="trend-data">',
    );
  });

  it('no history, or no run of the experiment named: exit 64 saying what to do', async () => {
    const missing = await cli([]);
    expect(missing.code).toBe(64);
    expect(missing.stderr).toContain(
      `no run history at ${join(root, '.reports', 'history.sqlite')}: every verify-local or experiment run appends to .reports/history.sqlite (or to its --history); name another with --history`,
    );
    expect(existsSync(join(root, '.reports'))).toBe(false);
    const unknown = await cli(['rollout-under-load', '--history', history]);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain(`no run of "rollout-under-load" in ${history}; it holds: pod-kill`);
  });
});
