import pg from 'pg';
import { startPostgres, type PostgresServer } from '../../lib/services/postgres.ts';
import { startRedis, type RedisServer } from '../../lib/services/redis.ts';

/**
 * Postgres and Redis for the `embedded` overlay, on the host, outside the cluster (as Cloud SQL and
 * Memorystore are on GKE). They listen on the pod bridge's gateway address only, at the ports the
 * overlay names (5432, 6379), so they never clash with a developer's own servers on loopback.
 */
export interface HostServices extends AsyncDisposable {
  postgres: PostgresServer;
  redis: RedisServer;
  stop(): Promise<void>;
}

export async function startHostServices(
  gateway: string,
  clusterCidr: string,
  stateDir: string,
  database = 'license',
): Promise<HostServices> {
  const postgres = await startPostgres({ listen: [gateway], port: 5432, allowCidrs: [clusterCidr], parentDir: stateDir });
  let redis: RedisServer;
  try {
    const c = new pg.Client({ connectionString: postgres.url() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${database}`);
    } finally {
      await c.end();
    }
    redis = await startRedis({ listen: [gateway], port: 6379, parentDir: stateDir });
  } catch (err) {
    await postgres.stop();
    throw err;
  }
  const stop = async () => {
    await Promise.allSettled([redis.stop(), postgres.stop()]);
  };
  return { postgres, redis, stop, [Symbol.asyncDispose]: stop };
}
