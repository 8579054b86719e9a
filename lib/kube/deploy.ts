import { applyObjects } from './apply.ts';
import { k8s } from './client.ts';
import { renderKustomization, type KubeObject } from './render.ts';
import { waitForRollout } from './rollout.ts';

export interface ReleaseSpec {
  /** Kustomize directory to render (an overlay). */
  kustomization: string;
  deployment: string;
  container: string;
  /** Full image reference, e.g. `license-api:v2`. */
  image: string;
  /** Written to the pod template's `app.kubernetes.io/version` label (the app reports it). */
  version: string;
  /** Extra env for the container (e.g. a deliberately broken build's fault switch). */
  env?: Record<string, string>;
}

/** Renders an overlay and pins the release under test: image, version label, extra env. */
export async function renderRelease(spec: ReleaseSpec): Promise<KubeObject[]> {
  const objects = await renderKustomization(spec.kustomization);
  const d = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === spec.deployment);
  if (!d) throw new Error(`${spec.kustomization} renders no Deployment named ${spec.deployment}`);
  const c = d.spec.template.spec.containers.find((x: { name: string }) => x.name === spec.container);
  if (!c) throw new Error(`Deployment ${spec.deployment} has no container named ${spec.container}`);
  c.image = spec.image;
  d.spec.template.metadata.labels = { ...d.spec.template.metadata.labels, 'app.kubernetes.io/version': spec.version };
  for (const [name, value] of Object.entries(spec.env ?? {})) {
    c.env = [...(c.env ?? []).filter((e: { name: string }) => e.name !== name), { name, value }];
  }
  return objects;
}

/** Applies a release and waits for its rollout, as `kubectl apply` + `kubectl rollout status` would. */
export async function deployRelease(kc: k8s.KubeConfig, spec: ReleaseSpec, opts: { timeoutMs?: number; onProgress?: (m: string) => void; signal?: AbortSignal } = {}): Promise<void> {
  const objects = await renderRelease(spec);
  await applyObjects(kc, objects);
  const d = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === spec.deployment)!;
  await waitForRollout(kc, d.metadata.namespace ?? 'default', spec.deployment, opts);
}
