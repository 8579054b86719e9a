import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKubeConfig, k8s } from '../../lib/kube/client.ts';
import { runCommand } from '../../lib/proc/run.ts';
import type { OpenOptions, Target, TargetStrategy } from '../target.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const KIND_CONFIG = join(REPO, 'kind-config.yaml');
/** The only node port kind-config.yaml maps to the host. */
export const KIND_MAPPED_NODE_PORT = 30080;

export interface KindCluster extends Target {
  readonly kind: 'kind';
  readonly kubeconfigPath: string;
  /** `kind export logs`: node and pod logs for a failed run's evidence. */
  exportLogs(dir: string): Promise<void>;
}

/**
 * kind (Kubernetes in Docker) for people with a Docker engine: the same manifests (kind overlay),
 * `kind-config.yaml` maps http://127.0.0.1:30080 to the Service's nodePort, and images reach the
 * nodes with `docker build` + `kind load docker-image` (real tags only: kind ignores a loaded `:latest`).
 * A cluster that already existed is the user's: it is reused and left running unless `keepExisting` is false.
 */
export async function upKind(opts: OpenOptions & { keepExisting?: boolean } = {}): Promise<KindCluster> {
  const name = opts.name ?? 'verdict';
  const say = opts.onProgress ?? (() => {});
  const stateDir = opts.stateDir ?? join(REPO, '.verdict', `kind-${name}`);
  await mkdir(stateDir, { recursive: true });
  const existing = (await runCommand('kind', ['get', 'clusters'])).stdout.split('\n').map((l) => l.trim());
  let created = false;
  if (existing.includes(name)) {
    say(`reusing the kind cluster "${name}"`);
  } else {
    say(`creating the kind cluster "${name}" (kind-config.yaml: 1 control plane, 2 workers)`);
    await runCommand('kind', ['create', 'cluster', '--name', name, '--config', KIND_CONFIG, '--wait', '180s'], { timeoutMs: 600_000 });
    created = true;
  }
  const kubeconfigPath = join(stateDir, 'kubeconfig');
  await writeFile(kubeconfigPath, (await runCommand('kind', ['get', 'kubeconfig', '--name', name])).stdout, { mode: 0o600 });
  const kubeConfig = loadKubeConfig(kubeconfigPath);
  let isDown = false;
  const cluster: KindCluster = {
    kind: 'kind', name, context: `kind-${name}`, kubeConfig, kubeconfigPath, owned: created, endpointLagMs: null,
    serviceUrl(nodePort) {
      if (nodePort !== KIND_MAPPED_NODE_PORT) throw new Error(`kind-config.yaml maps only nodePort ${KIND_MAPPED_NODE_PORT} to the host; add an extraPortMappings entry for ${nodePort}`);
      return `http://127.0.0.1:${nodePort}`;
    },
    images: {
      async load(src, progress) {
        if (!src.docker) throw new Error(`kind loads Docker images, and the app profile gives no Docker build for ${src.ref}`);
        const args = ['build', '-t', src.ref];
        for (const [k, v] of Object.entries(src.docker.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
        if (src.docker.dockerfile) args.push('-f', src.docker.dockerfile);
        args.push(src.docker.context);
        (progress ?? say)(`docker build -t ${src.ref}`);
        await runCommand('docker', args, { timeoutMs: 900_000 });
        (progress ?? say)(`kind load docker-image ${src.ref}`);
        await runCommand('kind', ['load', 'docker-image', src.ref, '--name', name], { timeoutMs: 300_000 });
      },
    },
    async serverVersion() {
      try { return (await kubeConfig.makeApiClient(k8s.VersionApi).getCode()).gitVersion; } catch { return null; }
    },
    async exportLogs(dir) { await runCommand('kind', ['export', 'logs', dir, '--name', name], { timeoutMs: 300_000 }); },
    async close() {
      if (isDown) return;
      isDown = true;
      if (created || opts.keepExisting === false) await runCommand('kind', ['delete', 'cluster', '--name', name], { timeoutMs: 300_000 });
    },
    async [Symbol.asyncDispose]() { await cluster.close(); },
  };
  return cluster;
}

export const kindStrategy: TargetStrategy = {
  kind: 'kind',
  async available() {
    try { await runCommand('kind', ['version']); } catch { return { ok: false, reason: 'kind is not installed (https://kind.sigs.k8s.io): install it, or use --target embedded' }; }
    try { await runCommand('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 20_000 }); } catch {
      return { ok: false, reason: 'no Docker engine answers (`docker info` failed): start Docker, or use --target embedded' };
    }
    return { ok: true };
  },
  open: (opts) => upKind(opts),
};
