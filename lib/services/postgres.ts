import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../net/free-port.ts';
import { startProcess, type OwnedProcess } from '../proc/child.ts';
import { childPids } from '../proc/tree.ts';

const run = promisify(execFile);

export interface PostgresOptions {
  /** Addresses to listen on (default 127.0.0.1). Add the pod bridge address for in-cluster clients. */
  listen?: string[];
  port?: number;
  /** Extra CIDRs allowed to connect (trust auth: these servers hold throw-away test data only). */
  allowCidrs?: string[];
  /** Directory to create the data directory in (default the OS temp dir). */
  parentDir?: string;
}

export interface PostgresServer extends AsyncDisposable {
  readonly port: number;
  readonly dataDir: string;
  /** Connection URL for database `db` (default `postgres`) on the first listen address. */
  url(db?: string): string;
  /** Creates a fresh database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** The postmaster's pid (changes after halt() and start()). */
  readonly pid: number;
  /**
   * Sends `signal` to the postmaster and to every server process under it (backends, checkpointer,
   * ...): `SIGSTOP` freezes the whole server as a stalled host would, `SIGCONT` thaws it.
   */
  signalAll(signal: NodeJS.Signals): void;
  /**
   * Stops the server but keeps its data directory and port, so start() brings it back:
   * `immediate` (SIGQUIT: every backend dies at once, crash recovery on the next start, as a
   * failover or a killed host) or `fast` (SIGINT: clients are disconnected, clean checkpoint).
   */
  halt(mode: 'immediate' | 'fast'): Promise<void>;
  /** Starts a halted server again (no-op while it runs). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Finds PostgreSQL's server binaries: Debian's versioned directories first, then PATH. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new Error(
    "PostgreSQL server binaries not found: run `make setup` (installs Debian's postgresql package) or put initdb/postgres on PATH",
  );
}

/**
 * Starts a throw-away PostgreSQL server in a temporary directory on a free port.
 * As root the server runs as the `postgres` user (PostgreSQL refuses to run as root).
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const port = opts.port ?? (await freePort());
  const dataDir = await mkdtemp(join(opts.parentDir ?? tmpdir(), 'verdict-pg-'));
  let uid: number | undefined;
  let gid: number | undefined;
  if (userInfo().uid === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']).catch(() => {
      throw new Error('running as root, but there is no `postgres` user to run PostgreSQL as: run `make setup`');
    });
    uid = Number(stdout.trim());
    gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    await chown(dataDir, uid, gid);
  }
  const pgdata = join(dataDir, 'data');
  try {
    await run(
      join(bin, 'initdb'),
      ['-D', pgdata, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'],
      { uid, gid, env: { ...process.env, LC_ALL: 'C.UTF-8' } },
    );
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${(err as { stderr?: string }).stderr ?? err}`);
  }
  const hba = [
    'local all all trust',
    'host all all 127.0.0.1/32 trust',
    'host all all ::1/128 trust',
    ...(opts.allowCidrs ?? []).map((c) => `host all all ${c} trust`),
  ];
  await writeFile(join(pgdata, 'pg_hba.conf'), hba.join('\n') + '\n');
  await appendFile(
    join(pgdata, 'postgresql.conf'),
    [
      `listen_addresses = '${(opts.listen ?? ['127.0.0.1']).join(',')}'`,
      `port = ${port}`,
      `unix_socket_directories = '${dataDir}'`,
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'max_connections = 200',
      'shared_buffers = 64MB',
    ].join('\n') + '\n',
  );
  const spawnServer = () => startProcess(join(bin, 'postgres'), ['-D', pgdata], { name: 'postgres', uid, gid });
  const srv = makeServer(spawnServer, (opts.listen ?? ['127.0.0.1'])[0], port, dataDir);
  try {
    await srv.start();
  } catch (err) {
    await srv.stop();
    throw err;
  }
  return srv;
}

function makeServer(spawnServer: () => OwnedProcess, host: string, port: number, dataDir: string): PostgresServer {
  let stopped = false;
  let proc: OwnedProcess | undefined;
  const url = (db = 'postgres') => `postgres://postgres@${host.includes(':') ? `[${host}]` : host}:${port}/${db}`;
  const halt = async (mode: 'immediate' | 'fast') => {
    if (!proc || proc.exited()) return;
    // A frozen server would ignore the shutdown signal: thaw it first.
    for (const pid of [proc.pid, ...childPids(proc.pid)]) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    await proc.stop(mode === 'immediate' ? 'SIGQUIT' : 'SIGINT', 10_000);
  };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await halt('fast'); // SIGINT = PostgreSQL's "fast" shutdown
    await rm(dataDir, { recursive: true, force: true });
  };
  return {
    port,
    dataDir,
    url,
    stop,
    halt,
    get pid() {
      return proc?.pid ?? -1;
    },
    signalAll(signal: NodeJS.Signals) {
      if (!proc || proc.exited()) throw new Error('postgres is not running');
      // The postmaster first, so that it forks no new backend while we signal the others.
      const pids = [proc.pid, ...childPids(proc.pid)];
      for (const pid of pids) {
        try {
          process.kill(pid, signal);
        } catch {
          /* ended meanwhile */
        }
      }
    },
    async start() {
      if (proc && !proc.exited()) return;
      proc = spawnServer();
      await waitForPostgres(url(), 30_000, proc);
    },
    async createDatabase(name: string) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid database name ${name}`);
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * Waits until Postgres at `url` answers `SELECT 1` (every 100 ms, 1 s connect timeout each), or throws
 * after `timeoutMs`, or as soon as `proc` (the server, when we started it) has exited.
 */
export async function waitForPostgres(url: string, timeoutMs: number, proc?: OwnedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (proc?.exited()) throw new Error(`postgres exited during start-up:\n${proc.tail()}`);
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch (err) {
      last = err;
      await c.end().catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`postgres did not accept connections within ${timeoutMs} ms: ${last}${proc ? `\n${proc.tail()}` : ''}`);
}
