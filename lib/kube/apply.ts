import { k8s, messageOf } from './client.ts';
import type { KubeObject } from './render.ts';

export interface ApplyOptions {
  fieldManager?: string;
  /** Server-side dry run: the apiserver validates and admits, nothing is stored. */
  dryRun?: boolean;
}

export interface ApplyResult {
  object: string;
  action: 'applied' | 'dry-run';
}

const ORDER = ['Namespace', 'ServiceAccount', 'ConfigMap', 'Secret', 'Service', 'PodDisruptionBudget', 'Deployment'];

/**
 * Server-side apply of rendered objects, namespaces and config first. Each failure names the
 * object and carries the apiserver's message.
 */
export async function applyObjects(kc: k8s.KubeConfig, objects: KubeObject[], opts: ApplyOptions = {}): Promise<ApplyResult[]> {
  const api = k8s.KubernetesObjectApi.makeApiClient(kc);
  const rank = (o: KubeObject) => {
    const i = ORDER.indexOf(o.kind);
    return i < 0 ? ORDER.length : i;
  };
  const results: ApplyResult[] = [];
  for (const o of [...objects].sort((a, b) => rank(a) - rank(b))) {
    const name = `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
    try {
      await api.patch(
        o as k8s.KubernetesObject,
        undefined,
        opts.dryRun ? 'All' : undefined,
        opts.fieldManager ?? 'verdict',
        true,
        k8s.PatchStrategy.ServerSideApply,
      );
      results.push({ object: name, action: opts.dryRun ? 'dry-run' : 'applied' });
    } catch (err) {
      throw new Error(`applying ${name} failed: ${messageOf(err)}`);
    }
  }
  return results;
}
