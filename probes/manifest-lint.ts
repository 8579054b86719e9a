import type { KubeObject } from '../lib/kube/render.ts';

/**
 * Lint of the rollout, probe and drain configuration of rendered manifests: the settings that
 * decide whether a rolling update can be zero-downtime at all. Each finding names the object, the
 * rule and what to change.
 */
export interface Finding {
  rule: string;
  severity: 'error' | 'warning';
  object: string;
  message: string;
}

type Container = Record<string, any>;

const seconds = (ms: string | undefined) => (ms === undefined ? undefined : Number(ms) / 1000);

export interface LintOptions {
  /** Deployments to hold to the zero-downtime rules (default: all). Backing services such as a
   *  single-replica Postgres legitimately use Recreate. */
  deployments?: string[];
}

export function lintManifests(objects: KubeObject[], opts: LintOptions = {}): Finding[] {
  const findings: Finding[] = [];
  const add = (severity: Finding['severity'], rule: string, o: KubeObject, message: string) =>
    findings.push({ rule, severity, object: `${o.kind}/${o.metadata.namespace ?? ''}${o.metadata.namespace ? '/' : ''}${o.metadata.name}`, message });
  const configMaps = new Map(objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data ?? {}]));
  const deployments = objects.filter((o) => o.kind === 'Deployment');

  for (const d of deployments.filter((x) => !opts.deployments || opts.deployments.includes(x.metadata.name))) {
    const spec = d.spec ?? {};
    const replicas = spec.replicas ?? 1;
    const ru = spec.strategy?.rollingUpdate ?? {};
    if ((spec.strategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') add('error', 'rollout.strategy', d, 'use strategy RollingUpdate: Recreate takes every pod down at once');
    if (String(ru.maxUnavailable ?? '25%') !== '0') add('error', 'rollout.max-unavailable', d, `maxUnavailable is ${ru.maxUnavailable ?? '25% (default)'}; set 0 so ready pods never drop below replicas`);
    if (String(ru.maxSurge ?? '25%') === '0' || String(ru.maxSurge) === '0%') add('error', 'rollout.max-surge', d, 'maxSurge 0 with maxUnavailable 0 cannot make progress; set maxSurge 1');
    const podSpec = spec.template?.spec ?? {};
    const grace = podSpec.terminationGracePeriodSeconds ?? 30;
    if (!podSpec.securityContext?.runAsNonRoot) add('warning', 'security.run-as-non-root', d, 'set securityContext.runAsNonRoot: true');

    for (const c of (podSpec.containers ?? []) as Container[]) {
      const where = `container ${c.name}`;
      const rp = c.readinessProbe;
      if (!rp) add('error', 'probe.readiness-missing', d, `${where} has no readinessProbe: pods receive traffic before they can serve it`);
      if (!c.livenessProbe) add('warning', 'probe.liveness-missing', d, `${where} has no livenessProbe`);
      for (const [kind, p] of [['readiness', rp], ['liveness', c.livenessProbe], ['startup', c.startupProbe]] as const) {
        if (!p) continue;
        const period = p.periodSeconds ?? 10;
        const timeout = p.timeoutSeconds ?? 1;
        if (timeout > period) add('warning', 'probe.timeout-over-period', d, `${where} ${kind}Probe timeoutSeconds ${timeout} > periodSeconds ${period}`);
        if (kind !== 'readiness' && (p.successThreshold ?? 1) !== 1) add('error', 'probe.success-threshold', d, `${where} ${kind}Probe successThreshold must be 1`);
      }
      if (c.livenessProbe && rp && c.livenessProbe.httpGet?.path && c.livenessProbe.httpGet.path === rp.httpGet?.path) {
        add('warning', 'probe.liveness-equals-readiness', d, `${where}: liveness and readiness use the same path; a dependency outage would restart every pod`);
      }
      // Drain: preStop + the app's own shutdown deadline must fit inside the grace period.
      const preStop = c.lifecycle?.preStop;
      const preStopSeconds = preStop?.sleep?.seconds ?? 0;
      const env: Record<string, string> = {};
      for (const ef of c.envFrom ?? []) if (ef.configMapRef) Object.assign(env, configMaps.get(ef.configMapRef.name) ?? {});
      for (const e of c.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
      const appDeadline = seconds(env.SHUTDOWN_TIMEOUT_MS);
      const appDelay = seconds(env.SHUTDOWN_DELAY_MS) ?? 0;
      if (!preStop && appDelay === 0) add('error', 'drain.no-delay', d, `${where} neither sleeps in preStop nor delays its shutdown: requests routed during endpoint removal fail`);
      if (env.SHUTDOWN_MODE === 'naive') add('error', 'drain.naive', d, `${where} runs with SHUTDOWN_MODE=naive: in-flight requests are dropped on SIGTERM`);
      if (appDeadline !== undefined && preStopSeconds + appDeadline >= grace) {
        add('error', 'drain.exceeds-grace', d, `${where}: preStop ${preStopSeconds}s + SHUTDOWN_TIMEOUT_MS ${appDeadline}s >= terminationGracePeriodSeconds ${grace}s; the kubelet would SIGKILL mid-drain`);
      }
      const depTimeout = seconds(env.DEPENDENCY_TIMEOUT_MS);
      if (rp && depTimeout !== undefined && depTimeout >= (rp.timeoutSeconds ?? 1)) {
        add('error', 'probe.dependency-timeout', d, `${where}: DEPENDENCY_TIMEOUT_MS ${depTimeout * 1000} is not below the readiness timeoutSeconds ${rp.timeoutSeconds ?? 1}`);
      }
    }

    // A PodDisruptionBudget must exist and still allow one voluntary disruption.
    const labels = spec.template?.metadata?.labels ?? {};
    const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget' && o.metadata.namespace === d.metadata.namespace && selects(o.spec?.selector?.matchLabels, labels));
    if (pdbs.length === 0) add('warning', 'pdb.missing', d, 'no PodDisruptionBudget selects these pods: a node drain may take them all at once');
    for (const p of pdbs) {
      const min = p.spec.minAvailable;
      if (typeof min === 'number' && min >= replicas) add('error', 'pdb.blocks-drain', p, `minAvailable ${min} >= replicas ${replicas}: no pod can ever be evicted, node drains hang`);
    }
    const services = objects.filter((o) => o.kind === 'Service' && o.metadata.namespace === d.metadata.namespace && selects(o.spec?.selector, labels));
    for (const s of services) {
      for (const port of s.spec.ports ?? []) {
        const target = port.targetPort;
        if (typeof target === 'string' && !(podSpec.containers ?? []).some((c: Container) => (c.ports ?? []).some((p: any) => p.name === target))) {
          add('error', 'service.target-port', s, `targetPort "${target}" names no container port of Deployment ${d.metadata.name}`);
        }
      }
    }
  }
  for (const s of objects.filter((o) => o.kind === 'Service' && o.spec?.selector)) {
    const matched = deployments.some((d) => d.metadata.namespace === s.metadata.namespace && selects(s.spec.selector, d.spec?.template?.metadata?.labels ?? {}));
    if (!matched) add('error', 'service.selector', s, 'selector matches no Deployment\'s pods: the Service has no endpoints');
  }
  return findings;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
