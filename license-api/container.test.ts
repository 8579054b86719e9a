import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { docker } from '../lib/docker/cli.ts';
import { listContainers, runContainer, type Container, type RunOptions } from '../lib/docker/containers.ts';
import { findEngine, leftovers, useEngine, type DockerEngine } from '../lib/docker/engine.ts';
import { diffHostNet, snapshotHostNet, type HostNetSnapshot } from '../lib/docker/host-safety.ts';
import { buildImage, ensureBaseImage, type BuiltImage } from '../lib/docker/images.ts';
import { freePort } from '../lib/net/free-port.ts';
import { freshDatabase } from '../test/databases.ts';
import { keepAliveLoad, slowRequest } from './test/drain-load.ts';
import { mintToken, TEST_SECRET } from './test/harness.ts';

/**
 * The Dockerfile built and run by a real Docker engine: ours (lib/docker/engine.ts: own data root
 * and socket, no iptables, no IP forwarding, no bridge) unless one already answers. The base image
 * is built without a registry (scripts/docker-base.sh); the Dockerfile is used as users get it, with
 * only NODE_IMAGE passed. Containers use the host network and listen on 127.0.0.1.
 */
const REPO = fileURLToPath(new URL('..', import.meta.url));
const TAG = 'license-api:container-test';
/**
 * Measured here: 217 MB (the local base 213 MB: Debian minbase, Node 24's 127 MB binary, npm; the
 * bundle about 4 MB). The budget leaves room for Debian and Node updates, not for node_modules or
 * build tools in the runtime stage (those add 300 MB and more).
 */
const SIZE_BUDGET_BYTES = 300e6;
const LABEL = `verdict.test=container-${process.pid}`;

let engine: DockerEngine;
let before: HostNetSnapshot;
let cold: BuiltImage;
let databaseUrl: string;

beforeAll(async () => {
  before = snapshotHostNet();
  engine = await useEngine({ onProgress: (m) => console.info(m) });
  const base = await ensureBaseImage(engine, { onProgress: (m) => console.info(m) });
  cold = await buildImage(engine, {
    context: REPO,
    tag: TAG,
    buildArgs: { NODE_IMAGE: base.ref, APP_VERSION: 'container-test' },
  });
  console.info(
    `engine ${engine.host} (${engine.source}${engine.startedHere ? ', started here' : ''}); base ${base.ref} ready in ${base.ms} ms; ` +
      `${TAG} built in ${cold.ms} ms, ${(cold.sizeBytes / 1e6).toFixed(0)} MB`,
  );
  databaseUrl = await freshDatabase('container');
}, 900_000);

afterAll(async () => {
  if (!engine) return;
  const left = await listContainers(engine, LABEL);
  for (const id of left) await docker(engine, ['rm', '--force', id]).catch(() => {});
  expect(left, 'containers the tests did not remove').toEqual([]);
  const root = engine.root;
  await engine.release();
  expect(diffHostNet(before, snapshotHostNet())).toEqual([]);
  // When this file held the last lease, the engine is gone and nothing of it stays.
  if (root && !(await findEngine({ root, external: false }))) expect(leftovers(root)).toEqual([]);
}, 120_000);

async function startApi(
  env: Record<string, string>,
  extra: Partial<RunOptions> = {},
): Promise<{ c: Container; port: number; url: string; runToHealthyMs: number }> {
  const port = await freePort();
  const started = Date.now();
  const c = await runContainer(engine, {
    image: TAG,
    labels: { 'verdict.test': `container-${process.pid}` },
    readOnly: true,
    tmpfs: ['/tmp'],
    healthInterval: '1s',
    env: {
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      REDIS_URL: inject('redisUrl'),
      JWT_SECRET: TEST_SECRET,
      LOG_LEVEL: 'info',
      POD_NAME: 'container',
      APP_VERSION: 'container-test',
      LICENSE_SEED: 'TEST-KEY=1000',
      ...env,
    },
    ...extra,
  });
  await c.waitHealthy(60_000);
  return { c, port, url: `http://127.0.0.1:${port}`, runToHealthyMs: Date.now() - started };
}

/** `docker stop` while keep-alive load runs; the load goes on for `propagationMs` after it (as traffic does until a balancer drops the backend). */
async function dockerStopUnderLoad(c: Container, port: number, finishSlowAfterMs: number, propagationMs = 300) {
  const url = `http://127.0.0.1:${port}`;
  const token = await mintToken();
  const load = keepAliveLoad(url, token, 8);
  await sleep(300);
  const slow = await Promise.all([1, 2, 3].map(() => slowRequest(port, token)));
  await sleep(150);
  const t0 = Date.now();
  const stopped = c.stop(10);
  await sleep(propagationMs);
  await load.stop();
  await sleep(Math.max(0, finishSlowAfterMs - (Date.now() - t0)));
  for (const s of slow) s.finish();
  const slowResults = await Promise.all(slow.map((s) => s.done));
  const stop = await stopped;
  const afterStop = load.outcomes.filter((o) => o.at >= t0);
  return { stop, slowResults, outcomes: load.outcomes, afterStop, failed: load.outcomes.filter((o) => o.status === 0) };
}

describe('the license API image, built and run by a Docker engine', () => {
  it('builds from the local base with the Dockerfile as shipped; a second build is all cache; the image is under its size budget', async () => {
    expect(readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8')).toMatch(
      /^ARG NODE_IMAGE=node:24\.[\d.]+-bookworm-slim@sha256:[0-9a-f]{64}$/m,
    );
    const warm = await buildImage(engine, {
      context: REPO,
      tag: TAG,
      buildArgs: {
        NODE_IMAGE: process.env.VERDICT_BASE_IMAGE ?? 'verdict/node:24-bookworm-local',
        APP_VERSION: 'container-test',
      },
    });
    console.info(`warm rebuild of ${TAG}: ${warm.ms} ms; size ${warm.sizeBytes} bytes (budget ${SIZE_BUDGET_BYTES})`);
    expect(warm.id).toBe(cold.id);
    expect(warm.output).toMatch(/npm ci[^\n]*\n\s*---> Using cache/);
    expect(warm.sizeBytes).toBeLessThan(SIZE_BUDGET_BYTES);
  });

  it('runs as uid 1000 with a read-only root filesystem, reports healthy through its HEALTHCHECK and answers on loopback', async () => {
    const { c, url, runToHealthyMs } = await startApi({});
    try {
      console.info(`docker run → healthy: ${runToHealthyMs} ms (health interval 1 s)`);
      const s = await c.inspect();
      expect(s.health).toBe('healthy');
      expect(s.readOnly).toBe(true);
      expect(s.user).toBe('1000:1000');
      expect(readFileSync(`/proc/${s.pid}/status`, 'utf8')).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
      expect(readFileSync(`/proc/${s.pid}/cmdline`, 'utf8').split('\0').slice(0, 2)).toEqual(['node', 'server.mjs']);
      const live = await fetch(`${url}/health/live`);
      expect(live.status).toBe(200);
      expect(live.headers.get('x-app-version')).toBe('container-test');
      const acquire = await fetch(`${url}/api/v1/licenses/acquire`, {
        method: 'POST',
        body: JSON.stringify({ license_key: 'TEST-KEY', hardware_id: 'container-1' }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await mintToken()}` },
      });
      expect([200, 201]).toContain(acquire.status);
      // Nothing can be written outside /tmp.
      const write = await docker(engine, ['exec', c.id, 'node', '-e', 'require("fs").writeFileSync("/app/x", "x")']).then(
        () => 'written',
        (e) => String(e),
      );
      expect(write).toMatch(/EROFS|read-only/);
    } finally {
      await c.remove();
    }
  });

  it('docker stop under keep-alive load (graceful, as shipped): zero failed requests, in-flight requests answered, exit 0', async () => {
    const { c, port } = await startApi({ SHUTDOWN_MODE: 'graceful', SHUTDOWN_DELAY_MS: '600', SHUTDOWN_TIMEOUT_MS: '5000' });
    try {
      const r = await dockerStopUnderLoad(c, port, 900);
      console.info(
        `docker stop (graceful): exit ${r.stop.exitCode} after ${r.stop.ms} ms; ${r.outcomes.length} requests, ${r.afterStop.length} after the stop, ${r.failed.length} failed`,
      );
      expect(r.stop.exitCode).toBe(0);
      expect(r.afterStop.length).toBeGreaterThan(20);
      expect(r.failed).toEqual([]);
      expect(r.outcomes.filter((o) => o.status !== 404)).toEqual([]);
      expect(r.slowResults).toEqual([1, 2, 3].map(() => ({ status: 404, connectionClose: true })));
      expect(await c.logs()).toContain('shutdown complete');
    } finally {
      await c.remove();
    }
  });

  it('the naive shutdown under the same docker stop fails requests (the test can see what the drain prevents)', async () => {
    const { c, port } = await startApi({ SHUTDOWN_MODE: 'naive', SHUTDOWN_DELAY_MS: '0', SHUTDOWN_TIMEOUT_MS: '5000' });
    try {
      const r = await dockerStopUnderLoad(c, port, 300);
      console.info(
        `docker stop (naive): exit ${r.stop.exitCode} after ${r.stop.ms} ms; ${r.outcomes.length} requests, ${r.failed.length} failed`,
      );
      expect(r.failed.length).toBeGreaterThan(0);
      expect(r.slowResults.map((s) => s.status)).toEqual([0, 0, 0]);
      expect(r.stop.exitCode).toBe(0);
    } finally {
      await c.remove();
    }
  });
});
