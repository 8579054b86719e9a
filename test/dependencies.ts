/**
 * The tests' PostgreSQL and Redis, by one of two strategies tried in order:
 *
 * - `containers`: testcontainers against a Docker engine. Images come from configuration
 *   (`VERDICT_POSTGRES_IMAGE`, `VERDICT_REDIS_IMAGE`; default the official `postgres:15-bookworm`
 *   and `redis:7-bookworm`). Nothing is pulled unless `VERDICT_TEST_PULL=1`: where an official
 *   image is not present and no registry is reachable, Debian's postgresql and redis-server on the
 *   local base image are built instead (test/images/, cached by the engine). Containers use the
 *   host network and listen on 127.0.0.1.
 * - `host`: the same servers as host processes (lib/services), what the tests always used.
 *
 * `VERDICT_TEST_DEPS=auto|containers|host` (default `host`): `auto` takes containers when an
 * engine already answers, else host processes; `containers` starts our own engine when none answers.
 * When nothing works, one error lists why each strategy failed.
 */
import { fileURLToPath } from 'node:url';
import { docker } from '../lib/docker/cli.ts';
import { findEngine, useEngine, type DockerEngine } from '../lib/docker/engine.ts';
import { buildImage, ensureBaseImage, imagePresent } from '../lib/docker/images.ts';
import { freePort, waitForPort } from '../lib/net/free-port.ts';
import { startPostgres, waitForPostgres } from '../lib/services/postgres.ts';
import { startRedis } from '../lib/services/redis.ts';

export type DepsMode = 'auto' | 'containers' | 'host';
export type DepsStrategy = 'containers' | 'host';

export interface TestDependencies extends AsyncDisposable {
  readonly strategy: DepsStrategy;
  /** Admin URL of the PostgreSQL server (tests create a database each). */
  readonly postgresUrl: string;
  readonly redisUrl: string;
  /** How long starting them took (ms). */
  readonly startMs: number;
  /** What runs, in words (images or binaries). */
  readonly detail: string;
  stop(): Promise<void>;
}

export const OFFICIAL_POSTGRES_IMAGE = 'postgres:15-bookworm';
export const OFFICIAL_REDIS_IMAGE = 'redis:7-bookworm';
export const LOCAL_POSTGRES_IMAGE = 'verdict/postgres:15-bookworm-local';
export const LOCAL_REDIS_IMAGE = 'verdict/redis:7-bookworm-local';
/** Containers of a test run carry this label, valued with the run's pid: a dead run's are removed by the next. */
const RUN_LABEL = 'verdict.test-deps';

export function depsMode(v = process.env.VERDICT_TEST_DEPS): DepsMode {
  const mode = (v ?? 'host').trim() || 'host';
  if (mode !== 'auto' && mode !== 'containers' && mode !== 'host')
    throw new Error(`VERDICT_TEST_DEPS=${v}: use auto, containers or host`);
  return mode;
}

export async function startTestDependencies(
  mode: DepsMode = depsMode(),
  opts: { onProgress?: (m: string) => void } = {},
): Promise<TestDependencies> {
  const order: DepsStrategy[] = mode === 'auto' ? ['containers', 'host'] : [mode];
  const reasons: string[] = [];
  for (const s of order) {
    try {
      return s === 'containers' ? await startContainers(mode, opts.onProgress) : await startHost();
    } catch (err) {
      reasons.push(`${s}: ${(err as Error).message.split('\n').join('\n    ')}`);
    }
  }
  throw new Error(
    `no PostgreSQL and Redis for the tests (VERDICT_TEST_DEPS=${mode}); each way failed:\n  ${reasons.join('\n  ')}\n` +
      "Fix one: `make setup` (Debian's postgresql and redis-server for host processes), or a Docker engine for containers (scripts/setup-deps.sh --docker, as root).",
  );
}

async function startHost(): Promise<TestDependencies> {
  const started = Date.now();
  const postgres = await startPostgres();
  const redis = await startRedis().catch(async (err) => {
    await postgres.stop();
    throw err;
  });
  const stop = async () => {
    await Promise.allSettled([redis.stop(), postgres.stop()]);
  };
  return {
    strategy: 'host',
    postgresUrl: postgres.url(),
    redisUrl: redis.url,
    startMs: Date.now() - started,
    detail: `host processes (postgres pid ${postgres.pid}, redis :${redis.port})`,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * The image to run for `envName`: the configured one when present; an official default that is
 * absent is replaced by the local build (unless pulls are allowed). A configured image that is
 * absent fails (nothing is pulled behind anyone's back).
 */
async function resolveImage(
  engine: DockerEngine,
  envName: string,
  official: string,
  local: string,
  dir: string,
  say?: (m: string) => void,
): Promise<string> {
  const configured = process.env[envName];
  const wanted = configured ?? official;
  if (await imagePresent(engine, wanted)) return wanted;
  if (process.env.VERDICT_TEST_PULL === '1') return wanted; // testcontainers pulls it
  if (configured)
    throw new Error(
      `${envName}=${configured} is not present in the engine at ${engine.host} and pulls are off (VERDICT_TEST_PULL=1 allows them)`,
    );
  // Built every time: the layer cache makes an unchanged build take a fraction of a second, and a
  // changed Dockerfile or entrypoint is never run stale.
  if (!(await imagePresent(engine, local)))
    say?.(
      `${official} is not present and no registry is used: building ${local} from test/images (Debian packages on the local base)`,
    );
  const base = await ensureBaseImage(engine, { onProgress: say });
  const context = fileURLToPath(new URL(`./images/${dir}/`, import.meta.url));
  await buildImage(engine, { context, tag: local, buildArgs: { BASE: base.ref } });
  return local;
}

async function startContainers(mode: DepsMode, say?: (m: string) => void): Promise<TestDependencies> {
  const started = Date.now();
  let engine: DockerEngine;
  if (mode === 'auto') {
    const found = await findEngine();
    if (!found)
      throw new Error('no Docker engine answers (DOCKER_HOST, /var/run/docker.sock, /var/lib/verdict/docker/docker.sock)');
    engine = await useEngine();
  } else {
    engine = await useEngine({ onProgress: say });
  }
  const started_: Array<{ stop(o?: { remove?: boolean; timeout?: number }): Promise<unknown> }> = [];
  try {
    // A run that died left its containers: remove those whose pid is gone.
    for (const line of (
      await docker(engine, ['ps', '-a', '--filter', `label=${RUN_LABEL}`, '--format', `{{.ID}} {{.Label "${RUN_LABEL}"}}`])
    ).stdout
      .trim()
      .split('\n')
      .filter(Boolean)) {
      const [id, pid] = line.split(' ');
      if (!pidAlive(Number(pid))) await docker(engine, ['rm', '--force', id]).catch(() => {});
    }
    const [pgImage, redisImage] = [
      await resolveImage(engine, 'VERDICT_POSTGRES_IMAGE', OFFICIAL_POSTGRES_IMAGE, LOCAL_POSTGRES_IMAGE, 'postgres', say),
      await resolveImage(engine, 'VERDICT_REDIS_IMAGE', OFFICIAL_REDIS_IMAGE, LOCAL_REDIS_IMAGE, 'redis', say),
    ];
    // testcontainers reads its engine from the environment; Ryuk (its reaper) is an image from a
    // registry, so it is off and the containers are removed by stop() and by the next run's sweep.
    // The containers share the host's network and listen on loopback: that is their host (without
    // the override testcontainers looks for a `bridge` network's gateway where /.dockerenv exists).
    process.env.DOCKER_HOST = engine.host;
    process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
    process.env.TESTCONTAINERS_HOST_OVERRIDE = '127.0.0.1';
    const { GenericContainer, PullPolicy, Wait } = await import('testcontainers');
    const pull = process.env.VERDICT_TEST_PULL === '1' ? PullPolicy.defaultPolicy() : PullPolicy.neverPull();
    const [pgPort, redisPort] = [await freePort(), await freePort()];
    const labels = { [RUN_LABEL]: String(process.pid), 'verdict.owner': 'verdict' };
    const [postgres, redis] = await Promise.all([
      new GenericContainer(pgImage)
        .withNetworkMode('host')
        .withPullPolicy(pull)
        .withLabels(labels)
        .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_PASSWORD: 'unused' })
        .withTmpFs({ '/var/lib/postgresql/data': 'rw' })
        .withCommand([
          'postgres',
          '-c',
          `port=${pgPort}`,
          '-c',
          'listen_addresses=127.0.0.1',
          '-c',
          'fsync=off',
          '-c',
          'synchronous_commit=off',
          '-c',
          'full_page_writes=off',
          '-c',
          'max_connections=200',
          '-c',
          'shared_buffers=64MB',
        ])
        .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/))
        .withStartupTimeout(120_000)
        .start()
        .then((c) => {
          started_.push(c);
          return c;
        }),
      new GenericContainer(redisImage)
        .withNetworkMode('host')
        .withPullPolicy(pull)
        .withLabels(labels)
        .withCommand([
          'redis-server',
          '--port',
          String(redisPort),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--protected-mode',
          'no',
        ])
        .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
        .withStartupTimeout(60_000)
        .start()
        .then((c) => {
          started_.push(c);
          return c;
        }),
    ]);
    const postgresUrl = `postgres://postgres@127.0.0.1:${pgPort}/postgres`;
    await waitForPostgres(postgresUrl, 60_000);
    await waitForPort('127.0.0.1', redisPort, 10_000);
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      const t = Date.now();
      await Promise.allSettled([postgres.stop({ remove: true, timeout: 10_000 }), redis.stop({ remove: true, timeout: 10_000 })]);
      const containersMs = Date.now() - t;
      await engine.release();
      if (process.env.VERDICT_TEST_DEPS)
        console.info(
          `test dependencies: containers stopped in ${containersMs} ms, engine released in ${Date.now() - t - containersMs} ms`,
        );
    };
    return {
      strategy: 'containers',
      postgresUrl,
      redisUrl: `redis://127.0.0.1:${redisPort}`,
      startMs: Date.now() - started,
      detail: `testcontainers on ${engine.host}: ${pgImage}, ${redisImage}`,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    await Promise.allSettled(started_.map((c) => c.stop({ remove: true, timeout: 5000 })));
    await engine.release();
    throw err;
  }
}

const pidAlive = (pid: number) => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
