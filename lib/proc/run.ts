import { execFile } from 'node:child_process';
import { stopTree } from './tree.ts';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /**
   * Aborting stops the command and everything it started (SIGTERM to the whole process tree,
   * SIGKILL 5 s later) and rejects with the signal's reason once none of them runs: a Ctrl-C during
   * `kind load` must not leave its `docker save` behind.
   */
  signal?: AbortSignal;
}

/**
 * Runs a command to completion. A failure says which command failed, its exit code and the tail of
 * its stderr; a missing program says so (ENOENT) instead of a bare spawn error.
 */
export function runCommand(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const { signal } = opts;
  if (signal?.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    let stopping: Promise<void> | undefined;
    const child = execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        signal?.removeEventListener('abort', onAbort);
        if (stopping) {
          void stopping.then(() => reject(signal?.reason as Error));
          return;
        }
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
    function onAbort() {
      if (child.pid !== undefined) stopping = stopTree(child.pid);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
