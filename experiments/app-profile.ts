/**
 * What the harness needs to know about the service it verifies, in one object. The core (targets,
 * load engine, evidence, experiments) knows no app: an experiment asks the profile for the
 * workload, a release, an image, the load to drive and the app's own checks. The license API's
 * profile is `apps/license-api/`; another service would bring its own.
 */
import type { ReleaseSpec } from '../lib/kube/deploy.ts';
import type { KubeObject } from '../lib/kube/render.ts';
import type { IdentityHeaders, Scenario } from '../lib/load/index.ts';
import type { CredentialSource } from '../lib/load/credentials.ts';
import type { CryptoKey } from 'jose';
import type { ImageSource, Platform, Target } from '../cluster/target.ts';
import type { SuiteCheck } from '../lib/checks/suite.ts';

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

/** A held session and the app's last answer about it (a session that no longer works, or would not end). */
export interface SessionAnswer {
  id: string;
  status: number;
  body: string;
}

/** Client sessions the app keeps (seats, carts, logins): for the sessions-preserved gate. */
export interface SessionControl {
  /** Opens `n` sessions and returns their ids. */
  open(n: number): Promise<string[]>;
  /** Which of them still work (an extend/heartbeat call succeeds), with what the others answered. */
  check(ids: string[]): Promise<{ alive: string[]; dead: SessionAnswer[] }>;
  /**
   * Ends them (retrying what a busy or restarting service refuses; never throws) and returns those it
   * could not end, with the last answer: their seats are the harness's, not a leak of the release.
   */
  close(ids: string[]): Promise<SessionAnswer[]>;
  /** How many sessions the app holds open in all (for a leak check), or null when it does not say. */
  activeCount(): Promise<number | null>;
}

/** What the load mix is built for. */
export interface LoadMix {
  sessions?: string[];
  /** Requests/s the load runs at. */
  rate?: number;
  /** The bearer credential to send, asked for every request (a token that changes during the run); absent: the connection's own. */
  credentials?: CredentialSource;
}

/**
 * A request each pod answers through its own connections to a dependency, changing nothing (e.g.
 * a lookup of a session that does not exist, through the pool the requests use): after an outage
 * the harness asks it at each pod's address, `burst` times at once, more than the pod's pool
 * holds, so that every pooled connection is drawn.
 */
export interface DependencyCheck {
  burst: number;
  /** Asks the pod at `baseUrl` (`http://<pod address>:<port>`); null when the answer says its connection works, else what went wrong. */
  ask(baseUrl: string): Promise<string | null>;
}

/** A signing key of the harness's own issuer (the key-rotation rehearsal): its id, algorithm and private key. */
export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
}

/**
 * How the app verifies tokens against a key set the harness publishes (JWKS), for the key-rotation
 * rehearsal: the release's settings that point it at the set, what it reads of them back from the
 * rendered manifests, and how a token it accepts for the load is made.
 */
export interface SignedTokens {
  /** Environment that makes a release verify tokens against the key set at `url` (and nothing else). */
  env(url: string): Record<string, string>;
  /**
   * How long a pod may keep verifying with a key set it fetched before it fetches it again, from the
   * container's merged environment (ConfigMap values and env), with where the value came from.
   */
  keySetRefreshMs(env: Record<string, string>): { ms: number; source: string };
  /** A token for the load signed with `key`, valid for `lifetimeSeconds`. */
  mint(key: SigningKey, lifetimeSeconds: number): Promise<string>;
  /** Sends the pod at `baseUrl` one request with `token` that changes nothing; its HTTP status (401: the token was refused). */
  ask(baseUrl: string, token: string): Promise<number>;
}

/** The profile bound to one running target: credentials, load and sessions. */
export interface AppConnection {
  /**
   * The load the experiments drive: a mix of the app's real client flows. `sessions` are
   * long-lived sessions the mix may use for high-rate cheap requests (e.g. heartbeats); `rate` is
   * the requests/s it will run at (for clients whose connections must sit idle a given time).
   */
  scenario(o: LoadMix): Scenario;
  /** Mean HTTP requests per iteration of `scenario` (to turn a request rate into an arrival rate). */
  requestsPerIteration(o: LoadMix): number;
  /**
   * The same load as `scenario`, for load agents in the cluster: a module whose default export is
   * the scenario (bundled into the agent) and the environment it reads. Absent: no agents.
   */
  agentScenario?(o: LoadMix): { module: string; env: Record<string, string> };
  sessions?: SessionControl;
  /** The check of each pod's connections to `dependency` once it is back (the stale-connection sweep); undefined: none. */
  dependencyCheck?(dependency: string): DependencyCheck | undefined;
}

/** What a smoke run is given (the `verdict smoke` flags). */
export interface SmokeOptions {
  /** Base URL of the service. */
  url: string;
  /** Credentials for the app's authenticated endpoints, or null (only what needs none runs). */
  token: string | null;
  /** The version the service must report, when given. */
  expectVersion?: string;
  /** Only checks that write nothing (the runner leaves out `writes: true` checks). */
  readOnly: boolean;
  /** A short id of this run, for recognisable names of what the smoke creates (e.g. hardware ids). */
  runId: string;
  /** Overrides every check's latency budget (ms). */
  budgetMs?: number;
}

/** The app's smoke suite: a handful of requests, safe against production. */
export interface SmokeSuite {
  /** The checks in order; those that change state say `writes: true` and undo what they did through the cleanup registry. */
  checks(o: SmokeOptions): SuiteCheck[];
  /** What a write run creates at most, and that it is always undone (stated in `verdict smoke --help`). */
  writesAtMost: string;
  /** Environment variables that may hold the token, in order (`--token` wins). */
  tokenEnv: string[];
  // A check that sent the token and had it refused says so in its observed values:
  // `token_refused: true` and `token_error` (the service's error code, e.g. "TOKEN_EXPIRED"), so
  // that a gate can tell "the token expired" from "the service is broken".
}

/** One health endpoint and what it must answer on a healthy, serving instance. */
export interface ProbeEndpoint {
  probe: 'startup' | 'liveness' | 'readiness';
  path: string;
  /** In words, for the record. */
  expects: string;
  /** Why the answer is wrong, or null when it is right. */
  judge(r: { status: number; json: unknown; text: string }): string | null;
  /** The status it must answer while a dependency the app needs is gone (liveness: 200, readiness: 503), when that is part of its contract. */
  statusWithoutDependency?: number;
}

/** The app's own drain and timeout settings, read from a container's environment (for the manifest checks). */
export interface DrainSettings {
  /** How long the app keeps accepting requests after SIGTERM (while endpoint removal propagates), ms. */
  keepServingMs: number;
  /** When the app forces its own exit after SIGTERM, ms, or null when it does not. */
  forcedExitMs: number | null;
  /** The longest a request may take before the app answers it anyway, ms. */
  longestRequestMs: number;
  /** The app drops requests in flight on SIGTERM (a deliberately naive shutdown). */
  dropsInFlight: boolean;
  /** The timeout of the dependency checks behind readiness, ms (must be below the probe's timeoutSeconds), or null. */
  readinessCheckTimeoutMs: number | null;
  /** Where each value came from, e.g. {keepServingMs: 'SHUTDOWN_DELAY_MS=3000 (ConfigMap license-api-config)'}. */
  sources: Partial<Record<'keepServingMs' | 'forcedExitMs' | 'longestRequestMs' | 'readinessCheckTimeoutMs', string>>;
}

/** What the probe checks know of the app's health endpoints and shutdown. */
export interface ProbeDescription {
  endpoints: ProbeEndpoint[];
  /** The app's drain settings from the container's environment (ConfigMap values and env merged). */
  drain(env: Record<string, string>): DrainSettings;
}

export interface AppProfile {
  name: string;
  workload: Workload;
  /** Response headers naming the pod that answered and the app version (ledger attribution). */
  identityHeaders: Required<IdentityHeaders>;
  /**
   * The answers that mean "no such resource" for a request that names one (a session, a cart): a
   * request the load tagged with the version and pod that created its resource, answered so by
   * another version or pod, is state the two do not share (cause `state-not-shared`). Absent: 404
   * and 410.
   */
  unknownResource?: { statuses: number[]; what?: string };
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
  dependencies: Array<{
    name: string;
    neededBy: string;
    steps: string[];
    /** What it is, for the rehearsals that take one kind away (database-maintenance, cache-failover). */
    kind?: 'database' | 'cache';
  }>;
  /**
   * Images a target that loads images needs besides the app's own (the in-cluster dependencies of
   * its overlay), on the platform given; loaded before the releases.
   */
  supportImages?(platform: Platform): ImageSource[];
  /** How to build `tag` for a target that loads images. */
  image(tag: string): ImageSource;
  /** The manifests of release `tag` for a target offering `platform` (`target.platform`), with faults applied. */
  release(tag: string, platform: Platform, faults?: Fault[]): ReleaseSpec;
  /** Binds the profile to a target reachable at `baseUrl`. */
  connect(target: Target, baseUrl: string): Promise<AppConnection>;
  /** The smoke suite (`verdict smoke`); absent: the app has none. */
  smoke?: SmokeSuite;
  /** The health endpoints and shutdown settings (`verdict probes`); absent: only the manifests' generic rules apply. */
  probes?: ProbeDescription;
  /** Tokens signed with keys of a key set the harness publishes (key-rotation); absent: that rehearsal is INCONCLUSIVE. */
  signedTokens?: SignedTokens;
}
