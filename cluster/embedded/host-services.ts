import pg from 'pg';
import { listenersOn } from '../../lib/proc/listeners.ts';
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

/**
 * Frees the overlay's ports on the gateway from servers an earlier embedded cluster left behind (a
 * listener bound to the gateway outlives the bridge and answers again once the bridge is back, so
 * this cluster would talk to the old Postgres); anything else listening there is refused by name.
 */
export async function claimPorts(gateway: string, ports: number[], say: (m: string) => void): Promise<void> {
  // Ours: a Postgres whose data directory, or a Redis whose working directory, lib/services made.
  const ours = (l: { cmd: string; cwd: string }) =>
    / -D \S*\/verdict-pg-[^/\s]+\/data/.test(l.cmd) || /\/verdict-redis-[^/]+$/.test(l.cwd);
  for (const port of ports) {
    const held = (await listenersOn(port)).filter((l) => l.address === gateway || l.address === '0.0.0.0');
    for (const l of held) {
      if (!ours(l))
        throw new Error(
          `${gateway}:${port}, which the embedded overlay's Postgres and Redis need, is held by pid ${l.pid} (${l.cmd}): stop it first`,
        );
      say(`stopping pid ${l.pid}, left on ${gateway}:${port} by an earlier cluster (${l.cmd})`);
      try {
        process.kill(l.pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    const deadline = Date.now() + 5000;
    while ((await listenersOn(port)).some((l) => held.some((h) => h.pid === l.pid)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startHostServices(
  gateway: string,
  clusterCidr: string,
  stateDir: string,
  database = 'license',
  o: { say?: (m: string) => void } = {},
): Promise<HostServices> {
  await claimPorts(gateway, [5432, 6379], o.say ?? (() => {}));
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
