/**
 * What the harness needs to know about the service it verifies, in one object. The core (targets,
 * load engine, evidence, experiments) knows no app: an experiment asks the profile for the
 * workload, a release, an image, the load to drive and the app's own checks. The license API's
 * profile is `apps/license-api/`; another service would bring its own.
 */
import type { ReleaseSpec } from '../lib/kube/deploy.ts';
import type { KubeObject } from '../lib/kube/render.ts';
import type { IdentityHeaders, Scenario } from '../lib/load/index.ts';
import type { ImageSource, Target, TargetKind } from '../cluster/target.ts';

export interface Workload {
  namespace: string;
  deployment: string;
  container: string;
  /** Label selector of the workload's pods. */
  selector: string;
  /** The Service in front of it, and its NodePort (reachable from this machine on embedded/kind). */
  service: string;
  nodePort: number;
  /** A GET path that answers 200 when a pod can serve (the readiness endpoint). */
  readyPath: string;
}

/**
 * A deliberate fault: a broken release of the same code, switched on by configuration, off by
 * default, and named as a fault in every report. Detector tests use them to show the harness sees
 * what it claims to see.
 */
export interface Fault {
  name: string;
  /** What is broken, in one sentence. */
  what: string;
  /** Which release of a rollout carries it: the one going away (`from`) or the new one (`to`). */
  side: 'from' | 'to';
  env?: Record<string, string>;
  /** A change to the rendered manifests (e.g. no preStop hook). */
  transform?: (objects: KubeObject[]) => void;
}

/** Client sessions the app keeps (seats, carts, logins): for the sessions-preserved gate. */
export interface SessionControl {
  /** Opens `n` sessions and returns their ids. */
  open(n: number): Promise<string[]>;
  /** Which of them still work (an extend/heartbeat call succeeds), with what the others answered. */
  check(ids: string[]): Promise<{ alive: string[]; dead: Array<{ id: string; status: number; body: string }> }>;
  /** Ends them (best effort, never throws). */
  close(ids: string[]): Promise<void>;
  /** How many sessions the app holds open in all (for a leak check), or null when it does not say. */
  activeCount(): Promise<number | null>;
}

/** The profile bound to one running target: credentials, load and sessions. */
export interface AppConnection {
  /**
   * The load the experiments drive: a mix of the app's real client flows. `sessions` are
   * long-lived sessions the mix may use for high-rate cheap requests (e.g. heartbeats).
   */
  scenario(o: { sessions?: string[] }): Scenario;
  /** Mean HTTP requests per iteration of `scenario` (to turn a request rate into an arrival rate). */
  requestsPerIteration(o: { sessions?: string[] }): number;
  sessions?: SessionControl;
}

export interface AppProfile {
  name: string;
  workload: Workload;
  /** Response headers naming the pod that answered and the app version (ledger attribution). */
  identityHeaders: Required<IdentityHeaders>;
  /** Deliberate faults by name. */
  faults: Record<string, Fault>;
  /**
   * The fault that makes a release drop requests on SIGTERM (no preStop delay, immediate exit): the
   * control the sigterm-drain experiment runs to prove the harness sees that failure. Absent: that
   * experiment is INCONCLUSIVE for this app.
   */
  naiveShutdown?: Fault;
  /**
   * The app's dependencies a target may take away (dependency-outage): for each, what needs it in
   * words, and the load steps that cannot succeed without it (all others must keep working).
   */
  dependencies: Array<{ name: string; neededBy: string; steps: string[] }>;
  /**
   * Images a target that loads images needs besides the app's own (the in-cluster dependencies of
   * its overlay), for the target kind given; loaded before the releases.
   */
  supportImages?(target: TargetKind): ImageSource[];
  /** How to build `tag` for a target that loads images. */
  image(tag: string): ImageSource;
  /** The manifests of release `tag` on a target of this kind, with faults applied. */
  release(tag: string, target: TargetKind, faults?: Fault[]): ReleaseSpec;
  /** Binds the profile to a target reachable at `baseUrl`. */
  connect(target: Target, baseUrl: string): Promise<AppConnection>;
}
