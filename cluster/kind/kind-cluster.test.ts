import { execFile, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { licenseApi } from '../../apps/license-api/profile.ts';
import { renderRelease } from '../../lib/kube/deploy.ts';
import { ofKind } from '../../lib/kube/render.ts';
import { EMBEDDED_PLATFORM } from '../embedded/embedded-cluster.ts';
import {
  bridgeNameFor,
  cniConfigFor,
  KIND_PLATFORM,
  KIND_POD_SUBNET,
  KIND_SERVICE_SUBNET,
  kindConfigFor,
  officialNodeImage,
  podRoutes,
} from './kind-cluster.ts';

// The kind provider's pure parts and its docker wrapper, without an engine. The real thing (a kind
// cluster up, deploy, rollouts under load, down) is cluster/kind/kind.cluster.test.ts.
const WRAPPER = fileURLToPath(new URL('./docker-wrapper.sh', import.meta.url));

describe('kind config', () => {
  it("keeps kind-config.yaml's nodes, drops host port mappings, sets the image, the ranges and the cgroup v1 patch", () => {
    const cfg = parse(kindConfigFor({ name: 'e2e', image: 'verdict/kind-node:v1.37.2-abc' }));
    expect(cfg.name).toBe('e2e');
    expect(cfg.nodes.map((n: { role: string }) => n.role)).toEqual(['control-plane', 'worker', 'worker']);
    for (const n of cfg.nodes) {
      expect(n.image).toBe('verdict/kind-node:v1.37.2-abc');
      // 127.0.0.1:30080 is the embedded cluster's NodePort: never published by kind here.
      expect(n.extraPortMappings).toBeUndefined();
    }
    expect(cfg.networking).toMatchObject({
      disableDefaultCNI: true,
      podSubnet: KIND_POD_SUBNET,
      serviceSubnet: KIND_SERVICE_SUBNET,
      kubeProxyMode: 'iptables',
    });
    expect(cfg.kubeadmConfigPatches.join('\n')).toMatch(/kind: KubeletConfiguration\s+failCgroupV1: false/);
    expect(parse(kindConfigFor({ name: 'x', image: 'i', workers: 0 })).nodes).toHaveLength(1);
  });

  it("the pod and Service ranges never overlap the embedded cluster's", () => {
    for (const r of [KIND_POD_SUBNET, KIND_SERVICE_SUBNET]) expect(r.startsWith('10.244.') || r.startsWith('10.96.')).toBe(false);
  });

  it('kind-config.yaml pins the official node image by digest', () => {
    expect(officialNodeImage()).toMatch(/^kindest\/node:v[\d.]+@sha256:[0-9a-f]{64}$/);
  });

  it("per-node CNI: bridge + host-local over the node's podCIDR; routes to every other node's range via its address", () => {
    const c = JSON.parse(cniConfigFor('10.250.1.0/24'));
    expect(c.plugins[0]).toMatchObject({ type: 'bridge', isGateway: true, ipMasq: false, hairpinMode: true });
    expect(c.plugins[0].ipam.ranges).toEqual([[{ subnet: '10.250.1.0/24' }]]);
    const routes = podRoutes([
      { name: 'cp', ip: '172.30.0.2', podCIDR: '10.250.0.0/24' },
      { name: 'w1', ip: '172.30.0.3', podCIDR: '10.250.1.0/24' },
      { name: 'w2', ip: '172.30.0.4', podCIDR: '10.250.2.0/24' },
    ]);
    expect(routes.get('w1')).toEqual([
      { dst: '10.250.0.0/24', via: '172.30.0.2' },
      { dst: '10.250.2.0/24', via: '172.30.0.4' },
    ]);
    expect(bridgeNameFor('a-very-long-cluster-name-indeed').length).toBeLessThanOrEqual(15);
  });

  it('kind releases run the stand-in dependency images and never pull', async () => {
    const objects = await renderRelease(licenseApi.release('v2', KIND_PLATFORM));
    const images = Object.fromEntries(
      ofKind(objects, 'Deployment').map((o) => [
        o.metadata.name,
        o.spec!.template.spec!.containers.map((c) => `${c.image} ${c.imagePullPolicy}`),
      ]),
    );
    expect(images).toEqual({
      'license-api': ['license-api:v2 Never'],
      postgres: ['verdict/postgres:15-bookworm-local Never'],
      redis: ['verdict/redis:7-bookworm-local Never'],
    });
    expect(licenseApi.supportImages!(KIND_PLATFORM).map((i) => i.ref)).toEqual([
      'verdict/postgres:15-bookworm-local',
      'verdict/redis:7-bookworm-local',
    ]);
    expect(licenseApi.supportImages!(EMBEDDED_PLATFORM)).toEqual([]);
  });
});

describe('docker wrapper (what kind runs as `docker`)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verdict-kind-wrapper-'));
    // The "real" docker records its arguments, one a line.
    await writeFile(join(dir, 'real-docker'), `#!/usr/bin/env bash\nprintf '%s\\n' "$@" > "${dir}/args"\n`);
    await chmod(join(dir, 'real-docker'), 0o755);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const wrap = (args: string[], unprivileged = false) =>
    new Promise<{ code: number; args: string[]; stderr: string }>((resolve) => {
      execFile(
        'bash',
        [WRAPPER, ...args],
        {
          env: {
            ...process.env,
            VERDICT_REAL_DOCKER: join(dir, 'real-docker'),
            VERDICT_KIND_UNPRIVILEGED: unprivileged ? '1' : '0',
            VERDICT_KIND_DOCKER_LOG: join(dir, 'log'),
          },
        },
        (err, _out, stderr) =>
          void (async () => {
            const ran = await readFile(join(dir, 'args'), 'utf8').catch(() => null);
            await rm(join(dir, 'args'), { force: true });
            resolve({
              code: err ? Number((err as { code?: number }).code ?? 1) : 0,
              args: ran === null ? [] : ran.split('\n').slice(0, -1),
              stderr,
            });
          })(),
      );
    });

  it('refuses every command that talks to a registry, before the real CLI runs', async () => {
    for (const a of [
      ['pull', 'kindest/node:v1.34.0'],
      ['image', 'pull', 'x'],
      ['push', 'x'],
      ['login'],
      ['search', 'x'],
      ['buildx', 'build', '.'],
      ['-H', 'unix:///x', 'pull', 'x'],
    ]) {
      const r = await wrap(a);
      expect(r.code, a.join(' ')).toBe(125);
      expect(r.args, a.join(' ')).toEqual([]);
      expect(r.stderr).toMatch(/never does/);
    }
    expect(await readFile(join(dir, 'log'), 'utf8')).toMatch(/^REFUSED docker pull kindest/m);
  });

  it('run and create never pull; another --pull is refused; build gets --pull=false', async () => {
    expect((await wrap(['run', '--name', 'n', 'img'])).args).toEqual(['run', '--pull', 'never', '--name', 'n', 'img']);
    expect((await wrap(['container', 'create', 'img'])).args).toEqual(['container', 'create', '--pull', 'never', 'img']);
    expect((await wrap(['run', '--pull=never', 'img'])).args).toEqual(['run', '--pull=never', 'img']);
    expect((await wrap(['run', '--pull', 'always', 'img'])).code).toBe(125);
    expect((await wrap(['run', '--pull=missing', 'img'])).code).toBe(125);
    expect((await wrap(['build', '-t', 't', '.'])).args).toEqual(['build', '--pull=false', '-t', 't', '.']);
    expect((await wrap(['build', '--pull', '.'])).code).toBe(125);
  });

  it('--privileged stays as it is unless the probe found it refused; then capabilities instead, and a plain exec', async () => {
    const run = ['run', '--privileged', '--security-opt', 'seccomp=unconfined', 'node-image'];
    expect((await wrap(run)).args).toEqual([
      'run',
      '--pull',
      'never',
      '--privileged',
      '--security-opt',
      'seccomp=unconfined',
      'node-image',
    ]);
    expect((await wrap(run, true)).args).toEqual([
      'run',
      '--pull',
      'never',
      '--cap-add=ALL',
      '--cap-drop=SYS_RESOURCE',
      '--security-opt',
      'systempaths=unconfined',
      '--device-cgroup-rule=a *:* rwm',
      '--device',
      '/dev/kmsg',
      '--security-opt',
      'seccomp=unconfined',
      'node-image',
    ]);
    expect((await wrap(['exec', '--privileged', '-i', 'node', 'ctr', 'images', 'import', '-'], true)).args).toEqual([
      'exec',
      '-i',
      'node',
      'ctr',
      'images',
      'import',
      '-',
    ]);
    expect((await wrap(['exec', '--privileged', 'node', 'true'])).args).toEqual(['exec', '--privileged', 'node', 'true']);
    // Everything else passes through unchanged.
    expect((await wrap(['network', 'inspect', 'kind'])).args).toEqual(['network', 'inspect', 'kind']);
  });
});

describe('node image build (cluster/kind/node-image/build.sh) on a machine that lacks its tools', () => {
  const BUILD = fileURLToPath(new URL('./node-image/build.sh', import.meta.url));
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verdict-kind-build-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('names every missing tool at once, before the long build, and exits 2 (no silent 127)', async () => {
    // A PATH with only what the script needs to get that far: bash and dirname.
    const bin = join(dir, 'bin');
    await mkdir(bin);
    for (const tool of ['bash', 'dirname']) {
      const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      await symlink(found, join(bin, tool));
    }
    const r = spawnSync(join(bin, 'bash'), [BUILD], {
      env: { PATH: bin, DOCKER_HOST: 'unix:///nonexistent.sock', VERDICT_CACHE: join(dir, 'cache'), HOME: dir },
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).not.toMatch(/command not found/);
    for (const tool of ['go', 'gcc', 'docker', 'debootstrap', 'containerd and ctr', 'python3', "systemctl (Debian's systemd"])
      expect(r.stderr).toContain(`  - ${tool}`);
    expect(r.stderr).toContain('scripts/setup-deps.sh --docker installs the Debian packages');
  });
});
