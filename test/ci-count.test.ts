import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// .ci/count-tests.mjs decides CI's last line and its exit status from vitest's JSON reports.
const dir = mkdtempSync(join(tmpdir(), 'ci-count-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Status = 'passed' | 'failed' | 'skipped' | 'pending' | 'todo';
function report(name: string, files: Array<{ file: string; status?: string; tests: Array<[string, Status]> }>, success = true) {
  const path = join(dir, `${name}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      success,
      testResults: files.map((f) => ({
        name: join(process.cwd(), f.file),
        status: f.status ?? (f.tests.some(([, s]) => s === 'failed') ? 'failed' : 'passed'),
        message: f.status === 'failed' ? 'Error: hook timed out\n  at …' : '',
        assertionResults: f.tests.map(([fullName, status]) => ({
          fullName,
          status,
          failureMessages: status === 'failed' ? [`AssertionError: expected 'FAIL' to be 'PASS'\n  at ${f.file}:1:1`] : [],
        })),
      })),
    }),
  );
  return path;
}
function count(paths: string[], env: Record<string, string> = {}) {
  const allow = join(dir, 'allowed-skips');
  writeFileSync(allow, '# test list\nlib/x.test.ts | ^allowed one | a reason\n');
  try {
    const out = execFileSync(process.execPath, ['.ci/count-tests.mjs', '--allowed-skips', allow, ...paths], {
      env: { ...process.env, CI: '', ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { rc: 0, line: out.trim() };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { rc: e.status, line: e.stdout.trim(), stderr: e.stderr };
  }
}

describe('.ci/count-tests.mjs', () => {
  const good = report('good', [
    {
      file: 'lib/x.test.ts',
      tests: [
        ['a', 'passed'],
        ['b', 'passed'],
      ],
    },
  ]);

  it('counts passes, exits 0', () => {
    expect(count([good])).toEqual({ rc: 0, line: '2 passed, 0 failed, 0 skipped' });
  });

  it('a missing report is a failure', () => {
    const r = count([good, join(dir, 'missing.json')]);
    expect([r.rc, r.line]).toEqual([1, '2 passed, 1 failed, 0 skipped']);
  });

  it('a file that failed outside any test counts once', () => {
    const p = report('broken', [{ file: 'lib/y.test.ts', status: 'failed', tests: [['c', 'skipped']] }], false);
    const r = count([p], { CI: 'true' });
    expect(r.rc).toBe(1);
    expect(r.stderr).toMatch(/failed outside any test: Error: hook timed out/);
  });

  it("vitest's success: false with nothing failed is a failure", () => {
    const p = report('unsuccessful', [{ file: 'lib/x.test.ts', tests: [['a', 'passed']] }], false);
    expect(count([p])).toMatchObject({ rc: 1, line: '1 passed, 1 failed, 0 skipped' });
  });

  it('in CI a skip fails unless the allow-list names it; outside CI it is only counted', () => {
    const p = report('skips', [
      {
        file: 'lib/x.test.ts',
        tests: [
          ['allowed one', 'skipped'],
          ['not allowed', 'pending'],
          ['x', 'passed'],
        ],
      },
    ]);
    const ci = count([p], { CI: 'true' });
    expect([ci.rc, ci.line]).toEqual([1, '1 passed, 1 failed, 2 skipped']);
    expect(ci.stderr).toMatch(/skipped, and not on \.ci\/allowed-skips: not allowed/);
    expect(count([p])).toMatchObject({ rc: 0, line: '1 passed, 0 failed, 2 skipped' });
  });

  it('names each failed test with the first line of its message, next to the count', () => {
    const p = report('one-failed', [
      {
        file: 'lib/z.test.ts',
        tests: [
          ['z passes', 'passed'],
          ['z rollout PASSes', 'failed'],
        ],
      },
    ]);
    const r = count([p]);
    expect([r.rc, r.line]).toEqual([1, '1 passed, 1 failed, 0 skipped']);
    expect(r.stderr).toContain("lib/z.test.ts: FAILED: z rollout PASSes — AssertionError: expected 'FAIL' to be 'PASS'");
    expect(r.stderr).not.toMatch(/z passes|at lib\/z/);
  });

  it('no test at all is a failure', () => {
    expect(count([report('empty', [])])).toMatchObject({ rc: 1, line: '0 passed, 1 failed, 0 skipped' });
  });
});
