/**
 * Every docker CLI call of the harness goes through `docker()`: it never reaches an image
 * registry. `run`/`create` get `--pull never`, `build` gets `--pull=false` and is refused before
 * it starts when a base image it names is not present locally (the classic builder would pull
 * it), and the commands that talk to a registry (`pull`, `push`, `login`, `search`, ...) are refused.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { runCommand, type RunResult } from '../proc/run.ts';
import { dockerEnv } from './engine.ts';

/** An engine to talk to: a `DockerEngine`, or anything with its `DOCKER_HOST` value. */
export type EngineRef = { host: string } | string;
const hostOf = (e: EngineRef) => (typeof e === 'string' ? e : e.host);

export class RegistryRefusedError extends Error {}

const REGISTRY_COMMANDS = new Set([
  'pull',
  'push',
  'login',
  'logout',
  'search',
  'trust',
  'manifest',
  'buildx',
  'compose',
  'plugin',
]);

/** Options of `docker run`/`create` that take a value (to find where the image name is). */
const RUN_VALUE_OPTS = new Set([
  '-e',
  '--env',
  '--env-file',
  '-l',
  '--label',
  '--name',
  '--network',
  '--net',
  '-u',
  '--user',
  '-v',
  '--volume',
  '--tmpfs',
  '-w',
  '--workdir',
  '--entrypoint',
  '--health-cmd',
  '--health-interval',
  '--health-retries',
  '--health-start-period',
  '--health-timeout',
  '--stop-signal',
  '--stop-timeout',
  '--restart',
  '-m',
  '--memory',
  '--cpus',
  '--mount',
  '-p',
  '--publish',
  '--cap-add',
  '--cap-drop',
  '--security-opt',
  '--ulimit',
  '--log-driver',
  '--log-opt',
  '-h',
  '--hostname',
  '--add-host',
  '--pid',
  '--ipc',
  '--uts',
  '--userns',
  '--platform',
  '--pull',
  '--cidfile',
  '--init-path',
  '--shm-size',
  '--group-add',
]);

/**
 * The arguments `docker()` really runs: `--pull never` added to run/create, `--pull=false` to build;
 * registry commands refused. Exported for tests.
 */
export function guardArgs(args: string[]): string[] {
  const c = parseCommand(args);
  if (!c) return args;
  const { global, cmd, verb, head, rest } = c;
  if (REGISTRY_COMMANDS.has(cmd) || (cmd === 'image' && (verb === 'pull' || verb === 'push'))) {
    throw new RegistryRefusedError(
      `\`docker ${head.join(' ')}\` talks to an image registry, which the harness never does (build images locally)`,
    );
  }
  if (cmd === 'run' || cmd === 'create' || (cmd === 'container' && (verb === 'run' || verb === 'create'))) {
    const pulls = rest.flatMap((a, j) => (a === '--pull' ? [rest[j + 1]] : a.startsWith('--pull=') ? [a.slice(7)] : []));
    if (pulls.some((p) => p !== 'never'))
      throw new RegistryRefusedError(
        `\`docker ${verb}\` with --pull ${pulls.join(',')}: the harness runs only local images (--pull never)`,
      );
    if (pulls.length) return args;
    return [...global, ...head, '--pull', 'never', ...rest];
  }
  if (cmd === 'build' || (cmd === 'image' && verb === 'build') || (cmd === 'builder' && verb === 'build')) {
    const pulls = rest.filter((a) => a === '--pull' || (a.startsWith('--pull=') && a !== '--pull=false'));
    if (pulls.length)
      throw new RegistryRefusedError(
        '`docker build --pull` would ask a registry for newer base images: the harness builds only from local images',
      );
    if (rest.includes('--pull=false')) return args;
    return [...global, ...head, '--pull=false', ...rest];
  }
  return args;
}

/** Splits `docker` arguments into global options, the command (`image build` → cmd image, verb build) and the rest. */
function parseCommand(args: string[]) {
  let i = 0;
  while (i < args.length && args[i].startsWith('-'))
    i += args[i] === '--context' || args[i] === '-H' || args[i] === '--host' ? 2 : 1;
  if (i >= args.length) return null;
  const global = args.slice(0, i);
  const cmd = args[i];
  let sub = '';
  let rest = args.slice(i + 1);
  if ((cmd === 'container' || cmd === 'image' || cmd === 'builder') && rest.length) {
    sub = rest[0];
    rest = rest.slice(1);
  }
  return { global, cmd, verb: sub || cmd, head: sub ? [cmd, sub] : [cmd], rest };
}

/** The image a `docker run`/`create` argument list names (after the options), or null. */
export function runImageOf(args: string[]): string | null {
  const i = args.findIndex((a) => a === 'run' || a === 'create');
  if (i < 0) return null;
  for (let j = i + 1; j < args.length; j++) {
    const a = args[j];
    if (a === '--') return args[j + 1] ?? null;
    if (!a.startsWith('-')) return a;
    if (!a.includes('=') && RUN_VALUE_OPTS.has(a)) j++;
  }
  return null;
}

/**
 * The base images a Dockerfile needs from the image store: every `FROM` with its `ARG`s resolved
 * (build args first, then the ARG defaults before the first FROM), less `scratch` and earlier stages.
 */
export function dockerfileBaseImages(text: string, buildArgs: Record<string, string> = {}): string[] {
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const globals: Record<string, string> = {};
  const stages = new Set<string>();
  const bases: string[] = [];
  let seenFrom = false;
  for (const line of lines) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1].toUpperCase();
    if (op === 'ARG' && !seenFrom) {
      const [name, ...def] = m[2].trim().split('=');
      globals[name] = name in buildArgs ? buildArgs[name] : def.join('=').replace(/^"(.*)"$/, '$1');
    }
    if (op === 'FROM') {
      seenFrom = true;
      const parts = m[2]
        .trim()
        .split(/\s+/)
        .filter((p) => !p.startsWith('--'));
      const image = parts[0].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => globals[a ?? b] ?? buildArgs[a ?? b] ?? '');
      const as = parts.findIndex((p) => p.toLowerCase() === 'as');
      if (as >= 0 && parts[as + 1]) stages.add(parts[as + 1].toLowerCase());
      if (image !== 'scratch' && !stages.has(image.toLowerCase()) && !bases.includes(image)) bases.push(image);
    }
  }
  return bases;
}

/** Whether `ref` is in the engine's image store (no registry is asked). */
export async function imagePresent(engine: EngineRef, ref: string): Promise<boolean> {
  try {
    await runCommand('docker', ['image', 'inspect', '--format', '{{.Id}}', ref], {
      env: dockerEnv(hostOf(engine)),
      timeoutMs: 30_000,
    });
    return true;
  } catch {
    return false;
  }
}

/** The build's base images that are missing locally (what the classic builder would pull). */
async function missingBases(engine: EngineRef, rest: string[]): Promise<string[]> {
  const buildArgs: Record<string, string> = {};
  let file: string | undefined;
  const positional: string[] = [];
  for (let j = 0; j < rest.length; j++) {
    const a = rest[j];
    if (a === '--build-arg') {
      const [k, ...v] = rest[++j].split('=');
      buildArgs[k] = v.join('=');
      continue;
    }
    if (a.startsWith('--build-arg=')) {
      const [k, ...v] = a.slice(12).split('=');
      buildArgs[k] = v.join('=');
      continue;
    }
    if (a === '-f' || a === '--file') {
      file = rest[++j];
      continue;
    }
    if (a.startsWith('--file=')) {
      file = a.slice(7);
      continue;
    }
    if (a.startsWith('-')) {
      if (
        !a.includes('=') &&
        [
          '-t',
          '--tag',
          '--network',
          '--label',
          '--target',
          '-m',
          '--memory',
          '--iidfile',
          '--cpuset-cpus',
          '--shm-size',
          '--platform',
          '--add-host',
        ].includes(a)
      )
        j++;
      continue;
    }
    positional.push(a);
  }
  const context = positional.at(-1);
  if (!context || context === '-') return [];
  const dockerfile = file ? (isAbsolute(file) ? file : join(process.cwd(), file)) : join(context, 'Dockerfile');
  const bases = dockerfileBaseImages(readFileSync(dockerfile, 'utf8'), buildArgs);
  const missing: string[] = [];
  for (const b of bases) if (!(await imagePresent(engine, b))) missing.push(b);
  return missing;
}

export interface DockerCallOptions {
  timeoutMs?: number;
  cwd?: string;
  /** Aborting stops the docker CLI (and a build with it: the engine cancels a build whose client left). */
  signal?: AbortSignal;
}

/**
 * Runs `docker <args>` against `engine` with the registry guard (see the module comment) and the
 * classic builder. A failure names the command, its exit code and the tail of its output.
 */
export async function docker(engine: EngineRef, args: string[], opts: DockerCallOptions = {}): Promise<RunResult> {
  const guarded = guardArgs(args);
  const c = parseCommand(guarded);
  if (c?.verb === 'build') {
    const missing = await missingBases(engine, c.rest);
    if (missing.length) {
      throw new RegistryRefusedError(
        `base image${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not present in the engine, and the harness never pulls: ` +
          'build the local base first (scripts/docker-base.sh) or pass a present image as a build argument',
      );
    }
  }
  return await runCommand('docker', guarded, {
    env: dockerEnv(hostOf(engine)),
    timeoutMs: opts.timeoutMs ?? 120_000,
    cwd: opts.cwd,
    signal: opts.signal,
  });
}
