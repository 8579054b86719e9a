import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import type { Logger } from 'pino';

/** Where the SQL migrations live: beside this file in the source tree, beside the bundle in an image. */
export function migrationsDir(): string {
  if (process.env.MIGRATIONS_DIR) return process.env.MIGRATIONS_DIR;
  const bundled = fileURLToPath(new URL('./migrations', import.meta.url));
  return existsSync(bundled) ? bundled : fileURLToPath(new URL('../migrations', import.meta.url));
}

/**
 * `waitMs` bounds both connecting and waiting for a free pooled connection: a burst that queues
 * behind the pool waits up to this long before it gets a 503.
 */
export function createPool(url: string, max: number, waitMs: number, statementTimeoutMs: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url, max,
    connectionTimeoutMillis: waitMs,
    idleTimeoutMillis: 30_000,
    // A statement that hangs (a stalled database) must fail well before the client gives up.
    query_timeout: statementTimeoutMs,
  });
  // An idle client that loses its connection emits 'error' on the pool; without a listener it would crash the process.
  pool.on('error', () => {});
  return pool;
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
    logger: { debug: () => {}, info: (m: string) => log.debug({ migration: m }, 'migrate'), warn: (m: string) => log.warn(m), error: (m: string) => log.error(m) },
  });
}
