import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand } from './run.ts';
import { running } from './tree.ts';

const dir = mkdtempSync(join(tmpdir(), 'verdict-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Resolves with the pids a script wrote to `file` (one per line) once it has written `n` of them. */
async function pidsIn(file: string, n: number): Promise<number[]> {
  for (;;) {
    const pids = (() => {
      try {
        return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    })();
    if (pids.length >= n) return pids;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('runCommand', () => {
  it('resolves with the output; a failure names the command, its exit code and the end of its stderr', async () => {
    await expect(runCommand('bash', ['-c', 'echo out; echo err >&2'])).resolves.toEqual({ stdout: 'out\n', stderr: 'err\n' });
    await expect(runCommand('bash', ['-c', 'echo why >&2; exit 4'])).rejects.toThrow(
      /^`bash -c echo why >&2; exit 4` failed \(exit 4\):\nwhy$/,
    );
    await expect(runCommand('verdict-no-such-program', [])).rejects.toThrow('verdict-no-such-program not found on PATH');
  });

  it('on abort stops the command and what it started, and rejects with the reason once none of them runs', async () => {
    const file = join(dir, 'tree');
    const ac = new AbortController();
    // A parent that waits on two children (a `kind load` waiting on its `docker save` and import).
    const done = runCommand(
      'bash',
      ['-c', `sleep 30 & echo $! >> ${file}; sleep 30 & echo $! >> ${file}; echo $$ >> ${file}; wait`],
      {
        signal: ac.signal,
      },
    );
    const pids = await pidsIn(file, 3);
    expect(pids.every(running)).toBe(true);
    ac.abort(new Error('interrupted (Ctrl-C)'));
    await expect(done).rejects.toThrow('interrupted (Ctrl-C)');
    expect(pids.filter(running)).toEqual([]);
  });

  it('a child that ignores SIGTERM is killed after the grace period; an aborted signal starts nothing', async () => {
    const file = join(dir, 'stubborn');
    const ac = new AbortController();
    const done = runCommand('bash', ['-c', `trap '' TERM; sleep 60 & echo $! >> ${file}; echo $$ >> ${file}; wait`], {
      signal: ac.signal,
    });
    const pids = await pidsIn(file, 2);
    ac.abort(new Error('stop'));
    await expect(done).rejects.toThrow('stop');
    expect(pids.filter(running)).toEqual([]);

    const marker = join(dir, 'never');
    await expect(
      runCommand('bash', ['-c', `touch ${marker}`], { signal: AbortSignal.abort(new Error('already')) }),
    ).rejects.toThrow('already');
    expect(() => readFileSync(marker)).toThrow();
  }, 15_000);
});
