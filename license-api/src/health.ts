import { Router } from 'express';
import type pg from 'pg';
import type { Lifecycle } from './lifecycle.ts';
import { withTimeout, type RedisClient } from './redis.ts';

/**
 * Kubernetes probes:
 * - startup: 200 once initialisation (migrations, seed) has finished;
 * - live: 200 while the process can serve HTTP at all; never depends on Postgres or Redis, so
 *   a dependency outage does not make the kubelet restart every replica;
 * - ready: whether *this pod* can serve. It fails when the pod is starting, draining, or cannot
 *   reach Postgres (every license request needs it). Redis is checked and reported
 *   (`checks.redis`, and `degraded: ["redis"]`) but never makes the pod unready: with the rate
 *   limiter off (the default) no request needs Redis, and with it on only acquire does, and
 *   acquire answers a fast typed 503 by itself. A Redis outage is shared by every replica, so a
 *   readiness that followed it would take every pod out of the Service at once and turn a
 *   degraded acquire (or a non-event) into a full outage, heartbeats included. This replaces the
 *   seed's "ready checks DB and Redis".
 */
export function healthRoutes(
  lifecycle: Lifecycle,
  pool: pg.Pool,
  redis: RedisClient,
  timeoutMs: number,
  faults: { livenessChecksDependencies?: boolean } = {},
): Router {
  const r = Router();
  const check = async (name: string, fn: () => Promise<unknown>) => {
    try {
      await withTimeout(timeoutMs, name, fn);
      return 'ok';
    } catch (err) {
      return `error: ${(err as Error).message || 'unavailable'}`;
    }
  };
  const dependencies = () =>
    Promise.all([
      check('database', () => pool.query('SELECT 1')),
      // Not connected: say so without sending a command that would wait for the timeout.
      redis.isReady ? check('redis', () => redis.ping()) : Promise.resolve('error: not connected'),
    ]);
  r.get('/health/startup', (_req, res) => {
    if (lifecycle.phase === 'starting') res.status(503).json({ status: 'starting' });
    else res.json({ status: 'ok' });
  });
  r.get('/health/live', async (_req, res) => {
    if (faults.livenessChecksDependencies) {
      // FAULT_LIVENESS_CHECKS_DEPENDENCIES (detector tests): the seed's naive liveness, which fails
      // while Postgres or Redis is away, so that the kubelet restarts every replica in an outage.
      const [database, cache] = await dependencies();
      const ok = database === 'ok' && cache === 'ok';
      res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unhealthy', checks: { database, redis: cache } });
      return;
    }
    res.json({ status: 'ok' });
  });
  r.get('/health/ready', async (_req, res) => {
    if (lifecycle.phase !== 'serving') {
      res.status(503).json({ status: lifecycle.phase === 'starting' ? 'starting' : 'shutting_down', checks: {} });
      return;
    }
    const [database, cache] = await dependencies();
    const ready = database === 'ok' && lifecycle.phase === 'serving';
    const degraded = cache === 'ok' ? [] : ['redis'];
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks: { database, redis: cache }, degraded });
  });
  return r;
}
