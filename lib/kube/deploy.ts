import { applyObjects } from './apply.ts';
import { k8s } from './client.ts';
import { findKind, renderKustomization, type KubeObject } from './render.ts';
import { currentTemplateHash, rolloutProblem, waitForRollout, type RolloutProblem } from './rollout.ts';

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
  /** A last change to the rendered objects (e.g. a fault that removes the preStop hook). */
  transform?: (objects: KubeObject[]) => void;
}

/** Renders an overlay and pins the release under test: image, version label, extra env. */
export async function renderRelease(spec: ReleaseSpec): Promise<KubeObject[]> {
  const objects = await renderKustomization(spec.kustomization);
  const d = findKind(objects, 'Deployment', spec.deployment);
  if (!d) throw new Error(`${spec.kustomization} renders no Deployment named ${spec.deployment}`);
  const template = d.spec?.template;
  const c = template?.spec?.containers.find((x) => x.name === spec.container);
  if (!template || !c) throw new Error(`Deployment ${spec.deployment} has no container named ${spec.container}`);
  c.image = spec.image;
  template.metadata ??= {};
  template.metadata.labels = { ...template.metadata.labels, 'app.kubernetes.io/version': spec.version };
  for (const [name, value] of Object.entries(spec.env ?? {})) {
    c.env = [...(c.env ?? []).filter((e) => e.name !== name), { name, value }];
  }
  spec.transform?.(objects);
  return objects;
}

export interface DeployOptions {
  timeoutMs?: number;
  onProgress?: (m: string) => void;
  signal?: AbortSignal;
  /**
   * Fail as soon as the new release's pods show that the rollout cannot finish (crash loop, image
   * error, readiness that never passes) instead of waiting out the timeout. Default true.
   */
  failFast?: boolean;
  /** Wait for the rollout (default true); false applies and returns. */
  wait?: boolean;
}

/**
 * Applies a release and waits for its rollout, as `kubectl apply` + `kubectl rollout status` would;
 * throws a RolloutFailedError (with the pods' restarts and last state) when it cannot finish.
 */
export async function deployRelease(kc: k8s.KubeConfig, spec: ReleaseSpec, opts: DeployOptions = {}): Promise<void> {
  const objects = await renderRelease(spec);
  await applyObjects(kc, objects);
  const d = findKind(objects, 'Deployment', spec.deployment)!;
  const namespace = d.metadata.namespace ?? 'default';
  if (opts.wait === false) return;
  const check = opts.failFast === false ? undefined : newPodsCheck(kc, namespace, d, spec.deployment, spec.container);
  await waitForRollout(kc, namespace, spec.deployment, { ...opts, check });
}

/**
 * The same fail-fast check for a Deployment as it is in the cluster (the post-deploy gate waits
 * for a rollout someone else applied): crash loops, image errors and a readiness that never passes
 * end the wait at once.
 */
export async function liveRolloutCheck(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
): Promise<() => Promise<RolloutProblem | undefined>> {
  const d = await kc.makeApiClient(k8s.AppsV1Api).readNamespacedDeployment({ namespace, name });
  const container = d.spec?.template.spec?.containers[0]?.name ?? '';
  return newPodsCheck(kc, namespace, d, name, container);
}

/**
 * The pods of the Deployment's current template (its newest ReplicaSet: an older one may carry the
 * same version label), judged by {@link rolloutProblem} with the readiness probe's own budget.
 */
function newPodsCheck(
  kc: k8s.KubeConfig,
  namespace: string,
  d: k8s.V1Deployment,
  deployment: string,
  container: string,
): () => Promise<RolloutProblem | undefined> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const base = Object.entries(d.spec?.selector?.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const c = d.spec?.template.spec?.containers.find((x) => x.name === container);
  const rp = c?.readinessProbe ?? {};
  // The kubelet needs initialDelay + period × failureThreshold to call a pod unready; give it that
  // twice over plus 30 s before calling a readiness that never passes hopeless.
  const budgetMs = ((rp.initialDelaySeconds ?? 0) + (rp.periodSeconds ?? 10) * (rp.failureThreshold ?? 3)) * 2000 + 30_000;
  // When each pod was first seen started (its startup probe passed): the budget's origin.
  const seen = new Map<string, number>();
  return async () => {
    const hash = await currentTemplateHash(kc, namespace, deployment);
    if (!hash) return undefined;
    const pods = (await core.listNamespacedPod({ namespace, labelSelector: `${base},pod-template-hash=${hash}` })).items;
    return rolloutProblem(pods, Date.now(), { notReadyAfterMs: budgetMs, seen });
  };
}
