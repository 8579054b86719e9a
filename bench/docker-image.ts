/**
 * Benchmark (not a test): the license API image with a real Docker engine.
 *
 *   make bench BENCH=docker-image     (or: node bench/docker-image.ts [--cold-base])
 *
 * In a throw-away engine (own data root, so nothing is cached in it): the local base image from the
 * cached root filesystem (or debootstrapped, with --cold-base), the cold build of the Dockerfile
 * (npm ci included), the warm build (nothing changed), the image size, `docker run` → `healthy`
 * with the Dockerfile's HEALTHCHECK as shipped (30 s interval) and with a 1 s interval, and
 * `docker stop` of an idle container (SIGTERM → exit). Root; traffic to 127.0.0.1 only.
 */
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runContainer } from '../lib/docker/containers.ts';
import { useEngine, stopEngine } from '../lib/docker/engine.ts';
import { buildImage, ensureBaseImage } from '../lib/docker/images.ts';
import { freePort } from '../lib/net/free-port.ts';
import { startPostgres } from '../lib/services/postgres.ts';
import { startRedis } from '../lib/services/redis.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const coldBase = process.argv.includes('--cold-base');
const root = mkdtempSync(join(tmpdir(), 'verdict-bench-docker-'));
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

if (coldBase)
  rmSync(join(process.env.VERDICT_CACHE ?? join(homedir(), '.cache', 'verdict'), 'docker-base'), {
    recursive: true,
    force: true,
  });
const t0 = Date.now();
const engine = await useEngine({ root, external: false, removeDataOnStop: true });
const startMs = Date.now() - t0;
const postgres = await startPostgres();
const redis = await startRedis();
try {
  const base = await ensureBaseImage(engine);
  const cold = await buildImage(engine, {
    context: REPO,
    tag: 'license-api:bench',
    buildArgs: { NODE_IMAGE: base.ref, APP_VERSION: 'bench' },
  });
  const warm = await buildImage(engine, {
    context: REPO,
    tag: 'license-api:bench',
    buildArgs: { NODE_IMAGE: base.ref, APP_VERSION: 'bench' },
  });
  const db = await postgres.createDatabase('bench');
  const healthy: Record<string, number> = {};
  let stop = { exitCode: -1, ms: 0 };
  for (const interval of ['1s', undefined]) {
    const port = await freePort();
    const began = Date.now();
    const c = await runContainer(engine, {
      image: 'license-api:bench',
      readOnly: true,
      tmpfs: ['/tmp'],
      healthInterval: interval,
      env: {
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: db,
        REDIS_URL: redis.url,
        JWT_SECRET: 'bench-secret-bench-secret-bench-secret-00',
        LOG_LEVEL: 'warn',
      },
    });
    try {
      await c.waitHealthy(90_000);
      healthy[interval ?? 'shipped (30s)'] = Date.now() - began;
      if (interval) stop = await c.stop(10);
    } finally {
      await c.remove();
    }
  }
  console.log(
    [
      `dockerd start (own data root):          ${s(startMs)}`,
      `local base image ${coldBase ? '(debootstrap)' : '(import of the cached rootfs)'}: ${s(base.ms)}`,
      `cold build (npm ci, bundle):            ${s(cold.ms)}`,
      `warm build (nothing changed):           ${s(warm.ms)}`,
      `image size:                             ${(cold.sizeBytes / 1e6).toFixed(0)} MB (${cold.sizeBytes} bytes)`,
      ...Object.entries(healthy).map(([k, v]) => `docker run → healthy, interval ${k}: ${s(v)}`),
      `docker stop (idle, graceful):           exit ${stop.exitCode} after ${s(stop.ms)}`,
    ].join('\n'),
  );
} finally {
  await redis.stop();
  await postgres.stop();
  await engine.release();
  await stopEngine(root, { removeData: true });
}
