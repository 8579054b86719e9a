/**
 * The repository's shell scripts and the two checks every one of them must pass: a syntax check by
 * its own shell (`bash -n`, or `sh -n` for `#!/bin/sh`) and `shellcheck -S warning`. Used by
 * test/shell-scripts.test.ts; shellcheck's presence is also what test/workflows.test.ts relies on
 * (actionlint silently skips its shell checks when there is no shellcheck).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type Dialect = 'bash' | 'sh';

export interface ShellFile {
  /** Path relative to the repository root. */
  readonly path: string;
  readonly dialect: Dialect;
}

/** `#!/bin/bash`, `#!/usr/bin/env bash`, `#!/bin/sh`, `#!/usr/bin/env -S bash -e`, ... */
const SHEBANG = /^#!\s*(?:\S*\/)?(?:env\s+(?:-\S+\s+)*)?(bash|sh|dash)\b/;

/** The dialect a file's shebang names, else by its extension; undefined when it is no shell script. */
export function dialectOf(path: string, head: string): Dialect | undefined {
  const m = SHEBANG.exec(head.split('\n', 1)[0] ?? '');
  if (m) return m[1] === 'bash' ? 'bash' : 'sh';
  if (/\.(?:sh|bash)$/.test(path)) return 'bash';
  return undefined;
}

/** Every tracked file that is a shell script (by shebang or extension): scripts/, .ci/run, cluster/, test/images/, hooks. */
export function trackedShellFiles(root: string): ShellFile[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' });
  const files: ShellFile[] = [];
  for (const path of out.split('\0').filter(Boolean)) {
    let head: string;
    try {
      head = readFileSync(join(root, path), 'utf8').slice(0, 200);
    } catch {
      continue; // deleted in the working tree, or a folder (a submodule)
    }
    const dialect = dialectOf(path, head);
    if (dialect) files.push({ path, dialect });
  }
  return files;
}

/** The version line of the shellcheck on PATH; throws, naming the fix, when there is none that runs. */
export function shellcheckVersion(): string {
  const r = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' });
  const version = /^version:\s*(\S+)/m.exec(r.stdout ?? '')?.[1];
  if (r.error || r.status !== 0 || !version) throw new Error('shellcheck is not installed: run scripts/setup-deps.sh');
  return version;
}

/**
 * The findings for one file: its shell's syntax errors, then shellcheck's warnings and errors, one
 * line each as `path:line:column: severity: message [SCnnnn]`. Empty when the file is clean.
 */
export function shellFindings(root: string, file: ShellFile): string[] {
  const findings: string[] = [];
  const syntax = spawnSync(file.dialect, ['-n', file.path], { cwd: root, encoding: 'utf8' });
  if (syntax.error) throw syntax.error;
  if (syntax.status !== 0) findings.push(`${file.path}: ${file.dialect} -n: ${syntax.stderr.trim() || `exit ${syntax.status}`}`);
  shellcheckVersion();
  const sc = spawnSync('shellcheck', ['-S', 'warning', '-f', 'gcc', '-s', file.dialect, file.path], {
    cwd: root,
    encoding: 'utf8',
  });
  if (sc.error) throw sc.error;
  // shellcheck exits 1 with findings, other codes when it could not check (a missing file, a bad option).
  if (sc.status !== 0 && sc.status !== 1) throw new Error(`shellcheck failed on ${file.path} (exit ${sc.status}): ${sc.stderr}`);
  findings.push(...sc.stdout.split('\n').filter(Boolean));
  if (sc.status === 1 && !sc.stdout.trim()) findings.push(`${file.path}: shellcheck exit 1: ${sc.stderr.trim()}`);
  return findings;
}
