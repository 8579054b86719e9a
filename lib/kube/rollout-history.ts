/**
 * `kubectl rollout history | undo | pause | resume` for a Deployment, on @kubernetes/client-node,
 * with kubectl's semantics (k8s.io/kubectl/pkg/polymorphichelpers: history.go, rollback.go,
 * objectpauser.go, objectresumer.go):
 *
 * - a Deployment's history is its ReplicaSets (those it controls: ownerReference with
 *   `controller: true` and its uid), each revision the `deployment.kubernetes.io/revision`
 *   annotation, with its `kubernetes.io/change-cause`;
 * - undo picks the second-highest revision, or the one asked for; a missing revision is an error;
 *   then refuses a paused Deployment; skips when the target's template already equals the
 *   Deployment's (ignoring `pod-template-hash`); otherwise one JSON Patch replaces `/spec/template`
 *   (the ReplicaSet's, without `pod-template-hash`) and `/metadata/annotations` (the Deployment's own
 *   last-applied-configuration, revision, revision-history, desired-replicas, max-replicas and
 *   rollbackTo kept; the rest copied from the ReplicaSet). The Deployment controller then rolls out
 *   that template as a new revision, and the old revision number leaves the history;
 * - pause and resume set `spec.paused`; pausing a paused Deployment (or resuming one that is not)
 *   is an error, as in kubectl.
 *
 * The decisions are pure functions of the Deployment and its ReplicaSets ({@link revisionHistory},
 * {@link planUndo}), so the kubectl cases are unit-tested without a cluster.
 */
import { isNotFound, jsonPatch, k8s, mergePatch, messageOf } from './client.ts';

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
export const CHANGE_CAUSE_ANNOTATION = 'kubernetes.io/change-cause';
export const POD_TEMPLATE_HASH = 'pod-template-hash';

/** The annotations a rollback keeps from the Deployment instead of copying them from the ReplicaSet (kubectl's annotationsToSkip). */
export const ANNOTATIONS_KEPT_ON_ROLLBACK: readonly string[] = [
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION_ANNOTATION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
];

export interface RevisionInfo {
  revision: number;
  replicaSet: string;
  /** `kubernetes.io/change-cause` of the ReplicaSet, null when none. */
  changeCause: string | null;
  /** `container=image` for each container, init containers first. */
  images: string[];
  templateHash: string | null;
  /** The revision the Deployment's template is now (its newest ReplicaSet). */
  current: boolean;
  replicas: number;
  readyReplicas: number;
  createdAt: string | null;
}

export type RolloutRefusal = 'paused' | 'revision-not-found' | 'no-history' | 'already-paused' | 'not-paused' | 'not-found';

/** kubectl would refuse this too; `reason` says which case, the message what to do. */
export class RolloutRefusedError extends Error {
  readonly reason: RolloutRefusal;
  constructor(reason: RolloutRefusal, message: string) {
    super(message);
    this.name = 'RolloutRefusedError';
    this.reason = reason;
  }
}

/** The API server failed or refused a call (not a kubectl-level refusal): the operation, then its message. */
export class RolloutApiError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RolloutApiError';
    this.status = status;
  }
}

export type JsonPatchOp = { op: 'replace' | 'add'; path: string; value: unknown };

export type UndoPlan =
  | { action: 'skip'; revision: number; replicaSet: string; message: string }
  | { action: 'rollback'; revision: number; replicaSet: string; patch: JsonPatchOp[]; message: string };

/** The revision of a ReplicaSet, or null when its annotation is missing or not a whole number (kubectl skips those). */
export function revisionOf(rs: k8s.V1ReplicaSet): number | null {
  const v = rs.metadata?.annotations?.[REVISION_ANNOTATION];
  if (v === undefined || !/^\d+$/.test(v)) return null;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : null;
}

/** The ReplicaSets the Deployment controls (its controller ownerReference), as kubectl's GetAllReplicaSets keeps them. */
export function ownedReplicaSets(d: k8s.V1Deployment, sets: k8s.V1ReplicaSet[]): k8s.V1ReplicaSet[] {
  const uid = d.metadata?.uid;
  return sets.filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.controller === true && o.uid === uid));
}

/** Pod templates equal as kubectl's equalIgnoreHash sees them: `pod-template-hash` ignored, empty and absent alike. */
export function equalIgnoreHash(a: k8s.V1PodTemplateSpec | undefined, b: k8s.V1PodTemplateSpec | undefined): boolean {
  return canonical(withoutHash(a)) === canonical(withoutHash(b));
}

/** The Deployment's history, oldest revision first (one entry per revision, as kubectl's map keeps it). */
export function revisionHistory(d: k8s.V1Deployment, sets: k8s.V1ReplicaSet[]): RevisionInfo[] {
  const byRevision = new Map<number, k8s.V1ReplicaSet>();
  for (const rs of ownedReplicaSets(d, sets)) {
    const v = revisionOf(rs);
    if (v !== null) byRevision.set(v, rs);
  }
  const current = newestMatching(d, [...byRevision.values()]);
  return [...byRevision.entries()]
    .sort((x, y) => x[0] - y[0])
    .map(([revision, rs]) => {
      const spec = rs.spec?.template?.spec;
      const containers = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])];
      return {
        revision,
        replicaSet: rs.metadata?.name ?? '?',
        changeCause: rs.metadata?.annotations?.[CHANGE_CAUSE_ANNOTATION] || null,
        images: containers.map((c) => `${c.name}=${c.image ?? ''}`),
        templateHash: rs.metadata?.labels?.[POD_TEMPLATE_HASH] ?? null,
        current: rs === current,
        replicas: rs.status?.replicas ?? 0,
        readyReplicas: rs.status?.readyReplicas ?? 0,
        createdAt: toIso(rs.metadata?.creationTimestamp),
      };
    });
}

/**
 * What `kubectl rollout undo [--to-revision=N]` would do, in its order: find the target revision
 * (throws revision-not-found or no-history), refuse a paused Deployment (throws paused), skip when
 * the template already matches, else the JSON Patch to send. `toRevision` 0 or omitted: the previous revision.
 */
export function planUndo(d: k8s.V1Deployment, sets: k8s.V1ReplicaSet[], toRevision = 0): UndoPlan {
  const name = d.metadata?.name ?? '?';
  const ns = d.metadata?.namespace ?? 'default';
  if (!Number.isInteger(toRevision) || toRevision < 0) {
    throw new RolloutRefusedError('revision-not-found', `unable to find specified revision ${toRevision} in history`);
  }
  let target: { revision: number; rs: k8s.V1ReplicaSet } | undefined;
  if (toRevision > 0) {
    for (const rs of ownedReplicaSets(d, sets))
      if (revisionOf(rs) === toRevision) {
        target = { revision: toRevision, rs };
        break;
      }
    if (!target) {
      throw new RolloutRefusedError(
        'revision-not-found',
        `unable to find specified revision ${toRevision} in history of deployment ${ns}/${name} (see the revisions with \`verdict history --deployment ${ns}/${name}\`)`,
      );
    }
  } else {
    // kubectl's single pass: the newest revision, and the one before it.
    let latest: { revision: number; rs: k8s.V1ReplicaSet } | undefined;
    for (const rs of ownedReplicaSets(d, sets)) {
      const v = revisionOf(rs);
      if (v === null) continue;
      if (!latest || latest.revision < v) {
        target = latest;
        latest = { revision: v, rs };
      } else if (!target || target.revision < v) target = { revision: v, rs };
    }
    if (!target)
      throw new RolloutRefusedError(
        'no-history',
        `no rollout history found for deployment "${name}" (it has no earlier revision to go back to)`,
      );
  }
  if (d.spec?.paused) {
    throw new RolloutRefusedError(
      'paused',
      `you cannot rollback a paused deployment; resume it first with \`verdict resume --deployment ${ns}/${name}\` (kubectl rollout resume deployment/${name}) and try again`,
    );
  }
  const rsName = target.rs.metadata?.name ?? '?';
  if (equalIgnoreHash(target.rs.spec?.template, d.spec?.template)) {
    return {
      action: 'skip',
      revision: target.revision,
      replicaSet: rsName,
      message: `skipped rollback (current template already matches revision ${target.revision})`,
    };
  }
  const template = withoutHash(target.rs.spec?.template);
  const annotations: Record<string, string> = {};
  for (const k of ANNOTATIONS_KEPT_ON_ROLLBACK) {
    const v = d.metadata?.annotations?.[k];
    if (v !== undefined) annotations[k] = v;
  }
  for (const [k, v] of Object.entries(target.rs.metadata?.annotations ?? {}))
    if (!ANNOTATIONS_KEPT_ON_ROLLBACK.includes(k)) annotations[k] = v;
  return {
    action: 'rollback',
    revision: target.revision,
    replicaSet: rsName,
    message: `rolled back to revision ${target.revision} (replicaset ${rsName})`,
    patch: [
      { op: 'replace', path: '/spec/template', value: template },
      // kubectl replaces; `add` does the same where annotations exist and also works where they do not.
      { op: d.metadata?.annotations ? 'replace' : 'add', path: '/metadata/annotations', value: annotations },
    ],
  };
}

export interface RolloutTarget {
  kc: k8s.KubeConfig;
  namespace: string;
  name: string;
}

/** The Deployment and every ReplicaSet its selector matches (planUndo and revisionHistory keep the owned ones). */
async function read(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
): Promise<{ d: k8s.V1Deployment; sets: k8s.V1ReplicaSet[] }> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const d = await call(
    `read deployment ${namespace}/${name}`,
    () => apps.readNamespacedDeployment({ namespace, name }),
    namespace,
    name,
  );
  const selector = labelSelector(d.spec?.selector);
  const sets = (
    await call(
      `list the replicasets of deployment ${namespace}/${name}`,
      () => apps.listNamespacedReplicaSet({ namespace, labelSelector: selector }),
      namespace,
      name,
    )
  ).items;
  return { d, sets };
}

/** `kubectl rollout history deployment/<name>`: the revisions, oldest first. */
export async function history(kc: k8s.KubeConfig, namespace: string, name: string): Promise<RevisionInfo[]> {
  const { d, sets } = await read(kc, namespace, name);
  return revisionHistory(d, sets);
}

export interface UndoResult {
  action: 'skip' | 'rollback';
  /** The revision whose template the Deployment now has (rolled back to, or already had). */
  revision: number;
  replicaSet: string;
  message: string;
}

/** `kubectl rollout undo deployment/<name> [--to-revision=N]`. Throws RolloutRefusedError for kubectl's refusals, RolloutApiError for the API's. */
export async function undo(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
  opts: { toRevision?: number } = {},
): Promise<UndoResult> {
  const { d, sets } = await read(kc, namespace, name);
  const plan = planUndo(d, sets, opts.toRevision ?? 0);
  if (plan.action === 'rollback') {
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    await call(
      `restore revision ${plan.revision} of deployment ${namespace}/${name}`,
      () => apps.patchNamespacedDeployment({ namespace, name, body: plan.patch }, jsonPatch),
      namespace,
      name,
    );
  }
  return { action: plan.action, revision: plan.revision, replicaSet: plan.replicaSet, message: plan.message };
}

/** `kubectl rollout pause`: the controller stops rolling out template changes. Pausing a paused Deployment is an error. */
export async function pause(kc: k8s.KubeConfig, namespace: string, name: string): Promise<void> {
  await setPaused(kc, namespace, name, true);
}

/** `kubectl rollout resume`. Resuming a Deployment that is not paused is an error. */
export async function resume(kc: k8s.KubeConfig, namespace: string, name: string): Promise<void> {
  await setPaused(kc, namespace, name, false);
}

async function setPaused(kc: k8s.KubeConfig, namespace: string, name: string, paused: boolean): Promise<void> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const d = await call(
    `read deployment ${namespace}/${name}`,
    () => apps.readNamespacedDeployment({ namespace, name }),
    namespace,
    name,
  );
  if (Boolean(d.spec?.paused) === paused) {
    throw paused
      ? new RolloutRefusedError('already-paused', `deployments.apps "${name}" is already paused`)
      : new RolloutRefusedError('not-paused', `deployments.apps "${name}" is not paused`);
  }
  await call(
    `${paused ? 'pause' : 'resume'} deployment ${namespace}/${name}`,
    () => apps.patchNamespacedDeployment({ namespace, name, body: { spec: { paused } } }, mergePatch),
    namespace,
    name,
  );
}

async function call<T>(what: string, f: () => Promise<T>, namespace: string, name: string): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (isNotFound(err) && what.startsWith('read deployment')) {
      throw new RolloutRefusedError(
        'not-found',
        `deployment ${namespace}/${name} not found (check --deployment <namespace>/<name> and --context)`,
      );
    }
    const status = (err as { code?: unknown }).code;
    throw new RolloutApiError(`cannot ${what}: ${apiMessage(err)}`, typeof status === 'number' ? status : undefined, {
      cause: err,
    });
  }
}

/** The apiserver's message, or for a network failure ("fetch failed") the socket error under it. */
function apiMessage(err: unknown): string {
  let m = messageOf(err);
  let c = (err as { cause?: unknown })?.cause;
  for (let i = 0; c && i < 3; i++) {
    const text = (c as { message?: string }).message;
    if (text && !m.includes(text)) m += `: ${text}`;
    c = (c as { cause?: unknown }).cause;
  }
  return m;
}

function labelSelector(s: k8s.V1LabelSelector | undefined): string {
  const parts = Object.entries(s?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of s?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

/** The newest owned ReplicaSet whose template equals the Deployment's (kubectl's FindNewReplicaSet picks the oldest of equals; revisions are unique). */
function newestMatching(d: k8s.V1Deployment, sets: k8s.V1ReplicaSet[]): k8s.V1ReplicaSet | undefined {
  return sets
    .filter((rs) => equalIgnoreHash(rs.spec?.template, d.spec?.template))
    .sort((a, b) => (revisionOf(b) ?? 0) - (revisionOf(a) ?? 0))[0];
}

/** A plain JSON copy of a template without the `pod-template-hash` label. */
function withoutHash(t: k8s.V1PodTemplateSpec | undefined): k8s.V1PodTemplateSpec {
  const copy = JSON.parse(JSON.stringify(t ?? {})) as k8s.V1PodTemplateSpec;
  if (copy.metadata?.labels) {
    delete copy.metadata.labels[POD_TEMPLATE_HASH];
    if (Object.keys(copy.metadata.labels).length === 0) delete copy.metadata.labels;
  }
  return copy;
}

/** JSON with sorted keys, where null, absent, empty arrays and empty objects are all the same (apimachinery's semantic equality). */
function canonical(v: unknown): string {
  const norm = (x: unknown): unknown => {
    if (x === null || x === undefined) return undefined;
    if (Array.isArray(x)) {
      const a = x.map(norm);
      return a.length ? a : undefined;
    }
    if (typeof x === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(x as object).sort()) {
        const n = norm((x as Record<string, unknown>)[k]);
        if (n !== undefined) out[k] = n;
      }
      return Object.keys(out).length ? out : undefined;
    }
    return x;
  };
  return JSON.stringify(norm(v)) ?? 'null';
}

function toIso(t: Date | string | undefined): string | null {
  if (!t) return null;
  const d = t instanceof Date ? t : new Date(t);
  return Number.isFinite(d.getTime()) ? d.toISOString() : null;
}
