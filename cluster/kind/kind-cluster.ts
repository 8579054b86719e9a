import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../../lib/proc/run.ts';
import type { Cluster, ClusterProvider, UpOptions } from '../provider.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const KIND_CONFIG = join(REPO, 'kind-config.yaml');
/** The only node port kind-config.yaml maps to the host. */
export const KIND_MAPPED_NODE_PORT = 30080;

export interface KindCluster extends Cluster {
  /** `kind export logs`: node and pod logs for a failed run's evidence. */
  exportLogs(dir: string): Promise<void>;
}

/**
 * kind (Kubernetes in Docker) for people with a Docker engine: the same manifests (kind overlay),
 * `kind-config.yaml` maps http://127.0.0.1:30080 to the Service's nodePort, and images reach the
 * nodes with `kind load docker-image` (real tags only: kind ignores a loaded `:latest`).
 */
export async function upKind(opts: UpOptions & { stateDir?: string; keepExisting?: boolean } = {}): Promise<KindCluster> {
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
  const kubeconfig = join(stateDir, 'kubeconfig');
  await writeFile(kubeconfig, (await runCommand('kind', ['get', 'kubeconfig', '--name', name])).stdout, { mode: 0o600 });
  let isDown = false;
  const cluster: KindCluster = {
    provider: 'kind', name, kubeconfig,
    serviceUrl(nodePort) {
      if (nodePort !== KIND_MAPPED_NODE_PORT) throw new Error(`kind-config.yaml maps only nodePort ${KIND_MAPPED_NODE_PORT} to the host; add an extraPortMappings entry for ${nodePort}`);
      return `http://127.0.0.1:${nodePort}`;
    },
    async loadLicenseApiImage(tag) {
      say(`docker build -t license-api:${tag}`);
      await runCommand('docker', ['build', '-t', `license-api:${tag}`, '--build-arg', `APP_VERSION=${tag}`, REPO], { timeoutMs: 900_000 });
      say(`kind load docker-image license-api:${tag}`);
      await runCommand('kind', ['load', 'docker-image', `license-api:${tag}`, '--name', name], { timeoutMs: 300_000 });
    },
    async exportLogs(dir) { await runCommand('kind', ['export', 'logs', dir, '--name', name], { timeoutMs: 300_000 }); },
    async down() {
      if (isDown) return;
      isDown = true;
      // A cluster we found already running is the user's: leave it unless asked.
      if (created || !opts.keepExisting) await runCommand('kind', ['delete', 'cluster', '--name', name], { timeoutMs: 300_000 });
    },
    async [Symbol.asyncDispose]() { await cluster.down(); },
  };
  return cluster;
}

export const kindProvider: ClusterProvider = {
  name: 'kind',
  async available() {
    try { await runCommand('kind', ['version']); } catch { return { ok: false, reason: 'kind is not installed (https://kind.sigs.k8s.io): install it, or use --provider embedded' }; }
    try { await runCommand('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 20_000 }); } catch {
      return { ok: false, reason: 'no Docker engine answers (`docker info` failed): start Docker, or use --provider embedded' };
    }
    return { ok: true };
  },
  up: (opts) => upKind(opts),
};
