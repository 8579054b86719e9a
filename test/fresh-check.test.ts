import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// When .ci/run runs `make fresh-check`: scripts/fresh-check.sh --needed, against the commit of this
// machine's last green CI run (--record-green). The check itself (debootstrap, a root, apt and npm
// for real, 6-8 minutes) is `make fresh-check`, run by .ci/run and by the weekly workflow.
const SCRIPT = fileURLToPath(new URL('../scripts/fresh-check.sh', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'verdict-fresh-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const repo = join(tmp, 'repo');
const cache = join(tmp, 'cache');

const git = (...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { cwd: repo, encoding: 'utf8' });
function commit(path: string, text: string) {
  mkdirSync(dirname(join(repo, path)), { recursive: true });
  writeFileSync(join(repo, path), text);
  git('add', path);
  git('commit', '-q', '-m', `change ${path}`);
}
const fresh = (arg: string) =>
  spawnSync(join(repo, 'scripts', 'fresh-check.sh'), [arg], {
    cwd: repo,
    env: { ...process.env, VERDICT_CACHE: cache },
    encoding: 'utf8',
  });

describe('fresh-check.sh --needed / --record-green', () => {
  mkdirSync(join(repo, 'scripts'), { recursive: true });
  git('init', '-q');
  copyFileSync(SCRIPT, join(repo, 'scripts', 'fresh-check.sh'));
  git('add', '.');
  git('commit', '-q', '-m', 'start');

  it('is needed when no green run is recorded, and not after one with nothing changed', () => {
    const first = fresh('--needed');
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/^no green CI run recorded on this machine/);
    expect(fresh('--record-green').status).toBe(0);
    expect(readFileSync(join(cache, 'ci-last-green'), 'utf8').trim()).toBe(git('rev-parse', 'HEAD').trim());
    const again = fresh('--needed');
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/^no setup file changed since the last green run/);
  });

  it.each([
    ['scripts/setup-deps.sh', true],
    ['cluster/kind/node-image/build.sh', true],
    ['cluster/embedded/controlplane/build.sh', true],
    ['Makefile', true],
    ['package.json', true],
    ['package-lock.json', true],
    ['.nvmrc', true],
    ['README.md', false],
    ['cluster/kind/docker-wrapper.sh', false],
    ['lib/x.ts', false],
  ])('a change to %s since the last green run: needed %s', (path, needed) => {
    expect(fresh('--record-green').status).toBe(0);
    commit(path, `${path} ${Date.now()}\n`);
    const r = fresh('--needed');
    expect(r.status, r.stdout + r.stderr).toBe(needed ? 0 : 1);
    if (needed) expect(r.stdout).toContain(`setup files changed since the last green run (`);
    if (needed) expect(r.stdout).toContain(path);
  });

  it('is needed when the recorded commit is not in this clone', () => {
    writeFileSync(join(cache, 'ci-last-green'), `${'0'.repeat(40)}\n`);
    const r = fresh('--needed');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/the last green commit 0{40} is not in this clone/);
  });

  it('refuses an unknown argument', () => {
    const r = fresh('--nope');
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('usage: scripts/fresh-check.sh');
  });
});
