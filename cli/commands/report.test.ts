import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunDirectory, writeRun } from '../../reports/run-directory.ts';
import { errorRun, podKillRun, rolloutPassRun, type SyntheticRun } from '../../reports/testing/synthetic.ts';

const verdict = resolve(import.meta.dirname, '../verdict.ts');
const root = mkdtempSync(join(tmpdir(), 'verdict-report-cli-'));
const dirs: Record<string, string> = {};

async function make(name: string, run: SyntheticRun, at: number): Promise<void> {
  const d = await createRunDirectory(join(root, 'out'), run.record.command, new Date(at));
  await writeRun(d.dir, run.record, run.ledgerLines ? run.ledgerLines() : null, { env: {} });
  dirs[name] = d.dir;
}

beforeAll(async () => {
  await make('fail', podKillRun(), Date.UTC(2026, 2, 3, 14));
  await make('error', errorRun(), Date.UTC(2026, 2, 3, 15));
  await make('pass', rolloutPassRun(), Date.UTC(2026, 2, 3, 16));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [verdict, 'report', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: 'true', ...env },
    });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

describe('verdict report', () => {
  it('re-renders every file of a FAIL run, prints the summary, exits 1', async () => {
    const dir = dirs.fail;
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    for (const f of ['report.html', 'junit.xml', 'summary.md']) rmSync(join(dir, f));
    const r = await cli([dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}\d+ of 12,000 requests failed in pod-kill\n/);
    expect(r.stdout).toContain(`  report: ${join(dir, 'report.html')}\n`);
    expect(r.stdout).not.toContain('\x1b[');
    expect(r.stderr).toMatch(/^verdict report: wrote .*verdict\.json, .*junit\.xml, .*summary\.md, .*report\.html\n$/);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toBe(html);
    expect(existsSync(join(dir, 'junit.xml'))).toBe(true);
  }, 60_000);

  it('PASS exits 0 and ERROR exits 3, through the latest link too', async () => {
    expect((await cli([join(root, 'out', 'latest'), '--format', 'junit'])).code).toBe(0); // latest = the PASS run
    const e = await cli([dirs.error, '--format', 'markdown']);
    expect(e.code).toBe(3);
    expect(e.stdout).toContain('! run error: kube-apiserver unreachable');
  }, 60_000);

  it('--json prints verdict.json and, alone, writes nothing', async () => {
    const dir = dirs.pass;
    rmSync(join(dir, 'summary.md'));
    const r = await cli([dir, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(readFileSync(join(dir, 'verdict.json'), 'utf8')));
    expect(existsSync(join(dir, 'summary.md'))).toBe(false);
    expect(r.stderr).toBe('');
    const m = await cli([dir, '--json', '--format', 'markdown']);
    expect(JSON.parse(m.stdout).verdict).toBe('PASS');
    expect(existsSync(join(dir, 'summary.md'))).toBe(true);
  }, 60_000);

  it('64 when the path is not a run directory or a flag is wrong; 3 when its files cannot be read', async () => {
    const none = await cli([join(root, 'nowhere')]);
    expect(none.code).toBe(64);
    expect(none.stderr).toMatch(
      /nowhere does not exist\. A run directory is what a verdict command writes under its --out folder/,
    );
    const empty = await cli([root]);
    expect(empty.code).toBe(64);
    expect(empty.stderr).toMatch(/is not a run directory: it has no verdict\.json/);
    expect((await cli([dirs.fail, '--format', 'pdf'])).code).toBe(64);
    expect((await cli([])).code).toBe(64);
    await make('broken', podKillRun(), Date.UTC(2026, 2, 3, 17));
    writeFileSync(join(dirs.broken, 'ledger.ndjson.gz'), 'not gzip');
    const r = await cli([dirs.broken]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/ledger\.ndjson\.gz cannot be read: .*take it again from the run's artifact/);
    writeFileSync(join(dirs.broken, 'verdict.json'), '{}');
    const v = await cli([dirs.broken]);
    expect(v.code).toBe(3);
    expect(v.stderr).toMatch(/verdict\.json does not match the verdict\/v1 schema/);
  }, 60_000);
});
