import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { childPids, descendantPids, running, stopTree } from './tree.ts';

describe('process tree (from /proc)', () => {
  it('lists children and grandchildren, parents first, and stops them all', async () => {
    // bash → (bash → sleep), sleep: two levels under the root.
    const root = spawn('bash', ['-c', 'bash -c "sleep 30 & wait" & sleep 30 & wait'], { stdio: 'ignore' });
    const pid = root.pid!;
    let tree: number[] = [];
    for (let i = 0; i < 200 && tree.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 20));
      tree = descendantPids(pid);
    }
    expect(tree).toHaveLength(3);
    const children = childPids(pid);
    expect(children).toHaveLength(2);
    // Each child is listed before its own children.
    expect(tree.slice(0, 2).toSorted((a, b) => a - b)).toEqual(children.toSorted((a, b) => a - b));
    expect(descendantPids(pid)).not.toContain(pid);
    const exited = new Promise((r) => root.once('exit', r));
    await stopTree(pid);
    await exited;
    expect([pid, ...tree].filter(running)).toEqual([]);
  });

  it('a zombie does not count as running; a pid that never was neither', async () => {
    expect(running(process.pid)).toBe(true);
    expect(running(2 ** 22 + 1)).toBe(false);
    // The child ends once its parent has become `sleep`, which never reads its status: a zombie.
    // (Had it ended before the exec, bash would have read it: CI's run of 79a28bb did.)
    const parent = spawn('bash', ['-c', 'p=$$; (until grep -qx sleep /proc/$p/comm; do sleep 0.05; done) & exec sleep 30'], {
      stdio: 'ignore',
    });
    let zombie: number | undefined;
    for (let i = 0; i < 400 && zombie === undefined; i++) {
      await new Promise((r) => setTimeout(r, 25));
      zombie = childPids(parent.pid!).find((pid) => existsSync(`/proc/${pid}`) && !running(pid));
    }
    expect(zombie).toBeDefined();
    expect(existsSync(`/proc/${zombie}`)).toBe(true);
    parent.kill('SIGKILL');
  });
});
