import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from '../net/free-port.ts';
import { startProcess, type OwnedProcess } from '../proc/child.ts';

export interface RedisOptions {
  listen?: string[];
  port?: number;
  /** Directory to create the working directory in (default the OS temp dir). */
  parentDir?: string;
}

export interface RedisServer extends AsyncDisposable {
  readonly port: number;
  readonly url: string;
  /** Stops the server but keeps its port and directory, so start() brings the same server back. */
  pause(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function redisServerBin(): string {
  for (const dir of ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    if (dir && existsSync(join(dir, 'redis-server'))) return join(dir, 'redis-server');
  }
  throw new Error("redis-server not found: run `make setup` (installs Debian's redis-server package)");
}

/** Starts a throw-away Redis server (no persistence) on a free port. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const bin = redisServerBin();
  const port = opts.port ?? (await freePort());
  const dir = await mkdtemp(join(opts.parentDir ?? tmpdir(), 'verdict-redis-'));
  const listen = opts.listen ?? ['127.0.0.1'];
  let proc: OwnedProcess | undefined;
  let removed = false;
  const start = async () => {
    if (proc && !proc.exited()) return;
    // Redis runs in `dir` (its cwd), which is how `cluster down` finds a leftover one (it rewrites its cmdline).
    proc = startProcess(
      bin,
      [
        '--port',
        String(port),
        '--bind',
        ...listen,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--protected-mode',
        'no',
        '--daemonize',
        'no',
      ],
      { name: 'redis' },
    );
    try {
      await waitForPort(listen[0], port, 10_000);
    } catch (err) {
      await proc.stop('SIGKILL');
      throw new Error(`redis-server did not start: ${(err as Error).message}\n${proc.tail()}`);
    }
  };
  const pause = async () => {
    if (proc) await proc.stop('SIGTERM', 5000);
  };
  const stop = async () => {
    await pause();
    if (!removed) {
      removed = true;
      await rm(dir, { recursive: true, force: true });
    }
  };
  await start();
  return { port, url: `redis://${listen[0]}:${port}`, start, pause, stop, [Symbol.asyncDispose]: stop };
}
