import * as k8s from '@kubernetes/client-node';

export { k8s };

/** Loads a kubeconfig file (and optional context) into a KubeConfig. */
export function loadKubeConfig(path?: string, context?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  return kc;
}

/** Request options that send a JSON merge patch (client-node defaults to JSON Patch). */
export const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
/** Request options that send a strategic merge patch. */
export const strategicMergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);
/** Request options that send a JSON Patch (RFC 6902). */
export const jsonPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);

/** HTTP status of a client-node error (ApiException), or undefined for a network error. */
export function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** The apiserver's message for an ApiException (its body may be a JSON string), else the error text. */
export function messageOf(err: unknown): string {
  const e = err as { body?: unknown; message?: string };
  let body = e?.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      /* keep the string */
    }
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return e?.message ?? String(err);
}

export const isNotFound = (err: unknown) => statusOf(err) === 404;
export const isConflict = (err: unknown) => statusOf(err) === 409;

/** Whether the cluster's apiserver answers (its /version) within `timeoutMs`: false while it is away. */
export async function apiAnswers(kc: k8s.KubeConfig, timeoutMs = 3000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      kc
        .makeApiClient(k8s.VersionApi)
        .getCode()
        .then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
