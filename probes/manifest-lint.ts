import type { KubeObject } from '../lib/kube/render.ts';
import type { DrainSettings, ProbeDescription } from '../experiments/app-profile.ts';

/**
 * Lint of the rollout, probe and drain configuration of rendered manifests: the settings that
 * decide whether a rolling update can be zero-downtime at all. Each finding names the object and
 * the field, what is there (or was measured), what the rule requires, and the fix, with a severity.
 *
 * Some rules compare the manifest with how the system behaves: the startup budget with the time a
 * pod takes to start, the preStop delay with the time the data plane takes to stop routing to a
 * terminating pod. Give those as `measured` (the probes suite measures them on the embedded
 * cluster, and start times on any cluster it can read); where nothing was measured the finding
 * says "not measured; assumed X from <source>" and is never worse than a warning (an assumption
 * must not fail a release), except where any value at all would break the rule.
 *
 * What the app does on SIGTERM and how long its requests may take (its drain settings) is app
 * knowledge: it comes from the app profile (`app.drain(env)`); without it the drain rules that need
 * it are left out.
 */
export interface Finding {
  rule: string;
  severity: 'error' | 'warning' | 'info';
  /** `Deployment/coditect/license-api` */
  object: string;
  /** The field the rule looks at, e.g. `spec.template.spec.containers[license-api].lifecycle.preStop`. */
  field: string;
  /** What the manifest has, or what was measured, with units and source. */
  measured: string;
  /** What the rule requires. */
  required: string;
  /** What to change. */
  fix: string;
  /** The finding in one sentence. */
  message: string;
}

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

type Container = Record<string, any>;

export const DEFAULT_ASSUMED_PROPAGATION: Measured = {
  ms: 1000,
  source:
    "kube-proxy's default minSyncPeriod (1 s); a cloud load balancer's endpoint sync (e.g. GKE NEGs) can take several seconds more: measure it",
};

const s = (ms: number) => `${+(ms / 1000).toFixed(2)} s`;

export function lintManifests(objects: KubeObject[], opts: LintOptions = {}): Finding[] {
  const findings: Finding[] = [];
  const nameOf = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}${o.metadata.namespace ? '/' : ''}${o.metadata.name}`;
  const add = (
    severity: Finding['severity'],
    rule: string,
    o: KubeObject,
    f: { field: string; measured: string; required: string; fix: string; message?: string },
  ) =>
    findings.push({
      rule,
      severity,
      object: nameOf(o),
      ...f,
      message: f.message ?? `${f.field}: ${f.measured}; required: ${f.required}. Fix: ${f.fix}`,
    });
  const configMaps = new Map(objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data ?? {}]));
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  const assumed = opts.assumedPropagation ?? DEFAULT_ASSUMED_PROPAGATION;

  for (const d of deployments.filter((x) => !opts.deployments || opts.deployments.includes(x.metadata.name))) {
    const spec = d.spec ?? {};
    const replicas = spec.replicas ?? 1;
    const ru = spec.strategy?.rollingUpdate ?? {};
    const podSpec = spec.template?.spec ?? {};
    const labels = spec.template?.metadata?.labels ?? {};
    const pdbs = objects.filter(
      (o) =>
        o.kind === 'PodDisruptionBudget' &&
        (o.metadata.namespace ?? '') === (d.metadata.namespace ?? '') &&
        selects(o.spec?.selector?.matchLabels, labels),
    );

    // ---- capacity: replicas, rollout, disruption budget
    if (replicas < 2) {
      add('error', 'replicas.min-two', d, {
        field: 'spec.replicas',
        measured: `${replicas}`,
        required: 'at least 2, so that one pod restarting, terminating or being evicted leaves another serving',
        fix: 'set spec.replicas: 2 or more (the seed runs 3)',
      });
    }
    if ((spec.strategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') {
      add('error', 'rollout.strategy', d, {
        field: 'spec.strategy.type',
        measured: spec.strategy.type,
        required: 'RollingUpdate',
        fix: 'use strategy RollingUpdate: Recreate takes every pod down at once',
      });
    }
    if (String(ru.maxUnavailable ?? '25%') !== '0' && String(ru.maxUnavailable) !== '0%') {
      add('error', 'rollout.max-unavailable', d, {
        field: 'spec.strategy.rollingUpdate.maxUnavailable',
        measured: `${ru.maxUnavailable ?? '25% (the default)'}`,
        required: '0, so ready pods never drop below replicas during a rollout',
        fix: 'set maxUnavailable: 0 (with maxSurge: 1)',
      });
    }
    if (String(ru.maxSurge ?? '25%') === '0' || String(ru.maxSurge) === '0%') {
      add('error', 'rollout.max-surge', d, {
        field: 'spec.strategy.rollingUpdate.maxSurge',
        measured: `${ru.maxSurge}`,
        required: 'at least 1 when maxUnavailable is 0, or the rollout cannot make progress',
        fix: 'set maxSurge: 1',
      });
    }
    if (pdbs.length === 0) {
      add('warning', 'pdb.missing', d, {
        field: 'PodDisruptionBudget',
        measured: 'none selects these pods',
        required: 'a PodDisruptionBudget that keeps capacity during node drains',
        fix: `add a PodDisruptionBudget with minAvailable: ${Math.max(1, replicas - 1)} selecting these pods`,
      });
    }
    for (const p of pdbs) {
      const min = p.spec?.minAvailable;
      const maxU = p.spec?.maxUnavailable;
      if (typeof min === 'number' && min >= replicas) {
        add('error', 'pdb.blocks-drain', p, {
          field: 'spec.minAvailable',
          measured: `${min} with ${replicas} replicas`,
          required: 'below replicas, so that one pod can be evicted',
          fix: `set minAvailable: ${Math.max(1, replicas - 1)}`,
          message: `minAvailable ${min} >= replicas ${replicas}: no pod can ever be evicted, node drains hang`,
        });
      }
      const keepsNothing =
        (min !== undefined && (String(min) === '0' || String(min) === '0%')) ||
        (typeof maxU === 'number' && maxU >= replicas) ||
        String(maxU) === '100%';
      if (keepsNothing) {
        add('warning', 'pdb.keeps-capacity', p, {
          field: min !== undefined ? 'spec.minAvailable' : 'spec.maxUnavailable',
          measured: `${min !== undefined ? `minAvailable ${min}` : `maxUnavailable ${maxU}`} with ${replicas} replicas`,
          required: 'a budget that keeps at least one pod through voluntary disruptions',
          fix: `set minAvailable: ${Math.max(1, replicas - 1)}`,
        });
      }
    }
    if (!podSpec.securityContext?.runAsNonRoot) {
      add('warning', 'security.run-as-non-root', d, {
        field: 'spec.template.spec.securityContext.runAsNonRoot',
        measured: `${podSpec.securityContext?.runAsNonRoot ?? 'unset'}`,
        required: 'true',
        fix: 'set securityContext.runAsNonRoot: true (and a runAsUser)',
      });
    }
    const grace = podSpec.terminationGracePeriodSeconds ?? 30;

    for (const c of (podSpec.containers ?? []) as Container[]) {
      const at = `spec.template.spec.containers[${c.name}]`;
      const rp = c.readinessProbe;
      const lp = c.livenessProbe;
      const sp = c.startupProbe;
      // ---- probes
      if (!rp)
        add('error', 'probe.readiness-missing', d, {
          field: `${at}.readinessProbe`,
          measured: 'none',
          required: 'a readiness probe',
          fix: "add a readinessProbe on the app's readiness endpoint: without one, pods receive traffic before they can serve it",
        });
      if (!lp)
        add('warning', 'probe.liveness-missing', d, {
          field: `${at}.livenessProbe`,
          measured: 'none',
          required: 'a liveness probe',
          fix: 'add a livenessProbe on an endpoint that checks only the process itself',
        });
      for (const [kind, p] of [
        ['readiness', rp],
        ['liveness', lp],
        ['startup', sp],
      ] as const) {
        if (!p) continue;
        const period = p.periodSeconds ?? 10;
        const timeout = p.timeoutSeconds ?? 1;
        if (timeout > period)
          add('warning', 'probe.timeout-over-period', d, {
            field: `${at}.${kind}Probe.timeoutSeconds`,
            measured: `${timeout} s (periodSeconds ${period})`,
            required: 'at most periodSeconds',
            fix: `lower timeoutSeconds to ${period} or less`,
          });
        if (kind !== 'readiness' && (p.successThreshold ?? 1) !== 1)
          add('error', 'probe.success-threshold', d, {
            field: `${at}.${kind}Probe.successThreshold`,
            measured: `${p.successThreshold}`,
            required: '1 (the API rejects anything else for liveness and startup)',
            fix: 'remove successThreshold or set it to 1',
          });
        const path = p.httpGet?.path;
        const own = opts.app?.endpoints.find((e) => e.probe === kind);
        if (own && path !== undefined && path !== own.path) {
          add(kind === 'liveness' ? 'warning' : 'error', 'probe.path', d, {
            field: `${at}.${kind}Probe.httpGet.path`,
            measured: path,
            required: `the app's ${kind} endpoint ${own.path} (${own.expects})`,
            fix: `set httpGet.path: ${own.path}`,
          });
        }
      }
      if (lp && rp && probeKey(lp) !== null && probeKey(lp) === probeKey(rp)) {
        add('error', 'probe.liveness-equals-readiness', d, {
          field: `${at}.livenessProbe`,
          measured: `the same check as readiness (${probeKey(lp)})`,
          required:
            'liveness and readiness to be different checks: readiness may fail for a shared dependency, liveness must not',
          fix: `point livenessProbe at ${opts.app?.endpoints.find((e) => e.probe === 'liveness')?.path ?? 'an endpoint that checks only the process'}`,
          message: `${at}: liveness and readiness are the same check; a dependency outage would restart every pod`,
        });
      }
      const dependent =
        opts.app?.endpoints
          .filter((e) => e.statusWithoutDependency !== undefined && e.statusWithoutDependency >= 500)
          .map((e) => e.path) ?? [];
      if (lp?.httpGet?.path && dependent.includes(lp.httpGet.path) && probeKey(lp) !== probeKey(rp)) {
        add('error', 'probe.liveness-on-dependencies', d, {
          field: `${at}.livenessProbe.httpGet.path`,
          measured: `${lp.httpGet.path}, which fails while a dependency is away`,
          required: 'a liveness endpoint that does not depend on Postgres or Redis',
          fix: `point livenessProbe at ${opts.app?.endpoints.find((e) => e.probe === 'liveness')?.path}`,
        });
      }
      // Startup: the budget the kubelet gives before liveness may kill the container.
      const budgetProbe = sp ?? lp;
      if (budgetProbe) {
        const which = sp ? 'startupProbe' : 'livenessProbe';
        const budgetMs =
          ((budgetProbe.initialDelaySeconds ?? 0) + (budgetProbe.periodSeconds ?? 10) * (budgetProbe.failureThreshold ?? 3)) *
          1000;
        const formula = `initialDelaySeconds ${budgetProbe.initialDelaySeconds ?? 0} + periodSeconds ${budgetProbe.periodSeconds ?? 10} × failureThreshold ${budgetProbe.failureThreshold ?? 3} = ${s(budgetMs)}`;
        const m = opts.measured?.startMs;
        const expected = (lp?.initialDelaySeconds ?? rp?.initialDelaySeconds ?? 0) * 1000;
        const start =
          m ??
          (expected > 0
            ? {
                ms: expected,
                source: `the manifest's own ${lp?.initialDelaySeconds ? 'livenessProbe' : 'readinessProbe'}.initialDelaySeconds (the start time its author expected)`,
              }
            : null);
        if (start) {
          const tag = m
            ? `measured ${s(start.ms)} (${start.source})`
            : `not measured; assumed ${s(start.ms)} from ${start.source}`;
          const sev: Finding['severity'] =
            budgetMs <= start.ms ? (m ? 'error' : 'warning') : budgetMs < 2 * start.ms ? 'warning' : 'info';
          add(sev, 'startup.budget', d, {
            field: `${at}.${which}`,
            measured: `budget ${formula}; start time ${tag}`,
            required: 'a startup budget above the start time, with room for a slow start (at least twice it)',
            fix:
              sev === 'info'
                ? 'none needed'
                : `raise ${which}.failureThreshold to ${Math.ceil(((2 * start.ms) / 1000 - (budgetProbe.initialDelaySeconds ?? 0)) / (budgetProbe.periodSeconds ?? 10))} or more${sp ? '' : ', or add a startupProbe'}`,
          });
        }
      }

      // ---- drain
      const env: Record<string, string> = {};
      for (const ef of c.envFrom ?? []) if (ef.configMapRef) Object.assign(env, configMaps.get(ef.configMapRef.name) ?? {});
      for (const e of c.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
      const drain: DrainSettings | null = opts.app ? opts.app.drain(env) : null;
      const preStop = c.lifecycle?.preStop;
      const preStopMs = preStopDelayMs(preStop);
      const preStopText = preStop
        ? preStop.sleep
          ? `preStop sleep ${preStop.sleep.seconds} s`
          : preStopMs > 0
            ? `preStop exec sleep ${preStopMs / 1000} s`
            : 'a preStop hook of unknown length (counted 0)'
        : 'no preStop';
      const keepMs = drain?.keepServingMs ?? 0;
      const windowMs = preStopMs + keepMs;
      const windowText = `${preStopText}${drain ? ` + the app keeps serving ${s(keepMs)} after SIGTERM (${drain.sources.keepServingMs})` : ''} = ${s(windowMs)}`;
      const prop = opts.measured?.propagationMs;
      const p = prop ?? assumed;
      const propText = prop ? `measured ${s(p.ms)} (${p.source})` : `not measured; assumed ${s(p.ms)} from ${p.source}`;
      {
        // Zero delay fails whatever the data plane does; otherwise an assumption is at most a warning.
        const sev: Finding['severity'] =
          windowMs === 0 || (windowMs <= p.ms && prop)
            ? 'error'
            : windowMs <= p.ms
              ? 'warning'
              : windowMs < 2 * p.ms
                ? 'warning'
                : 'info';
        const needS = Math.ceil((2 * p.ms - keepMs) / 1000);
        add(sev, 'drain.prestop-vs-propagation', d, {
          field: `${at}.lifecycle.preStop`,
          measured: `keeps accepting for ${windowText} after deletion; endpoint propagation ${propText}`,
          required:
            'the pod keeps accepting new connections longer than the data plane takes to stop sending them (at least twice as long)',
          fix:
            sev === 'info'
              ? 'none needed'
              : `add lifecycle.preStop.sleep.seconds: ${Math.max(1, needS)} (and raise terminationGracePeriodSeconds to fit)`,
        });
      }
      if (drain) {
        if (drain.dropsInFlight) {
          add('error', 'drain.naive', d, {
            field: `${at}.env`,
            measured: drain.sources.keepServingMs ?? 'drops requests in flight on SIGTERM',
            required: 'a graceful shutdown that finishes requests in flight',
            fix: 'remove the naive shutdown setting (SHUTDOWN_MODE=naive)',
            message: `${at} runs with SHUTDOWN_MODE=naive: in-flight requests are dropped on SIGTERM`,
          });
        }
        const needMs = preStopMs + keepMs + drain.longestRequestMs;
        const graceMs = grace * 1000;
        const sev: Finding['severity'] = graceMs < needMs ? 'error' : 'info';
        add(sev, 'drain.grace-period', d, {
          field: 'spec.template.spec.terminationGracePeriodSeconds',
          measured: `${grace} s; preStop ${s(preStopMs)} + keep serving ${s(keepMs)} + longest request ${s(drain.longestRequestMs)} (${drain.sources.longestRequestMs}) = ${s(needMs)}`,
          required: "terminationGracePeriodSeconds ≥ preStop + the app's drain + its longest request",
          fix: sev === 'info' ? 'none needed' : `set terminationGracePeriodSeconds: ${Math.ceil(needMs / 1000) + 5}`,
        });
        if (drain.forcedExitMs !== null && preStopMs + drain.forcedExitMs >= graceMs && !drain.dropsInFlight) {
          add('error', 'drain.exceeds-grace', d, {
            field: 'spec.template.spec.terminationGracePeriodSeconds',
            measured: `${grace} s; preStop ${s(preStopMs)} + the app's forced exit ${s(drain.forcedExitMs)} (${drain.sources.forcedExitMs})`,
            required: "the app exits on its own before the kubelet's SIGKILL",
            fix: `lower the app's forced-exit timeout below ${s(graceMs - preStopMs)} or raise terminationGracePeriodSeconds`,
            message: `${at}: preStop ${preStopMs / 1000}s + forced exit ${drain.forcedExitMs / 1000}s >= terminationGracePeriodSeconds ${grace}s; the kubelet would SIGKILL mid-drain`,
          });
        }
        if (rp && drain.readinessCheckTimeoutMs !== null && drain.readinessCheckTimeoutMs >= (rp.timeoutSeconds ?? 1) * 1000) {
          add('error', 'probe.dependency-timeout', d, {
            field: `${at}.readinessProbe.timeoutSeconds`,
            measured: `${rp.timeoutSeconds ?? 1} s; the app's readiness checks time out after ${s(drain.readinessCheckTimeoutMs)} (${drain.sources.readinessCheckTimeoutMs})`,
            required: "the app answers readiness (also when a dependency hangs) within the probe's timeout",
            fix: `raise readinessProbe.timeoutSeconds above ${s(drain.readinessCheckTimeoutMs)} or lower the app's dependency timeout`,
          });
        }
      }

      // ---- resources and security
      const req = c.resources?.requests ?? {};
      if (!req.cpu || !req.memory) {
        add('warning', 'resources.requests', d, {
          field: `${at}.resources.requests`,
          measured: `cpu ${req.cpu ?? 'unset'}, memory ${req.memory ?? 'unset'}`,
          required: 'cpu and memory requests, so the scheduler places pods where they fit and they are not evicted first',
          fix: 'set resources.requests.cpu and .memory',
        });
      }
      if (!c.resources?.limits?.memory) {
        add('warning', 'resources.memory-limit', d, {
          field: `${at}.resources.limits.memory`,
          measured: 'unset',
          required: 'a memory limit, so a leak kills one container instead of starving the node',
          fix: 'set resources.limits.memory',
        });
      }
      const sc = c.securityContext ?? {};
      if (sc.allowPrivilegeEscalation !== false) {
        add('warning', 'security.privilege-escalation', d, {
          field: `${at}.securityContext.allowPrivilegeEscalation`,
          measured: `${sc.allowPrivilegeEscalation ?? 'unset'}`,
          required: 'false',
          fix: 'set securityContext.allowPrivilegeEscalation: false',
        });
      }
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) {
        add('warning', 'security.capabilities', d, {
          field: `${at}.securityContext.capabilities.drop`,
          measured: JSON.stringify(sc.capabilities?.drop ?? []),
          required: '["ALL"]',
          fix: 'set securityContext.capabilities.drop: ["ALL"]',
        });
      }
    }

    const services = objects.filter(
      (o) =>
        o.kind === 'Service' &&
        (o.metadata.namespace ?? '') === (d.metadata.namespace ?? '') &&
        selects(o.spec?.selector, labels),
    );
    for (const svc of services) {
      for (const port of svc.spec.ports ?? []) {
        const target = port.targetPort;
        if (
          typeof target === 'string' &&
          !(podSpec.containers ?? []).some((c: Container) => (c.ports ?? []).some((p: any) => p.name === target))
        ) {
          add('error', 'service.target-port', svc, {
            field: 'spec.ports[].targetPort',
            measured: `"${target}"`,
            required: `a container port name of Deployment ${d.metadata.name}`,
            fix: 'name the container port or use its number',
            message: `targetPort "${target}" names no container port of Deployment ${d.metadata.name}`,
          });
        }
      }
    }
  }
  for (const svc of objects.filter((o) => o.kind === 'Service' && o.spec?.selector)) {
    const matched = deployments.some(
      (d) =>
        (d.metadata.namespace ?? '') === (svc.metadata.namespace ?? '') &&
        selects(svc.spec.selector, d.spec?.template?.metadata?.labels ?? {}),
    );
    if (!matched)
      add('error', 'service.selector', svc, {
        field: 'spec.selector',
        measured: JSON.stringify(svc.spec.selector),
        required: 'to select the pods of a Deployment',
        fix: "match the Deployment's pod template labels",
        message: "selector matches no Deployment's pods: the Service has no endpoints",
      });
  }
  return findings;
}

/** The preStop hook's delay, ms: `sleep.seconds`, or an exec of `sleep N`; 0 otherwise. */
export function preStopDelayMs(preStop: any): number {
  if (!preStop) return 0;
  if (typeof preStop.sleep?.seconds === 'number') return preStop.sleep.seconds * 1000;
  const cmd: string[] = preStop.exec?.command ?? [];
  const joined = cmd.join(' ');
  const m = /(?:^|\s|;|&&)sleep\s+(\d+(?:\.\d+)?)\b/.exec(joined);
  return m ? Number(m[1]) * 1000 : 0;
}

/** What a probe asks, to tell two probes apart: `GET /health/ready :http`, `exec ...`, `tcp :8000`; null for none. */
function probeKey(p: any): string | null {
  if (!p) return null;
  if (p.httpGet) return `GET ${p.httpGet.path ?? '/'} :${p.httpGet.port}`;
  if (p.exec) return `exec ${(p.exec.command ?? []).join(' ')}`;
  if (p.tcpSocket) return `tcp :${p.tcpSocket.port}`;
  if (p.grpc) return `grpc :${p.grpc.port} ${p.grpc.service ?? ''}`;
  return null;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The verdict of a finding under `--fail-on`: errors always fail, warnings when asked to, info never. */
export function findingVerdict(f: Finding, failOn: 'error' | 'warning'): 'PASS' | 'FAIL' {
  return f.severity === 'error' || (f.severity === 'warning' && failOn === 'warning') ? 'FAIL' : 'PASS';
}
