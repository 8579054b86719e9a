import { execFile } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion. A failure says which command failed, its exit code and the tail of
 * its stderr; a missing program says so (ENOENT) instead of a bare spawn error.
 */
export function runCommand(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & { code?: unknown };
        if (e.code === 'ENOENT') {
          reject(new Error(`${cmd} not found on PATH`));
          return;
        }
        const tail = String(stderr).trim().split('\n').slice(-10).join('\n');
        reject(new Error(`\`${cmd} ${args.join(' ')}\` failed (exit ${e.code ?? '?'})${tail ? `:\n${tail}` : ''}`));
      },
    );
  });
}
