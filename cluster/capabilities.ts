/**
 * What a target may be able to do besides being a cluster (kubernetes-sigs/e2e-framework's optional
 * interfaces, as one typed map): each capability an interface and one line in CAPABILITIES. The
 * rehearsals' faults (control plane, nodes, network) are inject/recover pairs, chaos-mesh's
 * Apply/Recover shape.
 */

/** How to make an image: a bundle for the embedded image store, a Docker build for kind. */
export interface ImageSource {
  /** `name:tag`, e.g. `license-api:v2`. */
  ref: string;
  /** Writes the app's files into `dir`; the image runs `cmd` there (the embedded image store). */
  bundle?: { fill(dir: string): Promise<void>; cmd: string[] };
  /** `docker build` of a context (kind: then `kind load docker-image`). */
  docker?: { context: string; dockerfile?: string; buildArgs?: Record<string, string> };
}

/**
 * The target can make locally built images runnable in the cluster. All of a run's images come in one
 * call, so a target that copies them into its nodes does it once (kind: one `docker save`, one import
 * per node, their shared layers once).
 */
export interface ImageLoader {
  /** Aborting `signal` (Ctrl-C) stops a build or copy under way and rejects with its reason. */
  load(images: readonly ImageSource[], onProgress?: (m: string) => void, signal?: AbortSignal): Promise<void>;
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

/**
 * A fault a target put on itself, taken back with `recover` (chaos-mesh's Apply/Recover pair): the
 * inject operation resolves once the fault is in effect, `recover` once the target is as before.
 */
export interface Injection {
  /** One line for the timeline's action, e.g. `kube-apiserver stopped (etcd kept)`. */
  readonly what: string;
  /** Takes the fault back; idempotent, and safe to call after an interrupted inject. */
  recover(signal?: AbortSignal): Promise<void>;
}

/**
 * The target can stop parts of its own control plane and start them again with their state kept
 * (the control-plane-outage rehearsal: workloads keep serving while the API is gone). The embedded
 * cluster stops its one control-plane process (`control-plane`), kind its apiserver's static pod
 * (`kube-apiserver`).
 */
export interface ControlPlaneControl {
  /** The parts it can stop, e.g. `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`, `etcd`. */
  components(): string[];
  /** Stops `component`; running pods are left alone. Recovering starts it again on the same state. */
  stop(component: string, signal?: AbortSignal): Promise<Injection>;
}

/**
 * The target can add and remove nodes (the node-pool-upgrade rehearsal): the embedded cluster's node
 * agent runs one more node, or one fewer.
 */
export interface NodeControl {
  /** Adds a node (with `labels`, e.g. its version) and resolves once it is Ready; recovering removes it again. */
  add(o?: { name?: string; labels?: Record<string, string>; signal?: AbortSignal }): Promise<Injection & { node: string }>;
  /** Removes `node` as a lost machine does (its pods go with it); recovering brings a node back in its place. */
  remove(node: string, o?: { signal?: AbortSignal }): Promise<Injection>;
}

/**
 * The target can cut the network between parts of itself (a partition). Declared for issue 21; no
 * target implements it yet.
 */
export interface NetworkControl {
  /**
   * Cuts traffic between `from` and `to` (pods, nodes or dependencies by name), both ways unless
   * `oneWay`; recovering heals it.
   */
  partition(o: { from: string[]; to: string[]; oneWay?: boolean; signal?: AbortSignal }): Promise<Injection>;
}

/** A capability's entry in the map: its words, and (as a type only) its interface. */
export interface CapabilityEntry<T> {
  /** What it lets the harness do, as "the <kind> target cannot <does>" reads. */
  readonly does: string;
  /** Never set: carries the capability's interface for the `Capabilities` type. */
  readonly interface?: T;
}

const capability = <T>(does: string): CapabilityEntry<T> => ({ does });

/**
 * Every optional capability a target may have: its key on Target, its interface and its words. A
 * new capability is its interface (above, or a file of its own) and one line here; `Target`,
 * `Experiment.needs` and the runner's "cannot" message follow from it.
 */
export const CAPABILITIES = {
  images: capability<ImageLoader>('load images'),
  dependencies: capability<DependencyControl>('take dependencies away'),
  attribution: capability<ConnectionAttribution>('tell which pod served a connection'),
  routing: capability<RoutingObservation>("observe its data plane's routing"),
  podReach: capability<PodReach>('let its pods reach this machine'),
  controlPlane: capability<ControlPlaneControl>('stop and start its control plane'),
  nodes: capability<NodeControl>('add or remove nodes'),
  network: capability<NetworkControl>('partition its network'),
};

export type Capability = keyof typeof CAPABILITIES;

/** What a target may be able to do besides being a cluster, by key: each optional on Target, each typed. */
export type Capabilities = {
  [K in Capability]: (typeof CAPABILITIES)[K] extends CapabilityEntry<infer T> ? T : never;
};
