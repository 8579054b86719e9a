/**
 * Images built locally: the registry-free base (scripts/docker-base.sh), builds with the classic
 * builder (through the `docker()` gate: never a pull), sizes, and clearing what a build leaves
 * that no cache needs.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, imagePresent, type EngineRef } from './cli.ts';
import { dockerEnv, withDirLock } from './engine.ts';

export { imagePresent } from './cli.ts';

/** The local Node 24 base (Debian bookworm minbase + Node + npm + the host's CA), tag of scripts/docker-base.sh. */
export const LOCAL_NODE_IMAGE = process.env.VERDICT_BASE_IMAGE ?? 'verdict/node:24-bookworm-local';
const BASE_SCRIPT = fileURLToPath(new URL('../../scripts/docker-base.sh', import.meta.url));
const hostOf = (e: EngineRef) => (typeof e === 'string' ? e : e.host);

/**
 * Makes sure the engine has the local base image: scripts/docker-base.sh, which skips when the tag
 * with the same inputs is present, re-imports from ~/.cache/verdict when only the engine is new,
 * and debootstraps otherwise (root; about 30-40 s). Returns the reference and the time it took.
 */
export async function ensureBaseImage(
  engine: EngineRef,
  opts: { onProgress?: (m: string) => void; timeoutMs?: number } = {},
): Promise<{ ref: string; ms: number }> {
  const started = Date.now();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [BASE_SCRIPT], { env: dockerEnv(hostOf(engine)), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      for (const line of String(d).split('\n')) if (line.trim()) opts.onProgress?.(line.trim());
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs ?? 600_000);
    child.once('error', reject);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout.trim().split('\n').at(-1) ?? LOCAL_NODE_IMAGE);
      else
        reject(new Error(`scripts/docker-base.sh failed (${code ?? sig}):\n${stderr.trim().split('\n').slice(-12).join('\n')}`));
    });
  });
  return { ref: out, ms: Date.now() - started };
}

export interface BuildOptions {
  context: string;
  /** Path of the Dockerfile (default `<context>/Dockerfile`). */
  dockerfile?: string;
  tag: string;
  buildArgs?: Record<string, string>;
  /** The network of RUN steps: `host` (the default; our engine has no bridge) or `none`. */
  network?: 'host' | 'none';
  labels?: Record<string, string>;
  timeoutMs?: number;
  /** Aborting stops the build (a Ctrl-C must not wait for it). */
  signal?: AbortSignal;
}

export interface BuiltImage {
  tag: string;
  id: string;
  ms: number;
  sizeBytes: number;
  output: string;
}

/**
 * `docker build` with the classic builder, never pulling (a base image that is not present fails
 * before the build starts). Its intermediate images stay, as the layer cache of the next build;
 * those of the previous build of the same tag that this one no longer uses are removed (the ids
 * each build printed are kept in ~/.cache/verdict/docker-builds/). Builds on one engine take turns
 * (a lock per engine between processes).
 */
export async function buildImage(engine: EngineRef, o: BuildOptions): Promise<BuiltImage> {
  const lock = join(
    tmpdir(),
    `verdict-docker-build-${createHash('sha256').update(hostOf(engine)).digest('hex').slice(0, 12)}.lock`,
  );
  return await withDirLock(lock, () => buildLocked(engine, o), (o.timeoutMs ?? 900_000) * 2, o.signal);
}

async function buildLocked(engine: EngineRef, o: BuildOptions): Promise<BuiltImage> {
  const args = ['build', '-t', o.tag, '--network', o.network ?? 'host'];
  for (const [k, v] of Object.entries(o.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
  for (const [k, v] of Object.entries(o.labels ?? {})) args.push('--label', `${k}=${v}`);
  if (o.dockerfile) args.push('-f', o.dockerfile);
  args.push(o.context);
  const started = Date.now();
  const r = await docker(engine, args, { timeoutMs: o.timeoutMs ?? 900_000, signal: o.signal });
  const ms = Date.now() - started;
  // Every image id the build printed (` ---> <id>`) is this build's cache: it stays.
  const used = [...new Set([...r.stdout.matchAll(/---> ([0-9a-f]{12})\b/g)].map((m) => m[1]))];
  await clearPreviousBuild(engine, o.tag, used);
  const id = (await docker(engine, ['image', 'inspect', '--format', '{{.Id}}', o.tag])).stdout.trim();
  return { tag: o.tag, id, ms, sizeBytes: await imageSize(engine, o.tag), output: r.stdout };
}

/** The image's size in bytes as the engine reports it (`docker image inspect .Size`: every layer). */
export async function imageSize(engine: EngineRef, ref: string): Promise<number> {
  return Number((await docker(engine, ['image', 'inspect', '--format', '{{.Size}}', ref])).stdout.trim());
}

const BUILDS_DIR = join(process.env.VERDICT_CACHE ?? join(homedir(), '.cache', 'verdict'), 'docker-builds');

/**
 * Removes the untagged images of the previous build of `tag` on this engine that `used` (this
 * build's images) does not contain: the stages a changed source replaced. An image another image
 * still builds on, or that has a tag, stays (`docker image rm` without --force refuses it).
 * Returns the ids removed.
 */
export async function clearPreviousBuild(engine: EngineRef, tag: string, used: string[]): Promise<string[]> {
  const file = join(
    BUILDS_DIR,
    `${createHash('sha256')
      .update(`${hostOf(engine)}\n${tag}`)
      .digest('hex')
      .slice(0, 16)}.json`,
  );
  let previous: string[] = [];
  try {
    previous = JSON.parse(readFileSync(file, 'utf8')).images ?? [];
  } catch {
    /* first build of this tag here */
  }
  const removed: string[] = [];
  for (const id of previous.filter((p) => !used.includes(p))) {
    const tags = (
      await docker(engine, ['image', 'inspect', '--format', '{{len .RepoTags}}', id]).catch(() => ({ stdout: 'gone' }))
    ).stdout.trim();
    if (tags !== '0') continue;
    if (
      await docker(engine, ['image', 'rm', id]).then(
        () => true,
        () => false,
      )
    )
      removed.push(id);
  }
  mkdirSync(BUILDS_DIR, { recursive: true });
  writeFileSync(file, JSON.stringify({ engine: hostOf(engine), tag, images: used }) + '\n');
  return removed;
}

export async function removeImage(engine: EngineRef, ref: string): Promise<void> {
  if (await imagePresent(engine, ref)) await docker(engine, ['image', 'rm', '--force', ref]);
}
