/**
 * kind (Kubernetes in Docker), for real on machines without any image registry:
 *
 * - kind v0.33.0 from `go install` (scripts/kind.sh, cached in ~/.cache/verdict);
 * - the Docker engine of lib/docker (`useEngine`: one that answers, else our own dockerd with no
 *   iptables, no forwarding, no docker0), held by a lease while the cluster lives;
 * - the node image: the official `kindest/node` of kind-config.yaml when the engine has it (it is
 *   never pulled), else the one built here from source (cluster/kind/node-image/build.sh);
 * - kind's docker calls go through cluster/kind/docker-wrapper.sh: never a registry, and, only
 *   when a probe shows that `docker run --privileged` is refused, capabilities instead of it;
 * - a docker network of its own per cluster (a subnet no host route and no other network uses, a
 *   bridge named vkind-<hash>, no masquerade), removed with the cluster;
 * - pod networking without kindnetd (not on the Go module proxy, no registry for its image): the
 *   controller-manager gives every Node a `spec.podCIDR` (kind's --allocate-node-cidrs); each node
 *   gets the bridge CNI plugin with host-local IPAM over its own podCIDR, and a route to every
 *   other node's podCIDR via that node's address on the cluster's docker network;
 * - the harness reaches the apiserver and NodePort Services at the control-plane node's address on
 *   that network (a network the project made): nothing is published on the host's loopback, where
 *   127.0.0.1:30080 belongs to the embedded cluster.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { apiAnswers, loadKubeConfig, k8s } from '../../lib/kube/client.ts';
import { runCommand } from '../../lib/proc/run.ts';
import { docker, imagePresent } from '../../lib/docker/cli.ts';
import { kindControlPlane } from './control-plane.ts';
import { dockerEnv, useEngine, type DockerEngine } from '../../lib/docker/engine.ts';
import { buildImage, ensureBaseImage } from '../../lib/docker/images.ts';
import { dockerfileBaseImages } from '../../lib/docker/cli.ts';
import type { ImageSource, OpenOptions, Platform, Target, TargetStrategy } from '../target.ts';

/** kind: the app's manifests bring their dependencies, from images the harness loads; throw-away secrets. */
export const KIND_PLATFORM: Platform = { services: 'in-cluster', secrets: 'throwaway' };

const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const KIND_CONFIG = join(REPO, 'kind-config.yaml');
const WRAPPER = fileURLToPath(new URL('./docker-wrapper.sh', import.meta.url));
const NODE_IMAGE_BUILD = fileURLToPath(new URL('./node-image/build.sh', import.meta.url));
const KIND_SCRIPT = join(REPO, 'scripts', 'kind.sh');
/** The node port the license API's Service uses; reached at the control-plane node's address. */
export const KIND_MAPPED_NODE_PORT = 30080;
/** Pod and Service ranges: apart from the embedded cluster's pods (10.244.0.0/16) and Services (10.96.0.0/16). */
export const KIND_POD_SUBNET = '10.250.0.0/16';
export const KIND_SERVICE_SUBNET = '10.251.0.0/16';
/** The docker networks of kind clusters are /24s taken from here (the first one no route or network uses). */
const NETWORK_POOL = { prefix: '172.30', from: 0, to: 255 };
const CLUSTER_LABEL = 'io.x-k8s.kind.cluster';

export interface KindCluster extends Target {
  readonly kind: 'kind';
  readonly kubeconfigPath: string;
  /** The docker network the nodes are on, its subnet and bridge interface. */
  /** Its docker network (`network` is the partition capability's name). */
  readonly dockerNetwork: KindNetwork;
  /** Node container name → its address on the network. */
  /** Its node containers (`nodes` is the add/remove capability's name). */
  readonly kindNodes: Array<{ name: string; role: string; ip: string; podCIDR: string }>;
  /** Which node image runs, and why. */
  readonly nodeImage: { ref: string; source: 'official' | 'local' | 'given' };
  /** True when `--privileged` was refused and the wrapper gave capabilities instead. */
  readonly unprivileged: boolean;
  /** `kind export logs`: node and pod logs for a failed run's evidence. */
  exportLogs(dir: string): Promise<void>;
  /** Runs a command in a node container (`docker exec`). */
  execInNode(node: string, cmd: string[]): Promise<string>;
  /** How long `up` took, per step (ms). */
  readonly timings: Record<string, number>;
}

export interface KindNetwork {
  name: string;
  subnet: string;
  gateway: string;
  bridge: string;
}

export interface KindOpenOptions extends OpenOptions {
  /** Reuse and keep a cluster of that name that already exists (default true); false deletes it at close. */
  keepExisting?: boolean;
  /**
   * Who holds the Docker engine's lease while the cluster lives (default this process, released at
   * close). `verdict cluster up --provider kind` passes its caller's pid: the cluster outlives it.
   */
  engineHolderPid?: number;
  /** A node image to use as it is (must be present in the engine). */
  nodeImage?: string;
  /** Worker nodes (default: as kind-config.yaml says, 2). */
  workers?: number;
}

/** The official node image kind-config.yaml pins (digest included). */
export function officialNodeImage(configText = readFileSync(KIND_CONFIG, 'utf8')): string {
  const cfg = parseYaml(configText) as { nodes?: Array<{ image?: string }> };
  const img = cfg.nodes?.find((n) => n.image)?.image;
  if (!img) throw new Error('kind-config.yaml names no node image');
  return img;
}

/** A node of a kind config: its role is read here, the rest passes through. */
type KindNode = { role?: string; [field: string]: unknown };
/** The parts of a kind config (kind.x-k8s.io/v1alpha4) kindConfigFor reads; the rest is not kept. */
interface KindConfig {
  nodes?: KindNode[];
  networking?: Record<string, unknown>;
  kubeadmConfigPatches?: unknown[];
}

/**
 * The kind config the harness runs: kind-config.yaml's nodes with `image` set, no host port
 * mappings (the Service is reached at the node's address; 127.0.0.1:30080 is the embedded
 * cluster's), kindnetd off (the harness sets up the pod network), the pod and Service ranges above,
 * and what the kubelet needs on a cgroup v1 host.
 */
export function kindConfigFor(o: { name: string; image: string; workers?: number; configText?: string }): string {
  const cfg = parseYaml(o.configText ?? readFileSync(KIND_CONFIG, 'utf8')) as KindConfig;
  let nodes: KindNode[] = (cfg.nodes ?? [{ role: 'control-plane' }]).map((n) => {
    const { extraPortMappings: _dropped, ...rest } = n;
    return { ...rest, image: o.image };
  });
  if (o.workers !== undefined) {
    nodes = [
      ...nodes.filter((n) => n.role === 'control-plane'),
      ...Array.from({ length: o.workers }, () => ({ role: 'worker', image: o.image })),
    ];
  }
  const out = {
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    name: o.name,
    nodes,
    networking: {
      ...cfg.networking,
      disableDefaultCNI: true,
      podSubnet: KIND_POD_SUBNET,
      serviceSubnet: KIND_SERVICE_SUBNET,
      kubeProxyMode: 'iptables',
    },
    kubeadmConfigPatches: [
      ...(cfg.kubeadmConfigPatches ?? []),
      // Kubernetes 1.35+ refuses cgroup v1 unless told; these VMs are cgroup v1.
      'kind: KubeletConfiguration\nfailCgroupV1: false\n',
    ],
  };
  return stringifyYaml(out);
}

/** The CNI config of one node: the bridge plugin over the node's podCIDR (host-local IPAM), and portmap. */
export function cniConfigFor(podCIDR: string): string {
  return (
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: 'verdict-kind',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni0',
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: podCIDR }]],
              routes: [{ dst: '0.0.0.0/0' }],
              dataDir: '/run/cni-ipam',
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    ) + '\n'
  );
}

/** For each node, the routes to the other nodes' pod ranges: `ip route replace <podCIDR> via <nodeIP>`. */
export function podRoutes(
  nodes: Array<{ name: string; ip: string; podCIDR: string }>,
): Map<string, Array<{ dst: string; via: string }>> {
  const out = new Map<string, Array<{ dst: string; via: string }>>();
  for (const n of nodes)
    out.set(
      n.name,
      nodes.filter((m) => m.name !== n.name).map((m) => ({ dst: m.podCIDR, via: m.ip })),
    );
  return out;
}

/** The bridge interface name of a cluster's network (15 characters at most). */
export const bridgeNameFor = (cluster: string) => `vkind-${createHash('sha256').update(cluster).digest('hex').slice(0, 8)}`;
export const networkNameFor = (cluster: string) => `verdict-kind-${cluster}`;

const ipToInt = (ip: string) => ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const cidrRange = (cidr: string): [number, number] => {
  const [ip, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits ?? 32));
  const start = Math.floor(ipToInt(ip) / size) * size;
  return [start, start + size - 1];
};
const overlaps = (a: [number, number], b: [number, number]) => a[0] <= b[1] && b[0] <= a[1];

/** The IPv4 prefixes in use here: every route of the host and every docker network's subnet. */
async function usedRanges(engine: DockerEngine): Promise<Array<[number, number]>> {
  const used: Array<[number, number]> = [];
  const routes = (await runCommand('ip', ['-4', 'route', 'show', 'table', 'all'])).stdout;
  for (const m of routes.matchAll(/^(?:\w+\s+)?(\d+\.\d+\.\d+\.\d+(?:\/\d+)?)\s/gm))
    used.push(cidrRange(m[1].includes('/') ? m[1] : `${m[1]}/32`));
  const ids = (await docker(engine, ['network', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
  for (const id of ids) {
    const subnets = (
      await docker(engine, ['network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', id]).catch(() => ({
        stdout: '',
      }))
    ).stdout;
    for (const s of subnets.split(/\s+/).filter((x) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(x))) used.push(cidrRange(s));
  }
  for (const s of [KIND_POD_SUBNET, KIND_SERVICE_SUBNET, '10.244.0.0/16', '10.96.0.0/16']) used.push(cidrRange(s));
  return used;
}

/** The cluster's docker network: reused when it exists, else made on a free /24 of 172.30.0.0/16. */
async function ensureNetwork(engine: DockerEngine, cluster: string, say: (m: string) => void): Promise<KindNetwork> {
  const name = networkNameFor(cluster);
  const bridge = bridgeNameFor(cluster);
  const inspect = async (): Promise<KindNetwork | null> => {
    try {
      const j = JSON.parse((await docker(engine, ['network', 'inspect', name])).stdout)[0];
      const cfg = (j.IPAM?.Config ?? []).find((c: { Subnet?: string }) => c.Subnet && !c.Subnet.includes(':'));
      return { name, subnet: cfg.Subnet, gateway: cfg.Gateway, bridge: j.Options?.['com.docker.network.bridge.name'] ?? bridge };
    } catch {
      return null;
    }
  };
  const found = await inspect();
  if (found) return found;
  for (let k = NETWORK_POOL.from; k <= NETWORK_POOL.to; k++) {
    const subnet = `${NETWORK_POOL.prefix}.${k}.0/24`;
    if ((await usedRanges(engine)).some((r) => overlaps(r, cidrRange(subnet)))) continue;
    try {
      await docker(engine, [
        'network',
        'create',
        '--driver',
        'bridge',
        '--subnet',
        subnet,
        '--gateway',
        `${NETWORK_POOL.prefix}.${k}.1`,
        '-o',
        `com.docker.network.bridge.name=${bridge}`,
        '-o',
        'com.docker.network.bridge.enable_ip_masquerade=false',
        '--label',
        'verdict.owner=verdict',
        '--label',
        `${CLUSTER_LABEL}=${cluster}`,
        name,
      ]);
      say(`docker network ${name}: ${subnet}, bridge ${bridge}, no masquerade`);
      return (await inspect())!;
    } catch (err) {
      if (/overlaps|already exists/i.test(String(err))) continue; // someone took it meanwhile
      throw err;
    }
  }
  throw new Error(`no free /24 in ${NETWORK_POOL.prefix}.0.0/16 for the kind network`);
}

/** kind's path (built with go install on first use). */
export async function kindBinary(): Promise<string> {
  return (await runCommand('bash', [KIND_SCRIPT], { timeoutMs: 600_000 })).stdout.trim().split('\n').at(-1)!;
}

/**
 * `docker build` of an image the app profile gives for kind. A base the Dockerfile names that the
 * engine lacks (an official image: never pulled) is replaced by the local registry-free base, as
 * `verdict image build` does.
 */
async function buildForKind(engine: DockerEngine, src: ImageSource, p: (m: string) => void, signal?: AbortSignal): Promise<void> {
  if (!src.docker) throw new Error(`kind loads Docker images, and the app profile gives no Docker build for ${src.ref}`);
  const buildArgs = { ...src.docker.buildArgs };
  const dockerfile = src.docker.dockerfile ?? join(src.docker.context, 'Dockerfile');
  const text = readFileSync(dockerfile, 'utf8');
  const missing: string[] = [];
  for (const b of dockerfileBaseImages(text, buildArgs)) if (!(await imagePresent(engine, b))) missing.push(b);
  if (missing.length) {
    const base = await ensureBaseImage(engine, { onProgress: p });
    for (const arg of ['NODE_IMAGE', 'BASE']) if (new RegExp(`^ARG ${arg}\\b`, 'm').test(text)) buildArgs[arg] = base.ref;
    p(`${missing.join(', ')} not present (never pulled): building ${src.ref} on ${base.ref}`);
  }
  p(`docker build -t ${src.ref}`);
  await buildImage(engine, { context: src.docker.context, dockerfile: src.docker.dockerfile, tag: src.ref, buildArgs, signal });
}

/** The locally built node image (cluster/kind/node-image/build.sh): cached, a warm machine only re-imports it. */
export async function ensureLocalNodeImage(engine: { host: string }, say: (m: string) => void): Promise<string> {
  const started = Date.now();
  const { spawn } = await import('node:child_process');
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [NODE_IMAGE_BUILD], { env: dockerEnv(engine.host), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      for (const line of String(d).split('\n')) if (line.trim().startsWith('kind-node')) say(line.trim());
    });
    child.once('error', reject);
    child.once('exit', (code, sig) => {
      if (code === 0) resolve(stdout.trim().split('\n').at(-1)!);
      else
        reject(
          new Error(
            `cluster/kind/node-image/build.sh failed (${code ?? sig}):\n${stderr.trim().split('\n').slice(-15).join('\n')}`,
          ),
        );
    });
  });
  say(`node image ${out} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return out;
}

/** Whether `docker run --privileged` works on this engine (it does not where the bounding set lacks a capability). */
export async function privilegedWorks(engine: DockerEngine, image: string): Promise<{ ok: boolean; error?: string }> {
  const name = `verdict-privileged-probe-${process.pid}-${Date.now().toString(36)}`;
  try {
    await docker(
      engine,
      ['run', '--rm', '--name', name, '--privileged', '--network', 'none', '--entrypoint', '/bin/true', image],
      { timeoutMs: 60_000 },
    );
    return { ok: true };
  } catch (err) {
    await docker(engine, ['rm', '--force', name]).catch(() => {});
    // The first line is the command; the daemon's reason follows (e.g. "unable to apply caps: operation not permitted").
    const lines = String((err as Error).message)
      .split('\n')
      .slice(1)
      .filter((l) => l.trim());
    const reason = lines.find((l) => /caps|permitted/i.test(l)) ?? lines.at(-1) ?? 'refused';
    return { ok: false, error: /unable to apply caps: [^:]+/.exec(reason)?.[0] ?? reason.trim() };
  }
}

/** What `up` needs to call kind: its binary and environment (the wrapper first on PATH). */
interface KindRunner {
  bin: string;
  env: NodeJS.ProcessEnv;
  dir: string;
}

async function kindRunner(engine: DockerEngine, stateDir: string, network: string, unprivileged: boolean): Promise<KindRunner> {
  const bin = await kindBinary();
  const dir = await mkdtemp(join(stateDir, 'kind-path-'));
  await symlink(WRAPPER, join(dir, 'docker'));
  const realDocker = (await runCommand('bash', ['-c', 'command -v docker'])).stdout.trim();
  if (!realDocker) throw new Error("the docker CLI is not installed (Debian's docker.io: scripts/setup-deps.sh --docker)");
  return {
    bin,
    dir,
    env: {
      ...dockerEnv(engine.host),
      PATH: `${dir}:${process.env.PATH}`,
      VERDICT_REAL_DOCKER: realDocker,
      VERDICT_KIND_UNPRIVILEGED: unprivileged ? '1' : '0',
      KIND_EXPERIMENTAL_DOCKER_NETWORK: network,
      VERDICT_KIND_DOCKER_LOG: join(stateDir, 'docker-calls.log'),
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nodes with their podCIDR and address, once the controller-manager has given every one a range. */
async function nodesWithCidrs(
  kc: k8s.KubeConfig,
  want: number,
  timeoutMs: number,
): Promise<Array<{ name: string; role: string; ip: string; podCIDR: string }>> {
  const api = kc.makeApiClient(k8s.CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const items = (await api.listNode()).items;
      const nodes = items.map((n) => ({
        name: n.metadata!.name!,
        role: n.metadata?.labels?.['node-role.kubernetes.io/control-plane'] !== undefined ? 'control-plane' : 'worker',
        ip: n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? '',
        podCIDR: n.spec?.podCIDR ?? '',
      }));
      if (nodes.length >= want && nodes.every((n) => n.ip && n.podCIDR)) return nodes;
      last = `${nodes.length}/${want} nodes, ${nodes.filter((n) => n.podCIDR).length} with a podCIDR`;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) throw new Error(`kind nodes did not get pod ranges within ${timeoutMs / 1000} s (${last})`);
    await sleep(500);
  }
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<string | null>,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    let missing: string | null;
    try {
      missing = await check();
    } catch (err) {
      missing = String(err);
    }
    if (missing === null) return;
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs / 1000} s: ${missing}`);
    await sleep(500);
  }
}

/**
 * Brings a kind cluster up (or reuses one of that name), sets its pod network up and waits until
 * every node is Ready and kube-system's pods are ready. See the module comment.
 */
export async function upKind(opts: KindOpenOptions = {}): Promise<KindCluster> {
  const name = opts.name ?? 'verdict';
  const say = opts.onProgress ?? (() => {});
  const stateDir = opts.stateDir ?? join(REPO, '.verdict', `kind-${name}`);
  await mkdir(stateDir, { recursive: true });
  const timings: Record<string, number> = {};
  const step = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await fn();
    } finally {
      timings[label] = Date.now() - t;
    }
  };
  const engine = await useEngine({ onProgress: say, holderPid: opts.engineHolderPid });
  let runner: KindRunner | undefined;
  let created = false;
  let network: KindNetwork | undefined;
  const undo = async () => {
    if (created && runner)
      await runCommand(runner.bin, ['delete', 'cluster', '--name', name], { env: runner.env, timeoutMs: 300_000 }).catch(
        () => {},
      );
    if (network) await removeNetwork(engine, network).catch(() => {});
    if (runner) await rm(runner.dir, { recursive: true, force: true });
    await engine.release();
  };
  try {
    // The node image: given, the official one when present (never pulled), else built here.
    let nodeImage: KindCluster['nodeImage'];
    if (opts.nodeImage) {
      if (!(await imagePresent(engine, opts.nodeImage)))
        throw new Error(`node image ${opts.nodeImage} is not present in the engine at ${engine.host} (never pulled)`);
      nodeImage = { ref: opts.nodeImage, source: 'given' };
    } else if (await imagePresent(engine, officialNodeImage())) {
      nodeImage = { ref: officialNodeImage(), source: 'official' };
      say(`node image: the official ${nodeImage.ref}`);
    } else {
      say(
        `node image: the official ${officialNodeImage()} is not present (and is never pulled): using the one built here from source`,
      );
      nodeImage = { ref: await step('node image', () => ensureLocalNodeImage(engine, say)), source: 'local' };
    }
    const priv = await step('privileged probe', () => privilegedWorks(engine, nodeImage.ref));
    const unprivileged = !priv.ok;
    say(
      unprivileged
        ? `docker run --privileged is refused here (${priv.error}): kind's nodes get every capability but CAP_SYS_RESOURCE instead (cluster/kind/docker-wrapper.sh)`
        : 'docker run --privileged works here: kind runs as it is (the wrapper only refuses pulls)',
    );
    network = await step('network', () => ensureNetwork(engine, name, say));
    runner = await kindRunner(engine, stateDir, network.name, unprivileged);
    const existing = (await runCommand(runner.bin, ['get', 'clusters'], { env: runner.env })).stdout
      .split('\n')
      .map((l) => l.trim());
    if (existing.includes(name)) {
      say(`reusing the kind cluster "${name}"`);
    } else {
      const configPath = join(stateDir, 'kind-config.yaml');
      await writeFile(configPath, kindConfigFor({ name, image: nodeImage.ref, workers: opts.workers }));
      say(
        `kind create cluster --name ${name} (${configPath}: from kind-config.yaml, ${opts.workers ?? 2} workers, pods ${KIND_POD_SUBNET}, Services ${KIND_SERVICE_SUBNET})`,
      );
      created = true;
      // VERDICT_KIND_RETAIN=1 keeps the nodes of a failed create for a look (`kind export logs`); delete them yourself.
      const retain = process.env.VERDICT_KIND_RETAIN === '1' ? ['--retain'] : [];
      await step('kind create cluster', () =>
        runCommand(runner!.bin, ['create', 'cluster', '--name', name, '--config', configPath, ...retain], {
          env: runner!.env,
          timeoutMs: 600_000,
        }),
      );
    }
    const containers = (await runCommand(runner.bin, ['get', 'nodes', '--name', name], { env: runner.env })).stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const cpName = containers.find((c) => c.endsWith('-control-plane'));
    if (!cpName) throw new Error(`kind cluster ${name} has no control-plane node (${containers.join(', ')})`);
    const cpIp = (
      await docker(engine, ['inspect', '--format', `{{(index .NetworkSettings.Networks "${network.name}").IPAddress}}`, cpName])
    ).stdout.trim();
    const kubeconfigPath = join(stateDir, 'kubeconfig');
    const internal = (await runCommand(runner.bin, ['get', 'kubeconfig', '--internal', '--name', name], { env: runner.env }))
      .stdout;
    await writeFile(kubeconfigPath, internal.replace(/server: https:\/\/[^\s]+/, `server: https://${cpIp}:6443`), {
      mode: 0o600,
    });
    const kubeConfig = loadKubeConfig(kubeconfigPath);
    // The pod network: per-node podCIDR, bridge + host-local, routes between the nodes.
    const nodes = await step('pod network', async () => {
      const ns = await nodesWithCidrs(kubeConfig, containers.length, 120_000);
      const routes = podRoutes(ns);
      const tmp = await mkdtemp(join(stateDir, 'cni-'));
      try {
        for (const n of ns) {
          const file = join(tmp, `${n.name}.conflist`);
          await writeFile(file, cniConfigFor(n.podCIDR));
          await docker(engine, ['exec', n.name, 'mkdir', '-p', '/etc/cni/net.d']);
          await docker(engine, ['cp', file, `${n.name}:/etc/cni/net.d/10-verdict-kind.conflist`]);
          for (const r of routes.get(n.name) ?? [])
            await docker(engine, ['exec', n.name, 'ip', 'route', 'replace', r.dst, 'via', r.via]);
        }
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
      say(`pod network: ${ns.map((n) => `${n.name} ${n.podCIDR} via ${n.ip}`).join('; ')}`);
      return ns;
    });
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    await step('nodes ready', () =>
      waitFor(
        'every kind node Ready',
        180_000,
        async () => {
          const notReady = (await core.listNode()).items
            .filter((n) => n.status?.conditions?.find((c) => c.type === 'Ready')?.status !== 'True')
            .map((n) => n.metadata!.name!);
          return notReady.length ? `not Ready: ${notReady.join(', ')}` : null;
        },
        opts.signal,
      ),
    );
    await step('kube-system ready', () =>
      waitFor(
        'kube-system pods ready',
        180_000,
        async () => {
          const pods = (await core.listNamespacedPod({ namespace: 'kube-system' })).items;
          const dns = pods.filter((p) => p.metadata?.labels?.['k8s-app'] === 'kube-dns');
          const notReady = pods
            .filter((p) => p.status?.conditions?.find((c) => c.type === 'Ready')?.status !== 'True')
            .map(
              (p) =>
                `${p.metadata!.name} ${
                  p.status?.containerStatuses
                    ?.map((c) => c.state?.waiting?.reason ?? '')
                    .filter(Boolean)
                    .join(',') ?? p.status?.phase
                }`,
            );
          if (dns.length === 0) return 'no CoreDNS pod yet';
          return notReady.length ? `not ready: ${notReady.join('; ')}` : null;
        },
        opts.signal,
      ),
    );
    say(`kind cluster ${name} is up: ${nodes.length} nodes, apiserver https://${cpIp}:6443, NodePorts at http://${cpIp}:<port>`);
    const owned = created || opts.keepExisting === false;
    return makeCluster({
      name,
      engine,
      runner,
      network,
      nodes,
      cpIp,
      kubeconfigPath,
      kubeConfig,
      owned,
      nodeImage,
      unprivileged,
      timings,
      opts,
    });
  } catch (err) {
    await undo();
    throw err;
  }
}

async function removeNetwork(engine: DockerEngine, network: KindNetwork): Promise<void> {
  await docker(engine, ['network', 'rm', network.name]).catch((err) => {
    if (!/No such network|not found/i.test(String(err))) throw err;
  });
}

/**
 * `kind delete cluster` for a cluster made by `upKind` in another process (`verdict cluster down
 * --provider kind`): the cluster, its docker network; then what is left, if anything, is reported.
 */
export async function downKind(
  name: string,
  o: { stateDir?: string; holderPid?: number; onProgress?: (m: string) => void } = {},
): Promise<string[]> {
  const stateDir = o.stateDir ?? join(REPO, '.verdict', `kind-${name}`);
  await mkdir(stateDir, { recursive: true });
  const engine = await useEngine({ onProgress: o.onProgress });
  try {
    const runner = await kindRunner(engine, stateDir, networkNameFor(name), false);
    try {
      await runCommand(runner.bin, ['delete', 'cluster', '--name', name], { env: runner.env, timeoutMs: 300_000 });
    } finally {
      await rm(runner.dir, { recursive: true, force: true });
    }
    await docker(engine, ['network', 'rm', networkNameFor(name)]).catch(() => {});
    return await kindLeftovers(engine, name);
  } finally {
    await engine.release();
    // The lease `cluster up` took for its caller.
    if (o.holderPid) {
      const { releaseHolder, DEFAULT_ENGINE_ROOT } = await import('../../lib/docker/engine.ts');
      await releaseHolder(DEFAULT_ENGINE_ROOT, o.holderPid).catch(() => {});
    }
  }
}

/** What a cluster left on this machine after it was deleted (empty when nothing). */
export async function kindLeftovers(engine: { host: string }, name: string): Promise<string[]> {
  const out: string[] = [];
  const ids = (await docker(engine, ['ps', '-a', '--quiet', '--filter', `label=${CLUSTER_LABEL}=${name}`])).stdout
    .split('\n')
    .filter(Boolean);
  if (ids.length) out.push(`containers ${ids.join(', ')}`);
  const nets = (await docker(engine, ['network', 'ls', '--quiet', '--filter', `name=^${networkNameFor(name)}$`])).stdout
    .split('\n')
    .filter(Boolean);
  if (nets.length) out.push(`docker network ${networkNameFor(name)}`);
  if (existsSync(`/sys/class/net/${bridgeNameFor(name)}`)) out.push(`interface ${bridgeNameFor(name)}`);
  return out;
}

interface MakeArgs {
  name: string;
  engine: DockerEngine;
  runner: KindRunner;
  network: KindNetwork;
  nodes: KindCluster['kindNodes'];
  cpIp: string;
  kubeconfigPath: string;
  kubeConfig: k8s.KubeConfig;
  owned: boolean;
  nodeImage: KindCluster['nodeImage'];
  unprivileged: boolean;
  timings: Record<string, number>;
  opts: KindOpenOptions;
}

function makeCluster(a: MakeArgs): KindCluster {
  const { name, engine, runner, network, cpIp, kubeConfig } = a;
  const say = a.opts.onProgress ?? (() => {});
  let isDown = false;
  const controlPlaneNode = a.nodes.find((n) => n.role === 'control-plane')?.name ?? `${name}-control-plane`;
  const cluster: KindCluster = {
    kind: 'kind',
    platform: KIND_PLATFORM,
    name,
    context: `kind-${name}`,
    kubeConfig,
    kubeconfigPath: a.kubeconfigPath,
    owned: a.owned,
    endpointLagMs: null,
    dockerNetwork: network,
    kindNodes: a.nodes,
    nodeImage: a.nodeImage,
    unprivileged: a.unprivileged,
    timings: a.timings,
    harnessNetworks: [network.subnet],
    // The apiserver's static pod taken away and back (./control-plane.ts). kind cannot add nodes to a
    // running cluster, so it has no `nodes`: node-pool-upgrade says so and is INCONCLUSIVE there.
    controlPlane: kindControlPlane({
      node: controlPlaneNode,
      exec: (node, cmd) => cluster.execInNode(node, cmd),
      apiAnswers: () => apiAnswers(kubeConfig),
    }),
    serviceUrl(nodePort) {
      if (nodePort < 30000 || nodePort > 32767) throw new Error(`${nodePort} is not a NodePort`);
      return `http://${cpIp}:${nodePort}`;
    },
    images: {
      async load(images, progress, signal) {
        const p = progress ?? say;
        for (const src of images) {
          signal?.throwIfAborted();
          await buildForKind(engine, src, p, signal);
        }
        // One call for all of them: kind saves them into one archive (shared layers once) and imports
        // it into every node at once, instead of a save and three imports per image. Into every node:
        // the overlay may place pods on the control plane too (its dependencies are there).
        const refs = [...new Set(images.map((i) => i.ref))];
        if (!refs.length) return;
        const t = Date.now();
        p(`kind load docker-image ${refs.join(' ')}`);
        // kind saves the images into an archive under TMPDIR and removes it when done, not when it is
        // stopped: a Ctrl-C stops kind and its docker calls (runCommand's signal), and this folder goes.
        const tmp = await mkdtemp(join(runner.dir, 'kind-load-'));
        try {
          await runCommand(runner.bin, ['load', 'docker-image', ...refs, '--name', name], {
            env: { ...runner.env, TMPDIR: tmp },
            timeoutMs: 600_000,
            signal,
          });
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
        p(`${refs.length} image(s) loaded into every node in ${((Date.now() - t) / 1000).toFixed(1)} s`);
      },
    },
    async serverVersion() {
      try {
        return (await kubeConfig.makeApiClient(k8s.VersionApi).getCode()).gitVersion;
      } catch {
        return null;
      }
    },
    async exportLogs(dir) {
      await runCommand(runner.bin, ['export', 'logs', dir, '--name', name], { env: runner.env, timeoutMs: 300_000 });
    },
    async execInNode(node, cmd) {
      return (await docker(engine, ['exec', node, ...cmd], { timeoutMs: 60_000 })).stdout;
    },
    async close() {
      if (isDown) return;
      isDown = true;
      try {
        if (a.owned) {
          say(`kind delete cluster --name ${name}`);
          await runCommand(runner.bin, ['delete', 'cluster', '--name', name], { env: runner.env, timeoutMs: 300_000 });
          await removeNetwork(engine, network);
          const left = await kindLeftovers(engine, name);
          if (left.length) throw new Error(`kind cluster ${name} left: ${left.join('; ')}`);
        }
      } finally {
        await rm(runner.dir, { recursive: true, force: true });
        await engine.release();
      }
    },
    async [Symbol.asyncDispose]() {
      await cluster.close();
    },
  };
  return cluster;
}

export const kindStrategy: TargetStrategy = {
  kind: 'kind',
  async available() {
    if (!existsSync(KIND_SCRIPT)) return { ok: false, reason: 'scripts/kind.sh is missing' };
    try {
      await runCommand('bash', ['-c', 'command -v go || test -x "${VERDICT_CACHE:-$HOME/.cache/verdict}/kind-v0.33.0/kind"']);
    } catch {
      return {
        ok: false,
        reason:
          'kind is not built and Go is not installed (scripts/kind.sh builds kind with go install): install Go >= 1.26, or use --target embedded',
      };
    }
    try {
      await runCommand('bash', ['-c', 'command -v docker']);
    } catch {
      return {
        ok: false,
        reason:
          "the docker CLI is not installed (scripts/setup-deps.sh --docker installs Debian's docker.io), or use --target embedded",
      };
    }
    const { findEngine, cannotStartReason } = await import('../../lib/docker/engine.ts');
    if (!(await findEngine()) && cannotStartReason()) {
      return {
        ok: false,
        reason: `no Docker engine answers and verdict cannot start one (${cannotStartReason()}): start Docker, or use --target embedded`,
      };
    }
    return { ok: true };
  },
  open: (opts) => upKind(opts),
};

/** Reads the calls kind made through the wrapper (for tests: proof that none reached a registry). */
export async function wrapperCalls(stateDir: string): Promise<string[]> {
  return (await readFile(join(stateDir, 'docker-calls.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
}
