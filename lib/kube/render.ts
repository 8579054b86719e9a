import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { V1ConfigMap, V1Deployment, V1PodDisruptionBudget, V1Secret, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);

/**
 * A Kubernetes object as plain data (rendered YAML). Its fields beyond the header are unknown until
 * its kind is known: {@link isKind} gives the client library's model type for the kinds the harness
 * reads field by field.
 */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The model type of each kind the harness reads field by field (@kubernetes/client-node, the wire format's names). */
export interface KnownKinds {
  ConfigMap: V1ConfigMap;
  Deployment: V1Deployment;
  PodDisruptionBudget: V1PodDisruptionBudget;
  Secret: V1Secret;
  Service: V1Service;
}

/** A rendered object of a known kind. Its fields are as the manifest wrote them (not validated): read them defensively. */
export type KubeObjectOf<K extends keyof KnownKinds> = KubeObject & KnownKinds[K] & { kind: K };

/** Whether `o` is of kind `kind`, typed as that kind's model. */
export const isKind = <K extends keyof KnownKinds>(o: KubeObject, kind: K): o is KubeObjectOf<K> => o.kind === kind;

/** The objects of kind `kind`. */
export const ofKind = <K extends keyof KnownKinds>(objects: readonly KubeObject[], kind: K): Array<KubeObjectOf<K>> =>
  objects.filter((o): o is KubeObjectOf<K> => isKind(o, kind));

/** The first object of kind `kind` (named `name` when given). */
export const findKind = <K extends keyof KnownKinds>(
  objects: readonly KubeObject[],
  kind: K,
  name?: string,
): KubeObjectOf<K> | undefined =>
  objects.find((o): o is KubeObjectOf<K> => isKind(o, kind) && (name === undefined || o.metadata.name === name));

/** Renders a kustomization with kubectl's built-in kustomize and parses every document. */
export async function renderKustomization(dir: string): Promise<KubeObject[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('kubectl', ['kustomize', dir], { maxBuffer: 32 * 1024 * 1024 }));
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('kubectl not found: install kubectl (it carries kustomize) and put it on PATH');
    throw new Error(`kubectl kustomize ${dir} failed: ${e.stderr?.trim() || e.message}`);
  }
  return parseManifests(stdout);
}

export function parseManifests(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`invalid YAML: ${d.errors[0].message}`);
      return d.toJS() as KubeObject;
    })
    .filter((o) => o && typeof o === 'object' && o.kind);
}
