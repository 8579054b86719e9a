/**
 * Where the manifests the probe checks judge come from: a kustomize directory or a YAML file
 * (`--manifests`), or the Deployment as it runs in a cluster (`--deployment ns/name --context C`)
 * with what the lint reads beside it: the ConfigMaps its containers take their environment from,
 * the PodDisruptionBudgets and Services of its namespace. Secrets are never read.
 */
import { readFile, stat } from 'node:fs/promises';
import { k8s, isNotFound, messageOf } from '../lib/kube/client.ts';
import { parseManifests, renderKustomization, type KubeObject } from '../lib/kube/render.ts';

export interface ManifestSource {
  objects: KubeObject[];
  /** In words, for the record: `kustomize license-api/kubernetes/overlays/gke`, `Deployment coditect/license-api in context staging`. */
  source: string;
}

/** A kustomize directory (rendered with kubectl kustomize) or a YAML file of one or more documents. */
export async function loadManifests(path: string): Promise<ManifestSource> {
  const st = await stat(path).catch(() => null);
  if (!st) throw new Error(`${path} does not exist: give a kustomize directory or a YAML file`);
  if (st.isDirectory()) return { objects: await renderKustomization(path), source: `kustomize ${path}` };
  const objects = parseManifests(await readFile(path, 'utf8'));
  if (!objects.length) throw new Error(`${path} holds no Kubernetes object`);
  return { objects, source: `file ${path}` };
}

/** The client library's objects as plain manifest data (dates as strings, as in YAML). */
function plain(o: unknown, apiVersion: string, kind: string): KubeObject {
  const data = JSON.parse(JSON.stringify(o)) as KubeObject;
  return { ...data, apiVersion, kind };
}

/** The Deployment `namespace/name` as it runs, with its ConfigMaps, the namespace's PDBs and Services. */
export async function readDeployment(kc: k8s.KubeConfig, namespace: string, name: string): Promise<ManifestSource> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const policy = kc.makeApiClient(k8s.PolicyV1Api);
  let d: k8s.V1Deployment;
  try {
    d = await apps.readNamespacedDeployment({ namespace, name });
  } catch (err) {
    if (isNotFound(err)) throw new Error(`no Deployment ${namespace}/${name} in context ${kc.getCurrentContext()}`);
    throw new Error(`reading Deployment ${namespace}/${name}: ${messageOf(err)}`);
  }
  const objects: KubeObject[] = [plain(d, 'apps/v1', 'Deployment')];
  const cmNames = new Set(
    (d.spec?.template.spec?.containers ?? []).flatMap((c) =>
      (c.envFrom ?? []).flatMap((e) => (e.configMapRef?.name ? [e.configMapRef.name] : [])),
    ),
  );
  for (const cm of cmNames) {
    try {
      objects.push(plain(await core.readNamespacedConfigMap({ namespace, name: cm }), 'v1', 'ConfigMap'));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  for (const p of (await policy.listNamespacedPodDisruptionBudget({ namespace })).items)
    objects.push(plain(p, 'policy/v1', 'PodDisruptionBudget'));
  // Only the Services in front of these pods: another workload's Service is not this Deployment's concern.
  const labels = d.spec?.template.metadata?.labels ?? {};
  for (const s of (await core.listNamespacedService({ namespace })).items) {
    const sel = s.spec?.selector ?? {};
    if (Object.keys(sel).length && Object.entries(sel).every(([k, v]) => labels[k] === v))
      objects.push(plain(s, 'v1', 'Service'));
  }
  return { objects, source: `Deployment ${namespace}/${name} in context ${kc.getCurrentContext()}` };
}
