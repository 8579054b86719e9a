import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// scripts/go-build-progress.sh: what cluster/embedded/controlplane/build.sh shows during its long,
// otherwise silent compile. A stand-in for `go build -v` prints one import path per package to stderr.
const SCRIPT = fileURLToPath(new URL('../scripts/go-build-progress.sh', import.meta.url));
const run = (script: string, ...pre: string[]) =>
  spawnSync(SCRIPT, [...pre, 'build.sh: demo', '--', 'bash', '-c', script], {
    env: { ...process.env, VERDICT_PROGRESS_SECONDS: '1' },
    encoding: 'utf8',
  });

describe('go-build-progress.sh', () => {
  it('prints a plain line per interval with the elapsed time and the packages compiled, then the total', () => {
    const r = run('for i in 1 2 3 4 5 6; do echo "example.com/p$i" >&2; sleep 0.5; done; echo built', '--of', '40');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('built\n');
    expect(r.stderr).not.toContain('\r');
    const ticks = [...r.stderr.matchAll(/^build\.sh: demo: (\d+) s, (\d+) packages compiled \(of 40\)$/gm)];
    expect(ticks.length).toBeGreaterThanOrEqual(1);
    const counts = ticks.map((m) => Number(m[2]));
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(counts.at(-1)).toBeGreaterThan(0);
    // The package lines themselves are counted, not shown; the last line has the total.
    expect(r.stderr).not.toContain('example.com/p1');
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^build\.sh: demo: 6 packages compiled in \d+ s$/);
  });

  it("on failure shows the compiler's errors (not the package lines) and exits with the build's code", () => {
    const r = run('echo a/b >&2; echo "# a/c" >&2; echo "c.go:3:2: undefined: x" >&2; exit 3');
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('# a/c\nc.go:3:2: undefined: x\n');
    expect(r.stderr).not.toMatch(/^a\/b$/m);
    expect(r.stderr).toMatch(/build\.sh: demo: failed \(exit 3\) after \d+ s, 1 packages compiled\n$/);
  });

  it('says how to use it when no command is given', () => {
    const r = spawnSync(SCRIPT, ['label', '--'], { encoding: 'utf8' });
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('no command given');
  });
});
