/**
 * The zero-downtime rules of probes/manifest-lint.ts as a table: each rule has an id, the object it
 * looks at (`on`), the field, what it requires, a severity, a check and a fix. A check returns what
 * is there when the rule is broken (null when it holds); a rule whose severity depends on the
 * values (a measured start time, a propagation delay) returns its severity with what it found, and
 * such rules also report their numbers as `info` when they hold. A new rule is one entry here.
 */
import type {
  V1Container,
  V1DeploymentSpec,
  V1LifecycleHandler,
  V1PodSpec,
  V1Probe,
  V1RollingUpdateDeployment,
} from '@kubernetes/client-node';
import type { KubeObjectOf } from '../lib/kube/render.ts';
import type { DrainSettings, ProbeDescription } from '../experiments/app-profile.ts';

export type Severity = 'error' | 'warning' | 'info';

/** A value measured on a running system, and how. */
export interface Measured {
  ms: number;
  /** e.g. "pod created → Ready, longest of 3 pods, from the cluster's pod conditions". */
  source: string;
}

export interface Measurements {
  /** How long a pod of the workload takes from creation to Ready (an upper bound of its start time). */
  startMs?: Measured;
  /** How long after a pod's deletion the data plane stops sending it new connections. */
  propagationMs?: Measured;
}

export interface LintOptions {
  /** Deployments to hold to the zero-downtime rules (default: all). Backing services such as a
   *  single-replica Postgres legitimately use Recreate. */
  deployments?: string[];
  /** The app's probe endpoints and drain settings (the app profile's `probes`). */
  app?: ProbeDescription;
  measured?: Measurements;
  /** What to assume for the propagation delay when it was not measured. Default 1000 ms, kube-proxy's minSyncPeriod. */
  assumedPropagation?: Measured;
}

export const DEFAULT_ASSUMED_PROPAGATION: Measured = {
  ms: 1000,
  source:
    "kube-proxy's default minSyncPeriod (1 s); a cloud load balancer's endpoint sync (e.g. GKE NEGs) can take several seconds more: measure it",
};

type Deployment = KubeObjectOf<'Deployment'>;

/** A Deployment held to the rules, with what belongs to it. Its parts may be missing in a manifest that is wrong. */
export interface DeploymentSubject {
  object: Deployment;
  spec: Partial<V1DeploymentSpec>;
  replicas: number;
  rollingUpdate: V1RollingUpdateDeployment;
  podSpec: Partial<V1PodSpec>;
  pdbs: Array<KubeObjectOf<'PodDisruptionBudget'>>;
}

/** A PodDisruptionBudget selecting the Deployment's pods. */
export interface PdbSubject {
  object: KubeObjectOf<'PodDisruptionBudget'>;
  replicas: number;
  minAvailable: unknown;
  maxUnavailable: unknown;
}

/** One container of the Deployment, with its probes and its drain settings (from the app profile). */
export interface ContainerSubject {
  object: Deployment;
  c: V1Container;
  /** `spec.template.spec.containers[<name>]` */
  at: string;
  readiness?: V1Probe;
  liveness?: V1Probe;
  startup?: V1Probe;
  /** terminationGracePeriodSeconds */
  grace: number;
  drain: DrainSettings | null;
  preStopMs: number;
  opts: LintOptions;
}

/** One probe of a container. */
export interface ProbeSubject {
  object: Deployment;
  container: ContainerSubject;
  kind: 'readiness' | 'liveness' | 'startup';
  probe: V1Probe;
}

/** A port of a Service that selects the Deployment's pods. */
export interface PortSubject {
  object: KubeObjectOf<'Service'>;
  deployment: Deployment;
  targetPort: unknown;
}

/** A Service with a selector, and every Deployment of the manifests. */
export interface ServiceSubject {
  object: KubeObjectOf<'Service'>;
  deployments: Deployment[];
}

export interface Subjects {
  deployment: DeploymentSubject;
  pdb: PdbSubject;
  container: ContainerSubject;
  probe: ProbeSubject;
  'service-port': PortSubject;
  service: ServiceSubject;
}

/** What a broken rule found. `severity`, `fix` and `message` replace the rule's when the values decide them. */
export interface Found {
  measured: string;
  severity?: Severity;
  field?: string;
  fix?: string;
  message?: string;
}

export interface RuleOn<K extends keyof Subjects> {
  id: string;
  on: K;
  field: string | ((s: Subjects[K]) => string);
  required: string | ((s: Subjects[K]) => string);
  severity: Severity;
  check(s: Subjects[K]): Found | null;
  fix: string | ((s: Subjects[K]) => string);
}

export type Rule = { [K in keyof Subjects]: RuleOn<K> }[keyof Subjects];

const rule = <K extends keyof Subjects>(r: RuleOn<K>): Rule => r as unknown as Rule;
const s = (ms: number) => `${+(ms / 1000).toFixed(2)} s`;
const oneLess = (replicas: number) => Math.max(1, replicas - 1);
const zero = (v: unknown) => String(v) === '0' || String(v) === '0%';

const CAPACITY: Rule[] = [
  rule({
    id: 'replicas.min-two',
    on: 'deployment',
    field: 'spec.replicas',
    severity: 'error',
    required: 'at least 2, so that one pod restarting, terminating or being evicted leaves another serving',
    check: (d) => (d.replicas < 2 ? { measured: `${d.replicas}` } : null),
    fix: 'set spec.replicas: 2 or more (the seed runs 3)',
  }),
  rule({
    id: 'rollout.strategy',
    on: 'deployment',
    field: 'spec.strategy.type',
    severity: 'error',
    required: 'RollingUpdate',
    check: (d) =>
      (d.spec.strategy?.type ?? 'RollingUpdate') !== 'RollingUpdate' ? { measured: String(d.spec.strategy?.type) } : null,
    fix: 'use strategy RollingUpdate: Recreate takes every pod down at once',
  }),
  rule({
    id: 'rollout.max-unavailable',
    on: 'deployment',
    field: 'spec.strategy.rollingUpdate.maxUnavailable',
    severity: 'error',
    required: '0, so ready pods never drop below replicas during a rollout',
    check: ({ rollingUpdate: ru }) =>
      String(ru.maxUnavailable ?? '25%') !== '0' && String(ru.maxUnavailable) !== '0%'
        ? { measured: `${ru.maxUnavailable ?? '25% (the default)'}` }
        : null,
    fix: 'set maxUnavailable: 0 (with maxSurge: 1)',
  }),
  rule({
    id: 'rollout.max-surge',
    on: 'deployment',
    field: 'spec.strategy.rollingUpdate.maxSurge',
    severity: 'error',
    required: 'at least 1 when maxUnavailable is 0, or the rollout cannot make progress',
    check: ({ rollingUpdate: ru }) => (zero(ru.maxSurge ?? '25%') ? { measured: `${ru.maxSurge}` } : null),
    fix: 'set maxSurge: 1',
  }),
  rule({
    id: 'pdb.missing',
    on: 'deployment',
    field: 'PodDisruptionBudget',
    severity: 'warning',
    required: 'a PodDisruptionBudget that keeps capacity during node drains',
    check: (d) => (d.pdbs.length === 0 ? { measured: 'none selects these pods' } : null),
    fix: (d) => `add a PodDisruptionBudget with minAvailable: ${oneLess(d.replicas)} selecting these pods`,
  }),
  rule({
    id: 'pdb.blocks-drain',
    on: 'pdb',
    field: 'spec.minAvailable',
    severity: 'error',
    required: 'below replicas, so that one pod can be evicted',
    check: ({ minAvailable: min, replicas }) =>
      typeof min === 'number' && min >= replicas
        ? {
            measured: `${min} with ${replicas} replicas`,
            message: `minAvailable ${min} >= replicas ${replicas}: no pod can ever be evicted, node drains hang`,
          }
        : null,
    fix: (p) => `set minAvailable: ${oneLess(p.replicas)}`,
  }),
  rule({
    id: 'pdb.keeps-capacity',
    on: 'pdb',
    field: (p) => (p.minAvailable !== undefined ? 'spec.minAvailable' : 'spec.maxUnavailable'),
    severity: 'warning',
    required: 'a budget that keeps at least one pod through voluntary disruptions',
    check: ({ minAvailable: min, maxUnavailable: maxU, replicas }) =>
      (min !== undefined && zero(min)) || (typeof maxU === 'number' && maxU >= replicas) || String(maxU) === '100%'
        ? {
            measured: `${min !== undefined ? `minAvailable ${JSON.stringify(min)}` : `maxUnavailable ${JSON.stringify(maxU)}`} with ${replicas} replicas`,
          }
        : null,
    fix: (p) => `set minAvailable: ${oneLess(p.replicas)}`,
  }),
  rule({
    id: 'security.run-as-non-root',
    on: 'deployment',
    field: 'spec.template.spec.securityContext.runAsNonRoot',
    severity: 'warning',
    required: 'true',
    check: ({ podSpec }) =>
      podSpec.securityContext?.runAsNonRoot ? null : { measured: `${podSpec.securityContext?.runAsNonRoot ?? 'unset'}` },
    fix: 'set securityContext.runAsNonRoot: true (and a runAsUser)',
  }),
];

/** The app's endpoint for `kind` of probe, from its profile. */
const endpointOf = (c: ContainerSubject, kind: ProbeSubject['kind']) => c.opts.app?.endpoints.find((e) => e.probe === kind);

const PROBES: Rule[] = [
  rule({
    id: 'probe.readiness-missing',
    on: 'container',
    field: (c) => `${c.at}.readinessProbe`,
    severity: 'error',
    required: 'a readiness probe',
    check: (c) => (c.readiness ? null : { measured: 'none' }),
    fix: "add a readinessProbe on the app's readiness endpoint: without one, pods receive traffic before they can serve it",
  }),
  rule({
    id: 'probe.liveness-missing',
    on: 'container',
    field: (c) => `${c.at}.livenessProbe`,
    severity: 'warning',
    required: 'a liveness probe',
    check: (c) => (c.liveness ? null : { measured: 'none' }),
    fix: 'add a livenessProbe on an endpoint that checks only the process itself',
  }),
  rule({
    id: 'probe.timeout-over-period',
    on: 'probe',
    field: (p) => `${p.container.at}.${p.kind}Probe.timeoutSeconds`,
    severity: 'warning',
    required: 'at most periodSeconds',
    check: ({ probe }) =>
      (probe.timeoutSeconds ?? 1) > (probe.periodSeconds ?? 10)
        ? { measured: `${probe.timeoutSeconds ?? 1} s (periodSeconds ${probe.periodSeconds ?? 10})` }
        : null,
    fix: (p) => `lower timeoutSeconds to ${p.probe.periodSeconds ?? 10} or less`,
  }),
  rule({
    id: 'probe.success-threshold',
    on: 'probe',
    field: (p) => `${p.container.at}.${p.kind}Probe.successThreshold`,
    severity: 'error',
    required: '1 (the API rejects anything else for liveness and startup)',
    check: ({ kind, probe }) =>
      kind !== 'readiness' && (probe.successThreshold ?? 1) !== 1 ? { measured: `${probe.successThreshold}` } : null,
    fix: 'remove successThreshold or set it to 1',
  }),
  rule({
    id: 'probe.path',
    on: 'probe',
    field: (p) => `${p.container.at}.${p.kind}Probe.httpGet.path`,
    severity: 'error',
    required: (p) => {
      const own = endpointOf(p.container, p.kind)!;
      return `the app's ${p.kind} endpoint ${own.path} (${own.expects})`;
    },
    check: ({ container, kind, probe }) => {
      const own = endpointOf(container, kind);
      const path = probe.httpGet?.path;
      if (!own || path === undefined || path === own.path) return null;
      return { measured: path, severity: kind === 'liveness' ? 'warning' : 'error' };
    },
    fix: (p) => `set httpGet.path: ${endpointOf(p.container, p.kind)!.path}`,
  }),
  rule({
    id: 'probe.liveness-equals-readiness',
    on: 'container',
    field: (c) => `${c.at}.livenessProbe`,
    severity: 'error',
    required: 'liveness and readiness to be different checks: readiness may fail for a shared dependency, liveness must not',
    check: ({ at, liveness, readiness }) =>
      liveness && readiness && probeKey(liveness) !== null && probeKey(liveness) === probeKey(readiness)
        ? {
            measured: `the same check as readiness (${probeKey(liveness)})`,
            message: `${at}: liveness and readiness are the same check; a dependency outage would restart every pod`,
          }
        : null,
    fix: (c) => `point livenessProbe at ${endpointOf(c, 'liveness')?.path ?? 'an endpoint that checks only the process'}`,
  }),
  rule({
    id: 'probe.liveness-on-dependencies',
    on: 'container',
    field: (c) => `${c.at}.livenessProbe.httpGet.path`,
    severity: 'error',
    required: 'a liveness endpoint that does not depend on Postgres or Redis',
    check: ({ opts, liveness, readiness }) => {
      const dependent = (opts.app?.endpoints ?? [])
        .filter((e) => e.statusWithoutDependency !== undefined && e.statusWithoutDependency >= 500)
        .map((e) => e.path);
      const path = liveness?.httpGet?.path;
      return path && dependent.includes(path) && probeKey(liveness) !== probeKey(readiness)
        ? { measured: `${path}, which fails while a dependency is away` }
        : null;
    },
    fix: (c) => `point livenessProbe at ${endpointOf(c, 'liveness')?.path}`,
  }),
  rule({
    id: 'startup.budget',
    on: 'container',
    field: (c) => `${c.at}.${c.startup ? 'startupProbe' : 'livenessProbe'}`,
    severity: 'info',
    required: 'a startup budget above the start time, with room for a slow start (at least twice it)',
    check: startupBudget,
    fix: 'none needed',
  }),
];

/** Startup: the budget the kubelet gives before liveness may kill the container, against the start time. */
function startupBudget(c: ContainerSubject): Found | null {
  const { startup: sp, liveness: lp, readiness: rp } = c;
  const probe = sp ?? lp;
  if (!probe) return null;
  const which = sp ? 'startupProbe' : 'livenessProbe';
  const [delay, period, failures] = [probe.initialDelaySeconds ?? 0, probe.periodSeconds ?? 10, probe.failureThreshold ?? 3];
  const budgetMs = (delay + period * failures) * 1000;
  const formula = `initialDelaySeconds ${delay} + periodSeconds ${period} × failureThreshold ${failures} = ${s(budgetMs)}`;
  const m = c.opts.measured?.startMs;
  const expected = (lp?.initialDelaySeconds ?? rp?.initialDelaySeconds ?? 0) * 1000;
  const start =
    m ??
    (expected > 0
      ? {
          ms: expected,
          source: `the manifest's own ${lp?.initialDelaySeconds ? 'livenessProbe' : 'readinessProbe'}.initialDelaySeconds (the start time its author expected)`,
        }
      : null);
  if (!start) return null;
  const tag = m ? `measured ${s(start.ms)} (${start.source})` : `not measured; assumed ${s(start.ms)} from ${start.source}`;
  const severity: Severity = budgetMs <= start.ms ? (m ? 'error' : 'warning') : budgetMs < 2 * start.ms ? 'warning' : 'info';
  return {
    measured: `budget ${formula}; start time ${tag}`,
    severity,
    fix:
      severity === 'info'
        ? 'none needed'
        : `raise ${which}.failureThreshold to ${Math.ceil(((2 * start.ms) / 1000 - delay) / period)} or more${sp ? '' : ', or add a startupProbe'}`,
  };
}

const DRAIN: Rule[] = [
  rule({
    id: 'drain.prestop-vs-propagation',
    on: 'container',
    field: (c) => `${c.at}.lifecycle.preStop`,
    severity: 'info',
    required:
      'the pod keeps accepting new connections longer than the data plane takes to stop sending them (at least twice as long)',
    check: preStopVsPropagation,
    fix: 'none needed',
  }),
  rule({
    id: 'drain.naive',
    on: 'container',
    field: (c) => `${c.at}.env`,
    severity: 'error',
    required: 'a graceful shutdown that finishes requests in flight',
    check: ({ drain, at }) =>
      drain?.dropsInFlight
        ? {
            measured: drain.sources.keepServingMs ?? 'drops requests in flight on SIGTERM',
            message: `${at} runs with SHUTDOWN_MODE=naive: in-flight requests are dropped on SIGTERM`,
          }
        : null,
    fix: 'remove the naive shutdown setting (SHUTDOWN_MODE=naive)',
  }),
  rule({
    id: 'drain.grace-period',
    on: 'container',
    field: 'spec.template.spec.terminationGracePeriodSeconds',
    severity: 'info',
    required: "terminationGracePeriodSeconds ≥ preStop + the app's drain + its longest request",
    check: ({ drain, preStopMs, grace }) => {
      if (!drain) return null;
      const keepMs = drain.keepServingMs;
      const needMs = preStopMs + keepMs + drain.longestRequestMs;
      const severity: Severity = grace * 1000 < needMs ? 'error' : 'info';
      return {
        measured: `${grace} s; preStop ${s(preStopMs)} + keep serving ${s(keepMs)} + longest request ${s(drain.longestRequestMs)} (${drain.sources.longestRequestMs}) = ${s(needMs)}`,
        severity,
        fix: severity === 'info' ? 'none needed' : `set terminationGracePeriodSeconds: ${Math.ceil(needMs / 1000) + 5}`,
      };
    },
    fix: 'none needed',
  }),
  rule({
    id: 'drain.exceeds-grace',
    on: 'container',
    field: 'spec.template.spec.terminationGracePeriodSeconds',
    severity: 'error',
    required: "the app exits on its own before the kubelet's SIGKILL",
    check: ({ drain, preStopMs, grace, at }) =>
      drain && drain.forcedExitMs !== null && preStopMs + drain.forcedExitMs >= grace * 1000 && !drain.dropsInFlight
        ? {
            measured: `${grace} s; preStop ${s(preStopMs)} + the app's forced exit ${s(drain.forcedExitMs)} (${drain.sources.forcedExitMs})`,
            message: `${at}: preStop ${preStopMs / 1000}s + forced exit ${drain.forcedExitMs / 1000}s >= terminationGracePeriodSeconds ${grace}s; the kubelet would SIGKILL mid-drain`,
          }
        : null,
    fix: (c) =>
      `lower the app's forced-exit timeout below ${s(c.grace * 1000 - c.preStopMs)} or raise terminationGracePeriodSeconds`,
  }),
  rule({
    id: 'probe.dependency-timeout',
    on: 'container',
    field: (c) => `${c.at}.readinessProbe.timeoutSeconds`,
    severity: 'error',
    required: "the app answers readiness (also when a dependency hangs) within the probe's timeout",
    check: ({ drain, readiness: rp }) =>
      rp && drain && drain.readinessCheckTimeoutMs !== null && drain.readinessCheckTimeoutMs >= (rp.timeoutSeconds ?? 1) * 1000
        ? {
            measured: `${rp.timeoutSeconds ?? 1} s; the app's readiness checks time out after ${s(drain.readinessCheckTimeoutMs)} (${drain.sources.readinessCheckTimeoutMs})`,
          }
        : null,
    fix: (c) =>
      `raise readinessProbe.timeoutSeconds above ${s(c.drain!.readinessCheckTimeoutMs!)} or lower the app's dependency timeout`,
  }),
];

/** How long the pod keeps accepting after deletion (preStop + the app's own delay) against endpoint propagation. */
function preStopVsPropagation(c: ContainerSubject): Found {
  const preStop = c.c.lifecycle?.preStop;
  const preStopText = preStop
    ? preStop.sleep
      ? `preStop sleep ${preStop.sleep.seconds} s`
      : c.preStopMs > 0
        ? `preStop exec sleep ${c.preStopMs / 1000} s`
        : 'a preStop hook of unknown length (counted 0)'
    : 'no preStop';
  const keepMs = c.drain?.keepServingMs ?? 0;
  const windowMs = c.preStopMs + keepMs;
  const windowText = `${preStopText}${c.drain ? ` + the app keeps serving ${s(keepMs)} after SIGTERM (${c.drain.sources.keepServingMs})` : ''} = ${s(windowMs)}`;
  const measured = c.opts.measured?.propagationMs;
  const p = measured ?? c.opts.assumedPropagation ?? DEFAULT_ASSUMED_PROPAGATION;
  const propText = measured ? `measured ${s(p.ms)} (${p.source})` : `not measured; assumed ${s(p.ms)} from ${p.source}`;
  // Zero delay fails whatever the data plane does; otherwise an assumption is at most a warning.
  const severity: Severity =
    windowMs === 0 || (windowMs <= p.ms && measured) ? 'error' : windowMs < 2 * p.ms ? 'warning' : 'info';
  const needS = Math.ceil((2 * p.ms - keepMs) / 1000);
  return {
    measured: `keeps accepting for ${windowText} after deletion; endpoint propagation ${propText}`,
    severity,
    fix:
      severity === 'info'
        ? 'none needed'
        : `add lifecycle.preStop.sleep.seconds: ${Math.max(1, needS)} (and raise terminationGracePeriodSeconds to fit)`,
  };
}

const RESOURCES: Rule[] = [
  rule({
    id: 'resources.requests',
    on: 'container',
    field: (c) => `${c.at}.resources.requests`,
    severity: 'warning',
    required: 'cpu and memory requests, so the scheduler places pods where they fit and they are not evicted first',
    check: ({ c }) => {
      const req = c.resources?.requests ?? {};
      return !req.cpu || !req.memory ? { measured: `cpu ${req.cpu ?? 'unset'}, memory ${req.memory ?? 'unset'}` } : null;
    },
    fix: 'set resources.requests.cpu and .memory',
  }),
  rule({
    id: 'resources.memory-limit',
    on: 'container',
    field: (c) => `${c.at}.resources.limits.memory`,
    severity: 'warning',
    required: 'a memory limit, so a leak kills one container instead of starving the node',
    check: ({ c }) => (c.resources?.limits?.memory ? null : { measured: 'unset' }),
    fix: 'set resources.limits.memory',
  }),
  rule({
    id: 'security.privilege-escalation',
    on: 'container',
    field: (c) => `${c.at}.securityContext.allowPrivilegeEscalation`,
    severity: 'warning',
    required: 'false',
    check: ({ c }) =>
      c.securityContext?.allowPrivilegeEscalation !== false
        ? { measured: `${c.securityContext?.allowPrivilegeEscalation ?? 'unset'}` }
        : null,
    fix: 'set securityContext.allowPrivilegeEscalation: false',
  }),
  rule({
    id: 'security.capabilities',
    on: 'container',
    field: (c) => `${c.at}.securityContext.capabilities.drop`,
    severity: 'warning',
    required: '["ALL"]',
    check: ({ c }) => {
      const drop = c.securityContext?.capabilities?.drop ?? [];
      return drop.includes('ALL') ? null : { measured: JSON.stringify(drop) };
    },
    fix: 'set securityContext.capabilities.drop: ["ALL"]',
  }),
];

const SERVICES: Rule[] = [
  rule({
    id: 'service.target-port',
    on: 'service-port',
    field: 'spec.ports[].targetPort',
    severity: 'error',
    required: (p) => `a container port name of Deployment ${p.deployment.metadata.name}`,
    check: ({ targetPort, deployment }) => {
      const containers = deployment.spec?.template?.spec?.containers ?? [];
      return typeof targetPort === 'string' && !containers.some((c) => (c.ports ?? []).some((p) => p.name === targetPort))
        ? {
            measured: `"${targetPort}"`,
            message: `targetPort "${targetPort}" names no container port of Deployment ${deployment.metadata.name}`,
          }
        : null;
    },
    fix: 'name the container port or use its number',
  }),
  rule({
    id: 'service.selector',
    on: 'service',
    field: 'spec.selector',
    severity: 'error',
    required: 'to select the pods of a Deployment',
    check: ({ object: svc, deployments }) =>
      deployments.some(
        (d) =>
          (d.metadata.namespace ?? '') === (svc.metadata.namespace ?? '') &&
          selects(svc.spec?.selector, d.spec?.template?.metadata?.labels ?? {}),
      )
        ? null
        : {
            measured: JSON.stringify(svc.spec?.selector),
            message: "selector matches no Deployment's pods: the Service has no endpoints",
          },
    fix: "match the Deployment's pod template labels",
  }),
];

/** Every rule, in the order findings are reported for one object. */
export const RULES: readonly Rule[] = [...CAPACITY, ...PROBES, ...DRAIN, ...RESOURCES, ...SERVICES];

/** The preStop hook's delay, ms: `sleep.seconds`, or an exec of `sleep N`; 0 otherwise. */
export function preStopDelayMs(preStop: V1LifecycleHandler | undefined): number {
  if (!preStop) return 0;
  if (typeof preStop.sleep?.seconds === 'number') return preStop.sleep.seconds * 1000;
  const cmd: string[] = preStop.exec?.command ?? [];
  const joined = cmd.join(' ');
  const m = /(?:^|\s|;|&&)sleep\s+(\d+(?:\.\d+)?)\b/.exec(joined);
  return m ? Number(m[1]) * 1000 : 0;
}

/** What a probe asks, to tell two probes apart: `GET /health/ready :http`, `exec ...`, `tcp :8000`; null for none. */
export function probeKey(p: V1Probe | undefined): string | null {
  if (!p) return null;
  if (p.httpGet) return `GET ${p.httpGet.path ?? '/'} :${p.httpGet.port}`;
  if (p.exec) return `exec ${(p.exec.command ?? []).join(' ')}`;
  if (p.tcpSocket) return `tcp :${p.tcpSocket.port}`;
  if (p.grpc) return `grpc :${p.grpc.port} ${p.grpc.service ?? ''}`;
  return null;
}

export function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
