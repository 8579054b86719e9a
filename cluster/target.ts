/**
 * Where the harness runs: one interface for every target cluster, with optional capabilities in a
 * typed map (kubernetes-sigs/e2e-framework's optional interfaces: ./capabilities.ts), and
 * strategies tried in order when the user does not name one (the testcontainers shape: each
 * strategy says why it cannot run here, and one clear error lists them all at the end).
 *
 * - `embedded`: a cluster the harness makes here (real control plane, process node agent; root).
 * - `kind`: a kind cluster (needs Docker and kind).
 * - `existing`: a kubeconfig context someone else runs; never created or deleted by the harness.
 */
import type { k8s } from '../lib/kube/client.ts';
import { CAPABILITIES, type Capabilities, type Capability } from './capabilities.ts';

export * from './capabilities.ts';

export type TargetKind = 'embedded' | 'kind' | 'existing';

/** A target known to have the capabilities `K` (not optional there). */
export type TargetWith<K extends Capability = never> = Target & { readonly [P in K]-?: Capabilities[P] };

/** The capabilities of `needs` that `target` lacks, in order. */
export function missingCapabilities(target: Target, needs: readonly Capability[]): Capability[] {
  return needs.filter((n) => !target[n]);
}

/** True when `target` has every capability of `needs`: then it is a TargetWith them. */
export function hasCapabilities<K extends Capability>(target: Target, needs: readonly K[]): target is TargetWith<K> {
  return missingCapabilities(target, needs).length === 0;
}

/** "the kind target cannot load images or take dependencies away" */
export function cannotSentence(target: Target, missing: readonly Capability[]): string {
  return `the ${target.kind} target cannot ${missing.map((m) => CAPABILITIES[m].does).join(' or ')}`;
}

/**
 * What a workload deployed on a target can count on. An app profile picks its manifests and
 * credentials from this, never from the target's kind, so a new kind of target needs no change there.
 */
export interface Platform {
  /**
   * Where the app's backing services (database, cache) come from: `host`, the target runs them on
   * this machine, reached by its pods at their gateway (embedded); `in-cluster`, the app's manifests
   * bring them, from images the harness loads (kind); `external`, the platform's own, run by someone
   * else (managed services behind an existing cluster).
   */
  readonly services: 'host' | 'in-cluster' | 'external';
  /**
   * `throwaway`: a cluster on this machine that only the harness uses, where an app's development
   * secrets are fine; `provided`: someone's cluster, whose credentials come from the environment.
   */
  readonly secrets: 'throwaway' | 'provided';
  /**
   * With services `host`: the address the pods reach them at (the embedded cluster's pod gateway,
   * which differs per network slot); an app's manifests may name another, which its profile rewrites.
   */
  readonly hostServicesAddress?: string;
}

export interface Target extends AsyncDisposable, Readonly<Partial<Capabilities>> {
  readonly kind: TargetKind;
  /** What a workload deployed here can count on (the app profile reads this, not `kind`). */
  readonly platform: Platform;
  /** Cluster name (embedded, kind) or context name (existing). */
  readonly name: string;
  /** The kubeconfig context, when there is one by name. */
  readonly context: string | null;
  readonly kubeConfig: k8s.KubeConfig;
  /** A kubeconfig file for kubectl (null when the config came from elsewhere). */
  readonly kubeconfigPath: string | null;
  /** True when the harness created the cluster (throw-away), false when it found it. */
  readonly owned: boolean;
  /** Base URL of a NodePort Service from this machine. Throws when the target cannot reach it. */
  serviceUrl(nodePort: number): string;
  /**
   * Networks this target made on this machine (private CIDRs) where its Services are reached, e.g.
   * kind's docker network: load may go there as it goes to loopback. Absent: loopback only.
   */
  readonly harnessNetworks?: string[];
  /** The data plane's modelled endpoint lag (ms) where the harness sets it, else null (unknown, real). */
  readonly endpointLagMs: number | null;
  /** The apiserver's version (gitVersion), or null when it cannot be read. */
  serverVersion(): Promise<string | null>;
  /** Stops what the harness created; leaves a cluster it only found. Idempotent. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Cluster name (embedded, kind). */
  name?: string;
  nodes?: number;
  stateDir?: string;
  /** Embedded only: the Service proxy's endpoint lag (default DEFAULT_ENDPOINT_LAG_MS, 1100 ms, measured on kube-proxy on kind). */
  endpointLagMs?: number;
  /** Existing only: a base URL that reaches the Service from here (default: none, so load cannot run). */
  serviceUrl?: string;
  /** Existing only: the kubeconfig context (set from `context:<name>`). */
  context?: string;
  /**
   * Embedded only: attach to the cluster `verdict cluster up` runs under `name` (or `stateDir`)
   * instead of making one; it is left running. Fails with TargetUnavailableError when none runs.
   */
  attach?: boolean;
  kubeconfig?: string;
  onProgress?: (message: string) => void;
  signal?: AbortSignal;
}

export interface TargetStrategy {
  readonly kind: TargetKind;
  /** Whether it can run here; if not, what to do about it (one sentence, names the fix). */
  available(): Promise<{ ok: true } | { ok: false; reason: string }>;
  open(opts: OpenOptions): Promise<Target>;
}

/** `embedded`, `kind`, `context:<name>` or `auto` (the strategies in order): the value of every `--target`. */
export type TargetSpec = 'auto' | 'embedded' | 'kind' | `context:${string}`;

export class TargetUnavailableError extends Error {}

/** The one parser of `--target` (and of a bare `--context <name>`, as `context:<name>`). */
export function parseTargetSpec(v: string): TargetSpec {
  if (v === 'auto' || v === 'embedded' || v === 'kind') return v;
  if (v.startsWith('context:')) {
    const name = v.slice('context:'.length);
    if (/^[A-Za-z0-9_.:@/-]{1,253}$/.test(name)) return v as TargetSpec;
    throw new Error(
      `${JSON.stringify(name)} is not a kubeconfig context name the harness takes: letters, digits and _ . : @ / -, at most 253`,
    );
  }
  throw new Error(`unknown target "${v}": use embedded, kind, context:<kubeconfig context> or auto`);
}

/** What a spec names: the kind of target (`auto` before a strategy is picked) and, for `existing`, the context. */
export function specTarget(spec: TargetSpec): { kind: TargetKind | 'auto'; context: string | null } {
  if (spec.startsWith('context:')) return { kind: 'existing', context: spec.slice('context:'.length) };
  return { kind: spec as TargetKind | 'auto', context: null };
}

/**
 * Opens the target `spec` names; for `auto`, the first strategy that is available, in order. When
 * none can run, one error lists every strategy with its reason.
 */
export async function openTarget(spec: TargetSpec, strategies: TargetStrategy[], opts: OpenOptions = {}): Promise<Target> {
  const { kind, context } = specTarget(spec);
  const wanted = strategies.filter((s) => (kind === 'auto' ? s.kind !== 'existing' : s.kind === kind));
  if (wanted.length === 0) throw new TargetUnavailableError(`no strategy for target ${spec}`);
  const reasons: string[] = [];
  for (const s of wanted) {
    const a = await s.available();
    if (!a.ok) {
      reasons.push(`${s.kind}: ${a.reason}`);
      continue;
    }
    opts.onProgress?.(`target: ${s.kind}`);
    return await s.open(context ? { ...opts, context } : opts);
  }
  throw new TargetUnavailableError(`no target can run here:\n  ${reasons.join('\n  ')}`);
}
