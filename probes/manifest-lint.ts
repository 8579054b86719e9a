import type { V1Container } from '@kubernetes/client-node';
import { ofKind, type KubeObject, type KubeObjectOf } from '../lib/kube/render.ts';
import {
  preStopDelayMs,
  RULES,
  selects,
  type ContainerSubject,
  type DeploymentSubject,
  type LintOptions,
  type Rule,
  type RuleOn,
  type Severity,
  type Subjects,
} from './manifest-rules.ts';

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
 *
 * The rules are a table (./manifest-rules.ts: id, the object it looks at, field, requirement,
 * severity, check, fix); this file walks the manifests and applies it.
 */
export interface Finding {
  rule: string;
  severity: Severity;
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

export {
  DEFAULT_ASSUMED_PROPAGATION,
  preStopDelayMs,
  RULES,
  type LintOptions,
  type Measured,
  type Measurements,
  type Rule,
} from './manifest-rules.ts';

/**
 * Every finding of the rule table (./manifest-rules.ts) on the Deployments `opts.deployments` names
 * (default all), then on every Service with a selector. Findings come in the table's order: a run of
 * rules on the PodDisruptionBudgets, containers (with their probes) or Service ports of a Deployment
 * is applied to each of those where the run stands in the table.
 */
export function lintManifests(objects: KubeObject[], opts: LintOptions = {}): Finding[] {
  const findings: Finding[] = [];
  const configMaps = new Map(ofKind(objects, 'ConfigMap').map((o) => [o.metadata.name, o.data ?? {}]));
  const deployments = ofKind(objects, 'Deployment');
  for (const d of deployments.filter((x) => !opts.deployments || opts.deployments.includes(x.metadata.name)))
    findings.push(...lintDeployment(d, objects, configMaps, opts));
  for (const svc of ofKind(objects, 'Service').filter((o) => o.spec?.selector))
    findings.push(...applyRules(RULES, 'service', { object: svc, deployments }));
  return findings;
}

function lintDeployment(
  d: Deployment,
  objects: KubeObject[],
  configMaps: Map<string, Record<string, string>>,
  opts: LintOptions,
): Finding[] {
  const out: Finding[] = [];
  const dep = deploymentSubject(d, objects);
  const containers = (dep.podSpec.containers ?? []).map((c) => containerSubject(d, dep, c, configMaps, opts));
  const services = ofKind(objects, 'Service').filter((o) => sameNamespace(o, d) && selects(o.spec?.selector, podLabels(d)));
  const inDeployment = RULES.filter((r) => r.on !== 'service');
  for (const run of runsOf(inDeployment, (r) => (r.on === 'probe' ? 'container' : r.on))) {
    const on = run[0].on;
    if (on === 'deployment') out.push(...applyRules(run, 'deployment', dep));
    for (const p of on === 'pdb' ? dep.pdbs : [])
      out.push(
        ...applyRules(run, 'pdb', {
          object: p,
          replicas: dep.replicas,
          minAvailable: p.spec?.minAvailable,
          maxUnavailable: p.spec?.maxUnavailable,
        }),
      );
    for (const container of on === 'container' || on === 'probe' ? containers : [])
      for (const part of runsOf(run, (r) => r.on)) {
        if (part[0].on === 'container') out.push(...applyRules(part, 'container', container));
        for (const kind of part[0].on === 'probe' ? (['readiness', 'liveness', 'startup'] as const) : []) {
          const probe = container[kind];
          if (probe) out.push(...applyRules(part, 'probe', { object: d, container, kind, probe }));
        }
      }
    for (const svc of on === 'service-port' ? services : [])
      for (const port of svc.spec?.ports ?? [])
        out.push(...applyRules(run, 'service-port', { object: svc, deployment: d, targetPort: port.targetPort }));
  }
  return out;
}

type Deployment = KubeObjectOf<'Deployment'>;

/** `list` cut into runs of consecutive items with the same key. */
function runsOf<T>(list: readonly T[], key: (x: T) => string): T[][] {
  const runs: T[][] = [];
  for (const x of list) {
    const last = runs.at(-1);
    if (last && key(last[0]) === key(x)) last.push(x);
    else runs.push([x]);
  }
  return runs;
}

/** The findings of the rules of `rules` that look at `on`, on `subject`. */
function applyRules<K extends keyof Subjects>(rules: readonly Rule[], on: K, subject: Subjects[K]): Finding[] {
  return rules.filter((r) => r.on === on).flatMap((r) => finding(r as unknown as RuleOn<K>, subject));
}

/** What `r` finds on `subject`: one finding when it is broken (or reports its numbers), none when it holds. */
function finding<K extends keyof Subjects>(r: RuleOn<K>, subject: Subjects[K]): Finding[] {
  const found = r.check(subject);
  if (!found) return [];
  const field = found.field ?? (typeof r.field === 'string' ? r.field : r.field(subject));
  const required = typeof r.required === 'string' ? r.required : r.required(subject);
  const fix = found.fix ?? (typeof r.fix === 'string' ? r.fix : r.fix(subject));
  return [
    {
      rule: r.id,
      severity: found.severity ?? r.severity,
      object: nameOf(subject.object),
      field,
      measured: found.measured,
      required,
      fix,
      message: found.message ?? `${field}: ${found.measured}; required: ${required}. Fix: ${fix}`,
    },
  ];
}

function deploymentSubject(d: Deployment, objects: KubeObject[]): DeploymentSubject {
  const spec: DeploymentSubject['spec'] = d.spec ?? {};
  const labels = podLabels(d);
  return {
    object: d,
    spec,
    replicas: spec.replicas ?? 1,
    rollingUpdate: spec.strategy?.rollingUpdate ?? {},
    podSpec: spec.template?.spec ?? {},
    pdbs: ofKind(objects, 'PodDisruptionBudget').filter(
      (o) => sameNamespace(o, d) && selects(o.spec?.selector?.matchLabels, labels),
    ),
  };
}

/** A container with its probes and the app's drain settings from its environment (ConfigMaps merged, then env). */
function containerSubject(
  d: Deployment,
  dep: DeploymentSubject,
  c: V1Container,
  configMaps: Map<string, Record<string, string>>,
  opts: LintOptions,
): ContainerSubject {
  const env: Record<string, string> = {};
  for (const ef of c.envFrom ?? []) if (ef.configMapRef?.name) Object.assign(env, configMaps.get(ef.configMapRef.name) ?? {});
  for (const e of c.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  return {
    object: d,
    c,
    at: `spec.template.spec.containers[${c.name}]`,
    readiness: c.readinessProbe,
    liveness: c.livenessProbe,
    startup: c.startupProbe,
    grace: dep.podSpec.terminationGracePeriodSeconds ?? 30,
    drain: opts.app ? opts.app.drain(env) : null,
    preStopMs: preStopDelayMs(c.lifecycle?.preStop),
    opts,
  };
}

const nameOf = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}${o.metadata.namespace ? '/' : ''}${o.metadata.name}`;
const sameNamespace = (a: KubeObject, b: KubeObject) => (a.metadata.namespace ?? '') === (b.metadata.namespace ?? '');
const podLabels = (d: Deployment): Record<string, string> => d.spec?.template?.metadata?.labels ?? {};

/** The verdict of a finding under `--fail-on`: errors always fail, warnings when asked to, info never. */
export function findingVerdict(f: Finding, failOn: 'error' | 'warning'): 'PASS' | 'FAIL' {
  return f.severity === 'error' || (f.severity === 'warning' && failOn === 'warning') ? 'FAIL' : 'PASS';
}
