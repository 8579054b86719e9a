import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import type { Logger } from 'pino';
import { ApiError, DependencyError } from './errors.ts';

/** Where the SQL migrations live: beside this file in the source tree, beside the bundle in an image. */
export function migrationsDir(): string {
  if (process.env.MIGRATIONS_DIR) return process.env.MIGRATIONS_DIR;
  const bundled = fileURLToPath(new URL('./migrations', import.meta.url));
  return existsSync(bundled) ? bundled : fileURLToPath(new URL('../migrations', import.meta.url));
}

/** How much longer than the server-side statement_timeout the client waits for a server that does not answer at all. */
export const CLIENT_TIMEOUT_MARGIN_MS = 500;

/**
 * `waitMs` bounds opening a connection and waiting for a free pooled one (a request's deadline
 * bounds the latter further). A statement is cancelled by Postgres after `statementTimeoutMs`
 * (the connection stays usable), and the client gives up `CLIENT_TIMEOUT_MARGIN_MS` later on a
 * server that does not answer at all (a frozen host); such a connection is destroyed, never reused.
 */
export function createPool(url: string, max: number, waitMs: number, statementTimeoutMs: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: waitMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
  });
  // An idle client that loses its connection emits 'error' on the pool; without a listener it would crash the process.
  pool.on('error', () => {});
  // A client checked out with pool.connect() has no pool listener while it is out: when Postgres
  // drops its connection (pg_terminate_backend, a failover, an immediate shutdown) it emits 'error'
  // and, unheard, that kills the process. The query it ran fails with the error anyway, and the
  // pool discards a client that is no longer queryable when it is released.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return pool;
}

/** The error is Postgres refusing a statement over a connection that is still usable (not a lost or timed-out connection). */
export function isServerError(err: unknown): boolean {
  if (!(err instanceof pg.DatabaseError)) return false;
  const code = err.code ?? '';
  // 08: connection exception; 57P0x: the server is shutting down or terminated us.
  return code.length === 5 && !code.startsWith('08') && !code.startsWith('57P');
}

/** A data exception (SQLSTATE class 22) or integrity violation (23): the values of one statement were refused. */
export function isDataError(err: unknown): boolean {
  return err instanceof pg.DatabaseError && /^2[23]/.test(err.code ?? '');
}

/** The error means Postgres did not answer in time (client- or server-side timeout, pool wait). */
export function isTimeout(err: unknown): boolean {
  if (err instanceof DependencyError) return err.timedOut;
  if (err instanceof pg.DatabaseError) return err.code === '57014'; // statement_timeout (query_canceled)
  const m = (err as Error)?.message ?? '';
  return (
    m === 'Query read timeout' || m.startsWith('timeout exceeded when trying to connect') || m.includes('connection timeout')
  );
}

/** Any error from a database call, as what the client gets: ApiErrors as they are, the rest a typed 503. */
export function asDbError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new DependencyError('the database', err, { timedOut: isTimeout(err) });
}

/**
 * Applies pending migrations. Several replicas may start at once: node-pg-migrate's advisory
 * lock makes the others wait, then find nothing left to do.
 */
export async function migrate(url: string, log: Logger): Promise<void> {
  await runner({
    databaseUrl: url,
    dir: migrationsDir(),
    direction: 'up',
    migrationsTable: 'pgmigrations',
    advisoryLockMode: 'wait',
    log: () => {},
    logger: {
      debug: () => {},
      info: (m: string) => log.debug({ migration: m }, 'migrate'),
      warn: (m: string) => log.warn(m),
      error: (m: string) => log.error(m),
    },
  });
}
