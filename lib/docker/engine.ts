/**
 * A Docker engine for the harness: one that already answers (`DOCKER_HOST`, the default socket),
 * or a `dockerd` of our own that cannot touch the host's network setup.
 *
 * Our own engine runs with its own data root, exec root, socket and pid file under one folder
 * (`/var/lib/verdict/docker` by default), `--iptables=false --ip-forward=false --bridge=none` and an
 * empty config file (so `/etc/docker/daemon.json` cannot turn any of that back on). Containers use
 * the host network (`--network host`) and listen on loopback. IP forwarding, the FORWARD policy,
 * Docker's iptables chains and bridges are compared before and after; a change is put back where
 * possible and fails loudly.
 *
 * Several processes may use the same engine at once (the test files of one run, a CI job): each
 * holds a lease (a file named by its pid) and the last one to release it stops the engine. Leases
 * of processes that died are ignored. `stopEngine()` stops it whatever the leases say (`down`).
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { killProcessesUsing } from '../proc/kill-by-path.ts';
import { runCommand } from '../proc/run.ts';
import {
  assertHostNetUnchanged,
  diffHostNet,
  restoreHostNet,
  snapshotHostNet,
  HostNetChangedError,
  type HostNetSnapshot,
} from './host-safety.ts';

/** Our engine's folder: `$VERDICT_DOCKER_ROOT`, default `/var/lib/verdict/docker`. */
export const DEFAULT_ENGINE_ROOT = process.env.VERDICT_DOCKER_ROOT ?? '/var/lib/verdict/docker';
export const DEFAULT_SOCKET = '/var/run/docker.sock';

export type EngineSource = 'DOCKER_HOST' | 'default socket' | 'verdict';

export interface EngineEndpoint {
  /** The `DOCKER_HOST` value that reaches it, e.g. `unix:///var/lib/verdict/docker/docker.sock`. */
  host: string;
  source: EngineSource;
}

export interface DockerEngine extends EngineEndpoint, AsyncDisposable {
  /** Our engine's folder (data root, exec root, socket, log), or null for an engine someone else runs. */
  readonly root: string | null;
  /** True when this call started `dockerd` (false: it was running, ours or someone else's). */
  readonly startedHere: boolean;
  /** The environment for the docker CLI: `DOCKER_HOST`, and the classic builder (`DOCKER_BUILDKIT=0`). */
  env(): NodeJS.ProcessEnv;
  /** Gives the lease back; the last holder stops our engine. An engine someone else runs is left alone. Idempotent. */
  release(): Promise<void>;
}

export interface UseEngineOptions {
  /** Our engine's folder (default `/var/lib/verdict/docker`, or `$VERDICT_DOCKER_ROOT`). */
  root?: string;
  /** Use an engine that already answers at `DOCKER_HOST` or the default socket (default true). */
  external?: boolean;
  /** When our engine stops, remove its data root too (images, build cache). For throw-away roots. */
  removeDataOnStop?: boolean;
  /**
   * Start `dockerd` in its own process group so that it outlives this process (a CI job's `up`).
   * Default false: Ctrl-C in a terminal reaches it too and it shuts down with the harness.
   */
  detached?: boolean;
  /** `dockerd --debug` (every API call in the log: how a test proves that nothing was pulled). */
  debug?: boolean;
  /** Lease holder's pid (default this process): a shell script holds the engine by its own pid. */
  holderPid?: number;
  onProgress?: (message: string) => void;
}

export class EngineUnavailableError extends Error {}

const layout = (root: string) => ({
  root,
  data: join(root, 'data'),
  exec: join(root, 'exec'),
  socket: join(root, 'docker.sock'),
  pidfile: join(root, 'docker.pid'),
  log: join(root, 'dockerd.log'),
  config: join(root, 'daemon.json'),
  leases: join(root, 'leases'),
  lock: join(root, 'lock'),
  state: join(root, 'engine.json'),
});
type Layout = ReturnType<typeof layout>;

/** What our engine's start recorded for whoever stops it (maybe another process). */
interface EngineState {
  pid: number;
  before: HostNetSnapshot;
  createdRunDirs: string[];
  removeDataOnStop: boolean;
  startedAt: string;
}

/**
 * Folders dockerd and containerd make at fixed places whatever their roots: the plugin socket
 * folder and the shims' socket folder. Removed when empty at stop if the engine's start made them.
 */
const FIXED_RUN_DIRS = ['/run/docker/plugins', '/run/docker', '/run/containerd/s', '/run/containerd'];

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET /_ping on a unix socket: true when an engine answers OK. */
export function pingSocket(socketPath: string, timeoutMs = 3000): Promise<boolean> {
  if (!existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolvePing) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolvePing(res.statusCode === 200);
    });
    req.on('timeout', () => {
      req.destroy();
      resolvePing(false);
    });
    req.on('error', () => resolvePing(false));
    req.end();
  });
}

/** Whether an engine answers at a `DOCKER_HOST` value (unix sockets by ping, anything else through the CLI). */
export async function pingEngine(host: string, timeoutMs = 5000): Promise<boolean> {
  if (host.startsWith('unix://')) return pingSocket(host.slice('unix://'.length), timeoutMs);
  try {
    await runCommand('docker', ['version', '--format', '{{.Server.Version}}'], {
      env: { ...process.env, DOCKER_HOST: host },
      timeoutMs,
    });
    return true;
  } catch {
    return false;
  }
}

/** The first engine that answers: `DOCKER_HOST`, the default socket, then our own engine's socket. */
export async function findEngine(opts: { root?: string; external?: boolean } = {}): Promise<EngineEndpoint | null> {
  if (opts.external !== false) {
    const envHost = process.env.DOCKER_HOST;
    if (envHost && (await pingEngine(envHost)))
      return {
        host: envHost,
        source: envHost === `unix://${layout(resolve(opts.root ?? DEFAULT_ENGINE_ROOT)).socket}` ? 'verdict' : 'DOCKER_HOST',
      };
    if (await pingSocket(DEFAULT_SOCKET)) return { host: `unix://${DEFAULT_SOCKET}`, source: 'default socket' };
  }
  const l = layout(resolve(opts.root ?? DEFAULT_ENGINE_ROOT));
  if (await pingSocket(l.socket)) return { host: `unix://${l.socket}`, source: 'verdict' };
  return null;
}

/** Why we cannot start an engine here, or null when we can. */
export function cannotStartReason(env: { uid?: number; searchPath?: string[] } = {}): string | null {
  if ((env.uid ?? process.getuid?.()) !== 0)
    return 'starting dockerd needs root (run as root, or start Docker yourself and set DOCKER_HOST)';
  const dirs = env.searchPath ?? (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin']);
  const found = dirs.some((d) => d && existsSync(join(d, 'dockerd')));
  if (!found)
    return "dockerd is not installed (run `scripts/setup-deps.sh --docker`, which installs Debian's docker.io, or start Docker yourself and set DOCKER_HOST)";
  return null;
}

/**
 * An engine to use: one that answers already (unless `external: false`), else our own in `root`,
 * started when no lease holder runs it. Throws EngineUnavailableError, with the reason and the fix,
 * when there is none and none can be started.
 */
export async function useEngine(opts: UseEngineOptions = {}): Promise<DockerEngine> {
  return await useEngineWith(opts, cannotStartReason());
}

/** The message when no engine answers and none can be started (exported for tests). */
export function unavailableMessage(reason: string): string {
  return `no Docker engine answers (DOCKER_HOST ${process.env.DOCKER_HOST ? `${process.env.DOCKER_HOST} does not answer` : 'is unset'}, ${DEFAULT_SOCKET} does not answer) and verdict cannot start one: ${reason}`;
}

async function useEngineWith(opts: UseEngineOptions, reason: string | null): Promise<DockerEngine> {
  const root = resolve(opts.root ?? DEFAULT_ENGINE_ROOT);
  const l = layout(root);
  if (opts.external !== false) {
    const found = await findEngine({ root, external: true });
    if (found && found.source !== 'verdict') return foreignEngine(found);
  }
  if (reason && !(await pingSocket(l.socket))) throw new EngineUnavailableError(unavailableMessage(reason));
  mkdirSync(l.leases, { recursive: true });
  const holder = opts.holderPid ?? process.pid;
  const lease = join(l.leases, `${holder}-${randomBytes(4).toString('hex')}`);
  let startedHere = false;
  await withLock(l, async () => {
    writeFileSync(lease, `${new Date().toISOString()}\n`);
    if ((await pingSocket(l.socket)) && engineAlive(l)) return;
    try {
      await startDockerd(l, opts);
      startedHere = true;
    } catch (err) {
      rmSync(lease, { force: true });
      throw err;
    }
  });
  let released = false;
  const onExit = () => {
    if (!released) releaseSync(l, lease);
  };
  if (holder === process.pid) process.once('exit', onExit);
  const engine: DockerEngine = {
    host: `unix://${l.socket}`,
    source: 'verdict',
    root,
    startedHere,
    env: () => dockerEnv(`unix://${l.socket}`),
    async release() {
      if (released) return;
      released = true;
      process.off('exit', onExit);
      await withLock(l, async () => {
        rmSync(lease, { force: true });
        if (liveLeases(l).length === 0) await stopLocked(l, opts.onProgress);
      });
    },
    async [Symbol.asyncDispose]() {
      await engine.release();
    },
  };
  return engine;
}

function foreignEngine(found: EngineEndpoint): DockerEngine {
  return {
    ...found,
    root: null,
    startedHere: false,
    env: () => dockerEnv(found.host),
    release: async () => {},
    [Symbol.asyncDispose]: async () => {},
  };
}

/** The environment for the docker CLI against `host`: the classic builder, no hints, no pull by the CLI's own choice. */
export function dockerEnv(host: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DOCKER_HOST: host,
    DOCKER_BUILDKIT: '0',
    DOCKER_CLI_HINTS: 'false',
    DOCKER_CLI_EXPERIMENTAL: 'disabled',
  };
}

/**
 * Stops our engine in `root` whatever leases are held (a CI job's final `down`, or after a crash):
 * dockerd, then its containerd and shims, every mount under the folder (the `nsfs` mount at
 * `<exec-root>/netns/default`), the exec root, socket and leases; the data root stays (images
 * and build cache) unless `removeData`. Returns whether an engine was running.
 */
export async function stopEngine(
  root = DEFAULT_ENGINE_ROOT,
  opts: { removeData?: boolean; onProgress?: (m: string) => void } = {},
): Promise<{ wasRunning: boolean }> {
  const l = layout(resolve(root));
  if (!existsSync(l.root)) return { wasRunning: false };
  let wasRunning = false;
  await withLock(l, async () => {
    wasRunning = engineAlive(l);
    rmSync(l.leases, { recursive: true, force: true });
    await stopLocked(l, opts.onProgress, opts.removeData);
  });
  if (opts.removeData) rmSync(l.root, { recursive: true, force: true });
  return { wasRunning };
}

/**
 * Gives back every lease `holderPid` holds on our engine in `root` (a shell script's `up --hold`);
 * stops the engine when no live holder is left. Returns whether it stopped it.
 */
export async function releaseHolder(
  root: string,
  holderPid: number,
  opts: { onProgress?: (m: string) => void } = {},
): Promise<boolean> {
  const l = layout(resolve(root));
  if (!existsSync(l.root)) return false;
  return await withLock(l, async () => {
    for (const n of (() => {
      try {
        return readdirSync(l.leases);
      } catch {
        return [];
      }
    })()) {
      if (Number(n.split('-')[0]) === holderPid) rmSync(join(l.leases, n), { force: true });
    }
    if (liveLeases(l).length > 0 || !engineAlive(l)) return false;
    await stopLocked(l, opts.onProgress);
    return true;
  });
}

/** What is left of our engine in `root`: processes, mounts, the socket (empty when nothing). */
export function leftovers(root = DEFAULT_ENGINE_ROOT): string[] {
  const l = layout(resolve(root));
  const out: string[] = [];
  for (const m of mountsUnder(l.root)) out.push(`mount ${m}`);
  for (const pid of pidsUsing([l.exec, l.data, l.socket])) out.push(`process ${pid} (${cmdline(pid).slice(0, 120)})`);
  if (existsSync(l.socket)) out.push(`socket ${l.socket}`);
  if (existsSync(l.exec)) out.push(`exec root ${l.exec}`);
  return out;
}

// ---------------------------------------------------------------------------------------------

function readState(l: Layout): EngineState | null {
  try {
    return JSON.parse(readFileSync(l.state, 'utf8')) as EngineState;
  } catch {
    return null;
  }
}

function enginePid(l: Layout): number {
  try {
    return Number(readFileSync(l.pidfile, 'utf8').trim()) || 0;
  } catch {
    return readState(l)?.pid ?? 0;
  }
}

function engineAlive(l: Layout): boolean {
  const pid = enginePid(l);
  return !!pid && alive(pid) && cmdline(pid).includes('dockerd') && cmdline(pid).includes(l.root);
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

function pidsUsing(paths: string[]): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const cmd = cmdline(pid);
    if (paths.some((p) => cmd.includes(p))) out.push(pid);
  }
  return out;
}

/** Mount points at or under `dir` (deepest first), from /proc/self/mountinfo. */
function mountsUnder(dir: string): string[] {
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter(Boolean)
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

function liveLeases(l: Layout): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(l.leases);
  } catch {
    return [];
  }
  const live: string[] = [];
  for (const n of names) {
    const pid = Number(n.split('-')[0]);
    if (pid && alive(pid)) live.push(n);
    else rmSync(join(l.leases, n), { force: true });
  }
  return live;
}

/** A lock between processes: a folder that only one can make; a dead holder's lock is taken over. */
async function withLock<T>(l: Layout, fn: () => Promise<T>): Promise<T> {
  mkdirSync(l.root, { recursive: true });
  return await withDirLock(l.lock, fn);
}

/**
 * Runs `fn` while holding the lock folder `lockDir` (made by one process at a time; the pid inside
 * names the holder, and a dead holder's lock is taken over). Waits up to `timeoutMs`; aborting
 * `signal` (Ctrl-C) ends the wait with its reason, and leaves the holder's lock alone.
 */
export async function withDirLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  timeoutMs = 120_000,
  signal?: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = 0;
      try {
        holder = Number(readFileSync(join(lockDir, 'pid'), 'utf8'));
      } catch {
        /* being written */
      }
      const age = (() => {
        try {
          return Date.now() - statSync(lockDir).mtimeMs;
        } catch {
          return 0;
        }
      })();
      if ((holder && !alive(holder)) || (!holder && age > 5000)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`${lockDir} is held by pid ${holder} for more than ${Math.round(timeoutMs / 1000)} s`);
      signal?.throwIfAborted();
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

async function startDockerd(l: Layout, opts: UseEngineOptions): Promise<void> {
  // Leftovers of an engine that died without its stop (a killed run): clear them first.
  await cleanupDead(l, opts.onProgress);
  const before = snapshotHostNet();
  mkdirSync(l.data, { recursive: true });
  // An empty config (the host's /etc/docker/daemon.json must not apply), and the engine's key in
  // its own folder rather than /etc/docker/key.json.
  writeFileSync(l.config, JSON.stringify({ 'deprecated-key-path': join(l.root, 'key.json') }) + '\n');
  const createdRunDirs = FIXED_RUN_DIRS.filter((d) => !existsSync(d));
  const args = [
    '--data-root',
    l.data,
    '--exec-root',
    l.exec,
    '-H',
    `unix://${l.socket}`,
    '--pidfile',
    l.pidfile,
    '--config-file',
    l.config,
    '--iptables=false',
    '--ip6tables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--bridge=none',
    '--userland-proxy=false',
    ...(opts.debug ? ['--debug'] : ['--log-level', 'warn']),
  ];
  opts.onProgress?.(`starting dockerd (data root ${l.data}, socket ${l.socket}, no iptables, no IP forwarding, no bridge)`);
  // One earlier log is kept (dockerd.log.1), so that the folder does not grow run after run.
  try {
    if (statSync(l.log).size > 5e6) renameSync(l.log, `${l.log}.1`);
  } catch {
    /* no log yet */
  }
  const logFd = openSync(l.log, 'a');
  const child = spawn('dockerd', args, {
    stdio: ['ignore', logFd, logFd],
    detached: !!opts.detached,
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/usr/bin:/sbin` },
  });
  closeSync(logFd);
  let exited: string | null = null;
  child.once('exit', (code, sig) => {
    exited = `exit ${code ?? sig}`;
  });
  child.once('error', (err) => {
    exited = String(err);
  });
  child.unref();
  const state: EngineState = {
    pid: child.pid ?? 0,
    before,
    createdRunDirs,
    removeDataOnStop: !!opts.removeDataOnStop,
    startedAt: new Date().toISOString(),
  };
  writeFileSync(l.state, JSON.stringify(state, null, 2) + '\n');
  const deadline = Date.now() + 60_000;
  while (!(await pingSocket(l.socket, 1000))) {
    if (exited || Date.now() > deadline) {
      const tail = (await readFile(l.log, 'utf8').catch(() => '')).trim().split('\n').slice(-8).join('\n');
      await stopLocked(l, opts.onProgress).catch(() => {});
      throw new EngineUnavailableError(`dockerd did not start (${exited ?? 'no answer within 60 s'}); ${l.log}:\n${tail}`);
    }
    await sleep(100);
  }
  try {
    assertHostNetUnchanged(before, 'when dockerd started');
  } catch (err) {
    await stopLocked(l, opts.onProgress).catch(() => {});
    throw err;
  }
}

async function cleanupDead(l: Layout, say?: (m: string) => void): Promise<void> {
  if (engineAlive(l)) return;
  if (existsSync(l.exec) || existsSync(l.socket) || mountsUnder(l.root).length) {
    say?.(`clearing what a dead engine left in ${l.root}`);
    await stopLocked(l, say);
  }
}

/** Stops dockerd and clears everything but the data root (and that too with `removeData`). Call under the lock. */
async function stopLocked(l: Layout, say?: (m: string) => void, removeData?: boolean): Promise<void> {
  const state = readState(l);
  const pid = enginePid(l);
  if (pid && alive(pid) && cmdline(pid).includes('dockerd')) {
    say?.(`stopping dockerd (pid ${pid})`);
    process.kill(pid, 'SIGTERM');
    // dockerd gives running containers 15 s to stop (SIGTERM, then SIGKILL) before it exits.
    const deadline = Date.now() + 40_000;
    while (alive(pid) && Date.now() < deadline) await sleep(100);
    if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    while (alive(pid) && cmdline(pid)) await sleep(50);
  }
  // containerd and its shims are children of dockerd, but a SIGKILLed dockerd leaves them.
  for (const p of [l.exec, l.data]) if (pidsUsing([p]).length) await killProcessesUsing(p, 5000);
  for (const m of mountsUnder(l.root)) {
    if (m === l.root) continue;
    const r = spawnSync('umount', [m], { stdio: 'ignore' });
    if (r.status !== 0) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  }
  for (const p of [l.exec, l.socket, l.pidfile]) rmSync(p, { recursive: true, force: true });
  if (removeData ?? state?.removeDataOnStop) {
    rmSync(l.data, { recursive: true, force: true });
  }
  // dockerd makes /run/docker/plugins and containerd's shims /run/containerd/s whatever the roots:
  // removed when this engine's start made them and they are empty (children first).
  for (const d of FIXED_RUN_DIRS) {
    if (!state?.createdRunDirs?.includes(d)) continue;
    try {
      if (readdirSync(d).length === 0) rmSync(d, { recursive: true });
    } catch {
      /* gone, or in use by another engine */
    }
  }
  rmSync(l.state, { force: true });
  const left = leftovers(l.root);
  if (left.length) throw new Error(`the Docker engine in ${l.root} left: ${left.join('; ')}`);
  if (state?.before) {
    const changes = diffHostNet(state.before, snapshotHostNet());
    if (changes.length) {
      restoreHostNet(state.before);
      throw new HostNetChangedError(
        `the host's network setup changed while dockerd ran: ${changes.join('; ')} (forwarding and the FORWARD policy were put back)`,
      );
    }
  }
}

/** The last-chance path when a holder exits without release: drop the lease, and SIGTERM our dockerd if it was the last. */
function releaseSync(l: Layout, lease: string): void {
  try {
    rmSync(lease, { force: true });
    if (liveLeases(l).length > 0) return;
    const pid = enginePid(l);
    if (pid && alive(pid) && cmdline(pid).includes('dockerd')) process.kill(pid, 'SIGTERM');
    // The mounts and folders it leaves are cleared by the next start, or by `stopEngine()`.
  } catch {
    /* best effort at exit */
  }
}

// `node lib/docker/engine.ts up|release|down|status [--root DIR] [--hold PID]`: an engine for a whole CI run or `make test`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const [cmd, ...rest] = process.argv.slice(2);
  const flag = (name: string) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const root = flag('--root') ?? DEFAULT_ENGINE_ROOT;
  const say = (m: string) => process.stderr.write(`docker-engine: ${m}\n`);
  try {
    if (cmd === 'up') {
      const holder = Number(flag('--hold') ?? process.ppid);
      const e = await useEngine({ root, external: false, detached: true, holderPid: holder, onProgress: say });
      say(`${e.startedHere ? 'started' : 'reusing'} the engine at ${e.host} (held by pid ${holder})`);
      process.stdout.write(`${e.host}\n`);
    } else if (cmd === 'release') {
      const holder = Number(flag('--hold') ?? process.ppid);
      say(
        (await releaseHolder(root, holder, { onProgress: say }))
          ? 'released; it was the last holder: stopped, nothing left behind'
          : 'released (other holders keep it running, or it was not running)',
      );
    } else if (cmd === 'down') {
      const r = await stopEngine(root, { onProgress: say });
      say(r.wasRunning ? 'stopped; nothing left behind' : 'no engine was running; nothing left behind');
    } else if (cmd === 'status') {
      const found = await findEngine({ root, external: false });
      process.stdout.write(
        found
          ? `running at ${found.host}\n`
          : `not running${leftovers(root).length ? ` (left: ${leftovers(root).join('; ')})` : ''}\n`,
      );
    } else {
      process.stderr.write('usage: node lib/docker/engine.ts up|release|down|status [--root DIR] [--hold PID]\n');
      process.exit(64);
    }
  } catch (err) {
    process.stderr.write(`docker-engine: ${(err as Error).message}\n`);
    process.exit(err instanceof EngineUnavailableError ? 2 : 1);
  }
}
