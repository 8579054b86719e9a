/**
 * Containers of locally built images, on the host network (our engine has no bridge): they listen
 * on loopback ports the caller chooses. Runs go through the `docker()` gate (`--pull never`).
 */
import { docker, type EngineRef } from './cli.ts';

export interface RunOptions {
  image: string;
  name?: string;
  env?: Record<string, string>;
  /** `host` (default) or `none`. */
  network?: 'host' | 'none';
  /** `uid[:gid]`; default the image's USER. */
  user?: string;
  /** `--read-only`: the root filesystem cannot be written. */
  readOnly?: boolean;
  /** tmpfs mounts, e.g. `/tmp`. */
  tmpfs?: string[];
  labels?: Record<string, string>;
  /** Replaces the image's CMD. */
  cmd?: string[];
  entrypoint?: string;
  /** Overrides the HEALTHCHECK's interval (the image's command stays), e.g. `1s`. */
  healthInterval?: string;
  /** Seconds `docker stop` waits after SIGTERM before SIGKILL (default the engine's 10). */
  stopTimeoutS?: number;
  /** `--init`: an init process as PID 1 (default off: the image's command is PID 1). */
  init?: boolean;
}

export interface ContainerState {
  status: string;
  running: boolean;
  exitCode: number;
  /** The HEALTHCHECK's status, or null when the image has none. */
  health: 'starting' | 'healthy' | 'unhealthy' | null;
  /** The main process's pid on the host (0 when not running). */
  pid: number;
  user: string;
  readOnly: boolean;
  startedAt: string;
  finishedAt: string;
}

export interface Container extends AsyncDisposable {
  readonly id: string;
  readonly name: string;
  inspect(): Promise<ContainerState>;
  /** Waits until the HEALTHCHECK reports `healthy`; resolves with the ms since this call. Throws on `unhealthy`, exit or timeout. */
  waitHealthy(timeoutMs?: number): Promise<number>;
  /** `docker stop -t <s>`: SIGTERM, SIGKILL after the timeout. Resolves with the exit code and how long it took. */
  stop(timeoutS?: number): Promise<{ exitCode: number; ms: number }>;
  logs(): Promise<string>;
  /** `docker rm --force`. Idempotent. */
  remove(): Promise<void>;
}

/** `docker run --detach` with the options above. The image must be present (never pulled). */
export async function runContainer(engine: EngineRef, o: RunOptions): Promise<Container> {
  const name = o.name ?? `verdict-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const args = ['run', '--detach', '--name', name, '--network', o.network ?? 'host'];
  for (const [k, v] of Object.entries(o.env ?? {})) args.push('--env', `${k}=${v}`);
  for (const [k, v] of Object.entries({ 'verdict.owner': 'verdict', ...o.labels })) args.push('--label', `${k}=${v}`);
  if (o.user) args.push('--user', o.user);
  if (o.readOnly) args.push('--read-only');
  for (const t of o.tmpfs ?? []) args.push('--tmpfs', t);
  if (o.entrypoint !== undefined) args.push('--entrypoint', o.entrypoint);
  if (o.healthInterval) args.push('--health-interval', o.healthInterval);
  if (o.stopTimeoutS !== undefined) args.push('--stop-timeout', String(o.stopTimeoutS));
  if (o.init) args.push('--init');
  args.push(o.image, ...(o.cmd ?? []));
  const id = (await docker(engine, args, { timeoutMs: 60_000 })).stdout.trim();
  return containerHandle(engine, id, name);
}

export function containerHandle(engine: EngineRef, id: string, name = id): Container {
  let removed = false;
  const inspect = async (): Promise<ContainerState> => {
    const j = JSON.parse((await docker(engine, ['container', 'inspect', id])).stdout)[0];
    return {
      status: j.State.Status,
      running: j.State.Running,
      exitCode: j.State.ExitCode,
      health: j.State.Health?.Status ?? null,
      pid: j.State.Pid,
      user: j.Config.User,
      readOnly: !!j.HostConfig.ReadonlyRootfs,
      startedAt: j.State.StartedAt,
      finishedAt: j.State.FinishedAt,
    };
  };
  const logs = async () => {
    const r = await docker(engine, ['logs', id]).catch((e) => ({ stdout: '', stderr: String(e) }));
    return r.stdout + r.stderr;
  };
  const remove = async () => {
    if (removed) return;
    removed = true;
    await docker(engine, ['rm', '--force', '--volumes', id]).catch((err) => {
      if (!/No such container/.test(String(err))) throw err;
    });
  };
  return {
    id,
    name,
    inspect,
    logs,
    remove,
    async waitHealthy(timeoutMs = 60_000) {
      const started = Date.now();
      for (;;) {
        const s = await inspect();
        if (s.health === 'healthy') return Date.now() - started;
        if (s.health === 'unhealthy') throw new Error(`container ${name} is unhealthy:\n${(await logs()).slice(-2000)}`);
        if (!s.running)
          throw new Error(`container ${name} exited (${s.exitCode}) before it was healthy:\n${(await logs()).slice(-2000)}`);
        if (s.health === null) throw new Error(`the image of ${name} has no HEALTHCHECK`);
        if (Date.now() - started > timeoutMs)
          throw new Error(`container ${name} not healthy within ${timeoutMs} ms (${s.health})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop(timeoutS = 10) {
      const started = Date.now();
      await docker(engine, ['stop', '-t', String(timeoutS), id], { timeoutMs: (timeoutS + 30) * 1000 });
      const ms = Date.now() - started;
      return { exitCode: (await inspect()).exitCode, ms };
    },
    async [Symbol.asyncDispose]() {
      await remove();
    },
  };
}

/** Ids of the containers (running or not) that carry `label` (`key=value`). */
export async function listContainers(engine: EngineRef, label: string): Promise<string[]> {
  return (await docker(engine, ['ps', '--all', '--quiet', '--filter', `label=${label}`])).stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}
