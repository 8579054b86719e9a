import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, dockerfileBaseImages, guardArgs, RegistryRefusedError, runImageOf } from './cli.ts';
import {
  cannotStartReason,
  leftovers,
  stopEngine,
  unavailableMessage,
  useEngine,
  withDirLock,
  type DockerEngine,
} from './engine.ts';
import { diffHostNet, snapshotHostNet, type HostNetSnapshot } from './host-safety.ts';

describe('the docker CLI gate (no engine needed)', () => {
  it('adds --pull never to run and create, --pull=false to build', () => {
    expect(guardArgs(['run', '--rm', 'x:1'])).toEqual(['run', '--pull', 'never', '--rm', 'x:1']);
    expect(guardArgs(['container', 'create', 'x:1'])).toEqual(['container', 'create', '--pull', 'never', 'x:1']);
    expect(guardArgs(['run', '--pull=never', 'x:1'])).toEqual(['run', '--pull=never', 'x:1']);
    expect(guardArgs(['build', '-t', 'a:b', '.'])).toEqual(['build', '--pull=false', '-t', 'a:b', '.']);
    expect(guardArgs(['image', 'build', '.'])).toEqual(['image', 'build', '--pull=false', '.']);
    expect(guardArgs(['ps', '-a'])).toEqual(['ps', '-a']);
  });

  it('refuses every command that asks a registry', () => {
    for (const args of [
      ['pull', 'node:24'],
      ['image', 'pull', 'node:24'],
      ['push', 'a:b'],
      ['login'],
      ['search', 'node'],
      ['run', '--pull', 'always', 'x'],
      ['run', '--pull=missing', 'x'],
      ['build', '--pull', '.'],
      ['buildx', 'build', '.'],
      ['plugin', 'install', 'x'],
    ]) {
      expect(() => guardArgs(args), args.join(' ')).toThrow(RegistryRefusedError);
    }
  });

  it('finds the image of a run and the base images of a Dockerfile (build arguments, ARG defaults, stages)', () => {
    expect(runImageOf(['run', '--pull', 'never', '-e', 'A=1', '--read-only', '--name', 'n', 'img:1', 'node', 'x'])).toBe('img:1');
    const df =
      'ARG NODE_IMAGE=node:24@sha256:' +
      'a'.repeat(64) +
      '\nFROM ${NODE_IMAGE} AS build\nRUN x\nFROM build AS test\nFROM scratch\nFROM $NODE_IMAGE AS runtime\n';
    expect(dockerfileBaseImages(df)).toEqual(['node:24@sha256:' + 'a'.repeat(64)]);
    expect(dockerfileBaseImages(df, { NODE_IMAGE: 'verdict/node:local' })).toEqual(['verdict/node:local']);
  });
});

/**
 * A dockerd of our own in a throw-away folder (with --debug, so its log lists every API call): it
 * must leave forwarding, the FORWARD policy, iptables and interfaces as they were, never reach a
 * registry, and leave no process, mount or folder when it stops.
 */
describe('the lock between processes (one docker build per engine at a time)', () => {
  it('waits for a live holder; a Ctrl-C ends the wait and leaves the holder its lock; a dead holder is taken over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'verdict-dirlock-'));
    const lock = join(dir, 'build.lock');
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(holder.pid));
      const ac = new AbortController();
      let ran = false;
      const waiting = withDirLock(lock, async () => void (ran = true), 60_000, ac.signal);
      setTimeout(() => ac.abort(new Error('interrupted (Ctrl-C)')), 200);
      await expect(waiting).rejects.toThrow('interrupted (Ctrl-C)');
      expect(ran).toBe(false);
      expect(readFileSync(join(lock, 'pid'), 'utf8')).toBe(String(holder.pid));
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
      await expect(withDirLock(lock, async () => 'mine')).resolves.toBe('mine');
      expect(existsSync(lock)).toBe(false);
    } finally {
      holder.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('our own dockerd', () => {
  let root: string;
  let before: HostNetSnapshot;
  let engine: DockerEngine;
  const log = () => readFileSync(join(root, 'dockerd.log'), 'utf8');

  beforeAll(async () => {
    before = snapshotHostNet();
    root = mkdtempSync(join(tmpdir(), 'verdict-dk-'));
    engine = await useEngine({ root, external: false, debug: true, removeDataOnStop: true });
  }, 120_000);
  afterAll(async () => {
    await engine?.release();
    await stopEngine(root, { removeData: true });
    expect(existsSync(root)).toBe(false);
    expect(diffHostNet(before, snapshotHostNet())).toEqual([]);
  }, 120_000);

  it('starts with no bridge, no iptables, no IP forwarding: the host network setup is unchanged', async () => {
    expect(engine.startedHere).toBe(true);
    expect(engine.host).toBe(`unix://${root}/docker.sock`);
    expect(diffHostNet(before, snapshotHostNet())).toEqual([]);
    const networks = (await docker(engine, ['network', 'ls', '--format', '{{.Name}}'])).stdout.trim().split('\n').sort();
    expect(networks).toEqual(['host', 'none']);
    const info = JSON.parse((await docker(engine, ['info', '--format', '{{json .}}'])).stdout);
    expect(info.DockerRootDir).toBe(join(root, 'data'));
    expect(info.IPv4Forwarding).toBe(before.ipForward === '1');
  });

  it('a reference to a missing image fails without any registry lookup (run, build)', async () => {
    const run = await docker(engine, ['run', '--rm', 'verdict/missing:nope', 'true']).then(
      () => 'ran',
      (e) => String(e),
    );
    expect(run).toMatch(/No such image|Unable to find image/);
    const ctx = mkdtempSync(join(tmpdir(), 'verdict-ctx-'));
    try {
      writeFileSync(join(ctx, 'Dockerfile'), 'ARG BASE=verdict/missing:base\nFROM ${BASE}\nRUN true\n');
      await expect(docker(engine, ['build', '-t', 'verdict/never:1', ctx])).rejects.toThrow(
        /verdict\/missing:base not present .* never pulls/,
      );
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
    // The engine saw the create that failed, and no pull (images/create) and no build at all.
    expect(log()).toMatch(/Calling POST \/v[\d.]+\/containers\/create/);
    expect(log()).not.toMatch(/Calling \w+ \/v[\d.]+\/(images\/create|build)|registry-1|index\.docker\.io/);
  });

  it('runs a container of a locally imported image on the host network', async () => {
    // The smallest image there is: a static binary (tini, from Debian's docker.io dependencies).
    const rootfs = mkdtempSync(join(tmpdir(), 'verdict-tiny-'));
    try {
      copyFileSync('/usr/bin/tini-static', join(rootfs, 'tini'));
      chmodSync(join(rootfs, 'tini'), 0o755);
      spawnSync('tar', ['-C', rootfs, '-cf', join(rootfs, '..', `${rootfs.split('/').at(-1)}.tar`), '.']);
      await docker(engine, ['import', `${rootfs}.tar`, 'verdict/tiny:test']);
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
      rmSync(`${rootfs}.tar`, { force: true });
    }
    const r = await docker(engine, ['run', '--rm', '--network', 'host', 'verdict/tiny:test', '/tini', '--version']);
    expect(r.stdout).toMatch(/tini version/);
    expect(diffHostNet(before, snapshotHostNet())).toEqual([]);
  });

  it('is shared through leases: the last holder stops it, and then nothing is left (process, mount, folder)', async () => {
    const second = await useEngine({ root, external: false });
    expect(second.startedHere).toBe(false);
    await engine.release();
    await engine.release(); // idempotent
    expect((await docker(second, ['version', '--format', '{{.Server.Version}}'])).stdout.trim()).toMatch(/^\d+\./);
    const pid = Number(readFileSync(join(root, 'docker.pid'), 'utf8'));
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('dockerd');
    await second.release();
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(leftovers(root)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(root);
    expect(existsSync(join(root, 'exec'))).toBe(false);
    expect(existsSync(join(root, 'data'))).toBe(false); // removeDataOnStop
    expect(await stopEngine(root)).toEqual({ wasRunning: false });
  }, 120_000);

  it('Ctrl-C (SIGINT to the process group) stops it with the harness; stopEngine clears what it left', async () => {
    const script = join(root, 'hold.ts');
    mkdirSync(root, { recursive: true });
    const engineTs = fileURLToPath(new URL('./engine.ts', import.meta.url));
    writeFileSync(
      script,
      `import { useEngine } from ${JSON.stringify(engineTs)};\n` +
        `const e = await useEngine({ root: ${JSON.stringify(root)}, external: false });\nconsole.log('up', e.host);\nsetInterval(() => {}, 1000);\n`,
    );
    const child = spawn(process.execPath, [script], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const exited = new Promise((r) => child.once('exit', r));
    const deadline = Date.now() + 60_000;
    while (!out.includes('up ') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain('up unix://');
    const pid = Number(readFileSync(join(root, 'docker.pid'), 'utf8'));
    process.kill(-child.pid!, 'SIGINT'); // the whole group, as a terminal's Ctrl-C
    await exited;
    const until = Date.now() + 40_000;
    while (existsSync(`/proc/${pid}`) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    await stopEngine(root);
    expect(leftovers(root)).toEqual([]);
    expect(diffHostNet(before, snapshotHostNet())).toEqual([]);
  }, 120_000);

  it('says clearly why it cannot start an engine (not root, no dockerd)', () => {
    expect(cannotStartReason({ uid: 1000 })).toMatch(/starting dockerd needs root .* set DOCKER_HOST/);
    expect(cannotStartReason({ uid: 0, searchPath: [root] })).toMatch(
      /dockerd is not installed \(run `scripts\/setup-deps.sh --docker`/,
    );
    expect(cannotStartReason({ uid: 0 })).toBeNull();
    expect(unavailableMessage('x')).toMatch(
      /^no Docker engine answers \(DOCKER_HOST .*, \/var\/run\/docker.sock does not answer\) and verdict cannot start one: x$/,
    );
  });
});
