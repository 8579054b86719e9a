import type { k8s } from '../../../lib/kube/client.ts';

type Pod = k8s.V1Pod;
type Container = k8s.V1Container;

/** Reads ConfigMaps and Secrets for `envFrom` and `valueFrom` (cached per pod start by the caller). */
export interface ConfigSource {
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
}

/** The downward API's `fieldRef` paths, as the kubelet resolves them. */
export function fieldRef(pod: Pod, path: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return (m[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[m[2]] ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.podIP':
      return pod.status?.podIP ?? '';
    case 'status.hostIP':
      return pod.status?.hostIP ?? '';
    case 'status.podIPs':
      return (pod.status?.podIPs ?? []).map((p) => p.ip).join(',');
    default:
      throw new Error(`unsupported fieldRef ${path}`);
  }
}

/** Expands `$(VAR)` references as the kubelet does: `$$(VAR)` escapes, unknown references stay as written. */
export function expandRefs(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) => {
    if (all === '$$') return '$';
    return name !== undefined && name in env ? env[name] : all;
  });
}

/**
 * The container's environment in kubelet order: the image's env, then `envFrom` (in order), then
 * `env` (in order, each value expanded against what came before).
 */
export async function containerEnv(
  pod: Pod,
  c: Container,
  imageEnv: Record<string, string>,
  source: ConfigSource,
): Promise<Record<string, string>> {
  const ns = pod.metadata?.namespace ?? 'default';
  const env: Record<string, string> = { ...imageEnv };
  for (const from of c.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    let data: Record<string, string> | undefined;
    if (from.configMapRef) {
      data = await source.configMap(ns, from.configMapRef.name!);
      if (!data && !from.configMapRef.optional) throw new Error(`configmap "${from.configMapRef.name}" not found`);
    } else if (from.secretRef) {
      data = await source.secret(ns, from.secretRef.name!);
      if (!data && !from.secretRef.optional) throw new Error(`secret "${from.secretRef.name}" not found`);
    }
    for (const [k, v] of Object.entries(data ?? {})) env[prefix + k] = v;
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = expandRefs(e.value, env);
      continue;
    }
    const vf = e.valueFrom;
    if (!vf) {
      env[e.name] = '';
      continue;
    }
    if (vf.fieldRef) env[e.name] = fieldRef(pod, vf.fieldRef.fieldPath);
    else if (vf.configMapKeyRef) {
      const v = (await source.configMap(ns, vf.configMapKeyRef.name!))?.[vf.configMapKeyRef.key];
      if (v === undefined && !vf.configMapKeyRef.optional)
        throw new Error(`configmap key ${vf.configMapKeyRef.name}/${vf.configMapKeyRef.key} not found`);
      if (v !== undefined) env[e.name] = v;
    } else if (vf.secretKeyRef) {
      const v = (await source.secret(ns, vf.secretKeyRef.name!))?.[vf.secretKeyRef.key];
      if (v === undefined && !vf.secretKeyRef.optional)
        throw new Error(`secret key ${vf.secretKeyRef.name}/${vf.secretKeyRef.key} not found`);
      if (v !== undefined) env[e.name] = v;
    } else if (vf.resourceFieldRef) {
      env[e.name] = resourceField(c, vf.resourceFieldRef.resource, vf.resourceFieldRef.divisor);
    }
  }
  return env;
}

function resourceField(c: Container, resource: string, _divisor: unknown): string {
  const [kind, name] = resource.split('.') as ['limits' | 'requests', string];
  return String(c.resources?.[kind]?.[name] ?? '');
}
