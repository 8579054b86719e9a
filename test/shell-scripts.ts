/**
 * The repository's shell scripts and the checks every one of them must pass: a syntax check by
 * its own shell (`bash -n`, or `sh -n` for `#!/bin/sh`), `shellcheck -S warning`, and for bash no EXIT trap that
 * a killed background subshell can run (exitTrapFindings). Used by
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
 * A bash script's EXIT trap that its own background subshells can run. bash copies the traps into a
 * forked subshell and resets them only once the child runs: a subshell killed right after its fork
 * (a progress ticker stopped as soon as a fast command ends) runs the parent's EXIT trap as its own
 * (bash 5.2: 1,986 of 2,000 subshells killed at once did) and deletes what the script still needs.
 * Such a trap's function must return at once outside the script's own process
 * (`[[ "$BASHPID" == "$$" ]] || return 0`). One finding per unguarded trap, `path:line: ...`.
 */
export function exitTrapFindings(path: string, text: string): string[] {
  const lines = text.split('\n');
  const subshell = lines.findIndex((l) => /^\s*(?:\(.*)?\)\s*(?:[<>]\S*\s*)*&\s*(?:#.*)?$/.test(l));
  if (subshell < 0) return [];
  const findings: string[] = [];
  lines.forEach((line, i) => {
    const fn = /^\s*trap\s+['"]?([A-Za-z_][\w-]*)['"]?\s+(?:\S+\s+)*EXIT\b/.exec(line)?.[1];
    if (!fn) return;
    const start = lines.findIndex((l) => new RegExp(`^\\s*(?:function\\s+)?${fn}\\s*\\(\\)`).test(l));
    const end = start < 0 ? -1 : lines.findIndex((l, j) => j > start && l.startsWith('}'));
    // A trap whose command is inline (`trap 'rm -f "$log"' EXIT`) is checked on its own line.
    const body = start < 0 ? line : lines.slice(start, end < 0 ? undefined : end + 1).join('\n');
    if (!body.includes('BASHPID'))
      findings.push(
        `${path}:${i + 1}: the EXIT trap ${fn} also runs in the background subshell of line ${subshell + 1} when that is killed right after its fork: begin ${fn} with [[ "$BASHPID" == "$$" ]] || return 0`,
      );
  });
  return findings;
}

/**
 * The findings for one file: its shell's syntax errors, shellcheck's warnings and errors (one line
 * each as `path:line:column: severity: message [SCnnnn]`), then EXIT traps its background subshells
 * can run (exitTrapFindings). Empty when the file is clean.
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
  if (file.dialect === 'bash') findings.push(...exitTrapFindings(file.path, readFileSync(join(root, file.path), 'utf8')));
  return findings;
}
