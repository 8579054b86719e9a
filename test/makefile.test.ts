import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// The Makefile puts scripts/node24.sh's Node 24 first on PATH. When node24.sh fails, a target that
// runs Node must stop at once with its error (it used to carry on with an empty PATH entry, and the
// first error came later and misled); a target that runs no Node must still work.
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'verdict-make-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A machine whose Node is older than 24, with nothing cached and an npm that cannot fetch Node 24.
const stubs = join(tmp, 'bin');
mkdirSync(stubs);
writeFileSync(join(stubs, 'node'), '#!/bin/sh\necho 20\n');
writeFileSync(join(stubs, 'npm'), '#!/bin/sh\necho "npm: the registry is not reachable (test stub)" >&2\nexit 1\n');
for (const f of ['node', 'npm']) chmodSync(join(stubs, f), 0o755);
const env = { ...process.env, PATH: `${stubs}:/usr/bin:/bin`, VERDICT_CACHE: join(tmp, 'cache') };
// -n: print what would run, run nothing (so the test installs and builds nothing whatever happens).
const make = (...args: string[]) =>
  spawnSync('make', ['--no-print-directory', '-n', ...args], { cwd: ROOT, env, encoding: 'utf8' });

describe('Makefile without Node 24', () => {
  it.each(['verify-local', 'test', 'setup', 'lint', 'bench'])(
    "make %s stops before any recipe, with node24.sh's error",
    (target) => {
      const r = make(target);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('npm: the registry is not reachable (test stub)');
      expect(r.stderr).toContain(`scripts/node24.sh gave no Node 24 (its error is above); make ${target} needs it`);
      expect(r.stdout).toBe('');
    },
  );

  it('make help, make clean and make fresh-check do not look for Node', () => {
    for (const target of [[], ['help'], ['clean'], ['fresh-check']]) {
      const r = make(...target);
      expect(r.status, `make ${target.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toBe('');
    }
    const help = spawnSync('make', ['--no-print-directory', 'help'], { cwd: ROOT, env, encoding: 'utf8' });
    expect(help.stdout).toMatch(/make verify-local +roll v1 -> v2/);
    expect(help.stdout).toMatch(/make fresh-check +run setup from nothing/);
  });
});
