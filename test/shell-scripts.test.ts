import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { dialectOf, exitTrapFindings, shellcheckVersion, shellFindings, trackedShellFiles } from './shell-scripts.ts';

// Every tracked shell script passes its shell's syntax check and `shellcheck -S warning`: a merge
// that left a `for` body without its header (scripts/setup-deps.sh, `svc: unbound variable`) broke
// every cold make target while the warm machines CI runs on never took that branch.
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const files = trackedShellFiles(ROOT);
const tmp = mkdtempSync(join(tmpdir(), 'verdict-shell-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// The end of scripts/setup-deps.sh as a merge left it (the parent of commit c6440ff): the loop's
// `for svc in ...; do` line was lost, so `bash -n` rejects the file and shellcheck sees `$svc` unset.
const BROKEN_SETUP_DEPS = `#!/usr/bin/env bash
set -euo pipefail
need=(redis-server)
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "\${need[@]}" >&2
# tests, Prometheus for the PromQL metric source's tests (with --bench: nginx, wrk; with --docker:
# Debian's docker.io engine and debootstrap, for the container tests, which start their own dockerd:
# see lib/docker/engine.ts).
  command -v service >/dev/null 2>&1 && service "$svc" stop >/dev/null 2>&1 || true
done
`;

describe('shell scripts', () => {
  it('are found by shebang and extension among the tracked files', () => {
    const paths = files.map((f) => f.path);
    // .ci/run has no extension: only its shebang makes it a script; the images' entrypoints are POSIX sh.
    expect(paths).toEqual(
      expect.arrayContaining([
        '.ci/run',
        'scripts/setup-deps.sh',
        'scripts/node24.sh',
        'scripts/fresh-check.sh',
        'cluster/embedded/controlplane/build.sh',
        'cluster/kind/node-image/build.sh',
      ]),
    );
    expect(files.find((f) => f.path === 'test/images/postgres/entrypoint.sh')?.dialect).toBe('sh');
    expect(files.find((f) => f.path === '.ci/run')?.dialect).toBe('bash');
    expect(paths).not.toContain('Makefile');
    expect(dialectOf('x', '#!/usr/bin/env -S bash -e\n')).toBe('bash');
    expect(dialectOf('x', '#!/bin/sh\n')).toBe('sh');
    expect(dialectOf('x', '#!/usr/bin/env node\n')).toBeUndefined();
    expect(dialectOf('hook.sh', '# no shebang\n')).toBe('bash');
  });

  it('shellcheck is installed and reports what it finds (the check cannot pass by not running)', () => {
    expect(shellcheckVersion()).toMatch(/^\d+\.\d+/);
    const path = 'unbound.sh';
    writeFileSync(join(tmp, path), '#!/usr/bin/env bash\nset -u\necho "$never_set"\n');
    expect(shellFindings(tmp, { path, dialect: 'bash' })).toEqual([
      expect.stringMatching(/^unbound\.sh:3:7: warning: .*\[SC2154\]$/),
    ]);
  });

  it('catch the merge that broke setup-deps.sh (bash -n and shellcheck both name the file and line)', () => {
    const path = 'setup-deps.sh';
    writeFileSync(join(tmp, path), BROKEN_SETUP_DEPS);
    const findings = shellFindings(tmp, { path, dialect: 'bash' });
    expect(findings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^setup-deps\.sh: bash -n: .*line 10: syntax error near unexpected token `done'/),
        expect.stringMatching(/^setup-deps\.sh:9:\d+: warning: svc is referenced but not assigned\. \[SC2154\]$/),
        expect.stringMatching(/^setup-deps\.sh:10:1: error: .*\[SC1089\]$/),
      ]),
    );
  });

  // scripts/go-build-progress.sh before the guard: CI's run of stop 28 failed once (846 passed, 1
  // failed) with `grep: /tmp/tmp.…: No such file or directory` where the compiler's errors belonged;
  // the failing case ran 11 of 300 times wrong beside three busy loops, 0 of 300 with the guard.
  const TICKER = (cleanup: string) => `#!/usr/bin/env bash
log="$(mktemp)"
ticker=""
cleanup() {
${cleanup}  if [[ -n "$ticker" ]]; then kill "$ticker" 2>/dev/null || true; fi
  rm -f "$log"
}
trap cleanup EXIT
(
  while sleep 1; do grep -c . "$log"; done
) &
ticker=$!
`;

  it('find an EXIT trap that a killed background subshell can run, and accept it once guarded', () => {
    expect(exitTrapFindings('ticker.sh', TICKER(''))).toEqual([
      'ticker.sh:8: the EXIT trap cleanup also runs in the background subshell of line 11 when that is killed right after its fork: begin cleanup with [[ "$BASHPID" == "$$" ]] || return 0',
    ]);
    expect(exitTrapFindings('ticker.sh', TICKER('  [[ "$BASHPID" == "$$" ]] || return 0\n'))).toEqual([]);
    expect(exitTrapFindings('inline.sh', `trap 'rm -f "$log"' EXIT\n( sleep 9 ) &\n`)).toHaveLength(1);
    // No background subshell, nothing to guard.
    expect(exitTrapFindings('plain.sh', 'cleanup() { rm -f x; }\ntrap cleanup EXIT\nsleep 1 &\n')).toEqual([]);
  });

  it.each(files.map((f) => [f.path, f]))(
    '%s passes its syntax check, shellcheck -S warning and the EXIT-trap check',
    (_path, file) => {
      expect(shellFindings(ROOT, file)).toEqual([]);
    },
  );
});
