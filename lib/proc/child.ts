import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** A child process we own: its output is kept (bounded) for error messages, and stop() is idempotent. */
export interface OwnedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Last lines the process printed (stdout and stderr), for error messages. */
  tail(): string;
  exited(): boolean;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  readonly exit: Promise<number | string>;
  /** Sends `signal`, then SIGKILL after `killAfterMs`; resolves once the process is gone. */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | string>;
}

export function startProcess(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { name: string; keepLines?: number },
): OwnedProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const keep = opts.keepLines ?? 40;
  const lines: string[] = [];
  const collect = (buf: Buffer) => {
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > keep) lines.shift();
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let done = false;
  const exit = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (err) => {
      done = true;
      lines.push(String(err));
      resolve('spawn-error');
    });
  });
  return {
    child,
    pid: child.pid ?? -1,
    tail: () => lines.join('\n'),
    exited: () => done,
    exit,
    async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 10_000) {
      if (!done) {
        child.kill(signal);
        const timer = setTimeout(() => {
          if (!done) child.kill('SIGKILL');
        }, killAfterMs);
        timer.unref();
        const code = await exit;
        clearTimeout(timer);
        return code;
      }
      return await exit;
    },
  };
}
