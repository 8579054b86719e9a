/** Runs the `verdict` CLI (cli/verdict.ts) in a child process, as a user would, for the command tests. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const VERDICT = resolve(import.meta.dirname, '../verdict.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `CI=true` (plain output) and no GITHUB_STEP_SUMMARY unless `env` says otherwise; stdin closed after `stdin`. */
export function runCli(args: string[], o: { stdin?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [VERDICT, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: o.cwd,
      env: { ...process.env, CI: 'true', GITHUB_STEP_SUMMARY: '', ...o.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
    child.stdin.on('error', () => {}); // a command that exits before reading stdin
    child.stdin.end(o.stdin ?? '');
  });
}
