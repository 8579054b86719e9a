import { Router } from 'express';
import type pg from 'pg';
import type { Lifecycle } from './lifecycle.ts';
import { withTimeout, type RedisClient } from './redis.ts';

/**
 * Kubernetes probes, as the seed specifies them:
 * - startup: 200 once initialisation (migrations, connections) has finished;
 * - live: 200 while the process can serve HTTP at all; never depends on Postgres or Redis, so
 *   a dependency outage does not make the kubelet restart every replica;
 * - ready: Postgres and Redis answer within the dependency timeout, and we are not shutting down.
 */
export function healthRoutes(lifecycle: Lifecycle, pool: pg.Pool, redis: RedisClient, timeoutMs: number): Router {
  const r = Router();
  r.get('/health/startup', (_req, res) => {
    if (lifecycle.phase === 'starting') res.status(503).json({ status: 'starting' });
    else res.json({ status: 'ok' });
  });
  r.get('/health/live', (_req, res) => { res.json({ status: 'ok' }); });
  r.get('/health/ready', async (_req, res) => {
    if (lifecycle.phase !== 'serving') {
      res.status(503).json({ status: lifecycle.phase === 'starting' ? 'starting' : 'shutting_down', checks: {} });
      return;
    }
    const check = async (name: string, fn: () => Promise<unknown>) => {
      try { await withTimeout(timeoutMs, name, fn); return 'ok'; } catch (err) { return `error: ${(err as Error).message || 'unavailable'}`; }
    };
    const [database, cache] = await Promise.all([
      check('database', () => pool.query('SELECT 1')),
      check('redis', () => redis.ping()),
    ]);
    const ready = database === 'ok' && cache === 'ok' && lifecycle.phase === 'serving';
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks: { database, redis: cache } });
  });
  return r;
}
