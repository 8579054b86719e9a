/**
 * Where the harness runs: one interface for every target cluster, with optional capabilities
 * (the e2e-framework shape: providers behind one interface), and strategies tried in order when
 * the user does not name one (the testcontainers shape: each strategy says why it cannot run here,
 * and one clear error lists them all at the end).
 *
 * - `embedded`: a cluster the harness makes here (real control plane, process node agent; root).
 * - `kind`: a kind cluster (needs Docker and kind).
 * - `existing`: a kubeconfig context someone else runs; never created or deleted by the harness.
 */
import type { k8s } from '../lib/kube/client.ts';

export type TargetKind = 'embedded' | 'kind' | 'existing';

/** How to make an image: a bundle for the embedded image store, a Docker build for kind. */
export interface ImageSource {
  /** `name:tag`, e.g. `license-api:v2`. */
  ref: string;
  /** Writes the app's files into `dir`; the image runs `cmd` there (the embedded image store). */
  bundle?: { fill(dir: string): Promise<void>; cmd: string[] };
  /** `docker build` of a context (kind: then `kind load docker-image`). */
  docker?: { context: string; dockerfile?: string; buildArgs?: Record<string, string> };
}

/** The target can make a locally built image runnable in the cluster. */
export interface ImageLoader {
  load(image: ImageSource, onProgress?: (m: string) => void): Promise<void>;
}

/** The target knows which pod a client connection (by its local port) was forwarded to. */
export interface ConnectionAttribution {
  podOf(clientPort: number): string | undefined;
}

/**
 * Pods reach this machine and the cluster's NodePort Services at known addresses (the embedded
 * cluster: its pod network's gateway), so the harness can run things in pods that talk back to it,
 * e.g. distributed load agents that target a Service and report to a collector here.
 */
export interface PodReach {
  /** An address of this machine that pods connect to (bind a server there for them). */
  harnessAddress: string;
  /** Base URL of a NodePort Service as pods see it. */
  serviceUrl(nodePort: number): string;
  /** CIDRs of the networks the harness created that these addresses lie in (for the load target guard). */
  networks: string[];
}

/** The target runs the app's dependencies itself and can take them away and bring them back. */
export interface DependencyControl {
  /** Names of the dependencies it controls, e.g. `postgres`, `redis`. */
  names(): string[];
  stop(name: string): Promise<void>;
  start(name: string): Promise<void>;
}

/**
 * The target sees its own data plane route: when each endpoint behind a node port started or
 * stopped taking new connections (the embedded Service proxy's record). Lets the harness measure
 * endpoint propagation (pod deleted → no new connection sent to it) instead of assuming it.
 */
export interface RoutingObservation {
  /** Every change of the routable endpoints (`ip:port`) behind `nodePort`, oldest first, with Date.now() times. */
  routingHistory(nodePort: number): Array<{ at: number; routable: string[] }>;
}

export interface Target extends AsyncDisposable {
  readonly kind: TargetKind;
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
  readonly images?: ImageLoader;
  readonly attribution?: ConnectionAttribution;
  readonly dependencies?: DependencyControl;
  readonly routing?: RoutingObservation;
  readonly podReach?: PodReach;
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

/** `embedded`, `kind`, `context:<name>` or `auto` (the strategies in order). */
export type TargetSpec = 'auto' | 'embedded' | 'kind' | `context:${string}`;

export class TargetUnavailableError extends Error {}

export function parseTargetSpec(v: string): TargetSpec {
  if (v === 'auto' || v === 'embedded' || v === 'kind') return v;
  if (/^context:[A-Za-z0-9_.:@/-]{1,253}$/.test(v)) return v as TargetSpec;
  throw new Error(`unknown target "${v}": use embedded, kind, context:<kubeconfig context> or auto`);
}

/**
 * Opens the target `spec` names; for `auto`, the first strategy that is available, in order. When
 * none can run, one error lists every strategy with its reason.
 */
export async function openTarget(spec: TargetSpec, strategies: TargetStrategy[], opts: OpenOptions = {}): Promise<Target> {
  const wanted =
    spec === 'auto'
      ? strategies.filter((s) => s.kind !== 'existing')
      : strategies.filter((s) => s.kind === (spec.startsWith('context:') ? 'existing' : spec));
  if (wanted.length === 0) throw new TargetUnavailableError(`no strategy for target ${spec}`);
  const reasons: string[] = [];
  for (const s of wanted) {
    const a = await s.available();
    if (!a.ok) {
      reasons.push(`${s.kind}: ${a.reason}`);
      continue;
    }
    opts.onProgress?.(`target: ${s.kind}`);
    return await s.open(spec.startsWith('context:') ? { ...opts, context: spec.slice('context:'.length) } : opts);
  }
  throw new TargetUnavailableError(`no target can run here:\n  ${reasons.join('\n  ')}`);
}
