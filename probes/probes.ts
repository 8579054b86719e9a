/**
 * `verdict probes`: the app's health endpoints against a live service, then the zero-downtime
 * rules of its manifests with measured values where the harness can measure them.
 *
 * 1. probe-endpoints (kind `probe`): each of startup, liveness and readiness answers what the app
 *    profile says it must (status and body), several times, each answer well within the probe's
 *    `timeoutSeconds` (at most half of it; the manifest's value, else Kubernetes' default of 1 s).
 *    On a target that can take the app's dependencies away (embedded), each dependency in turn:
 *    liveness must keep answering on every pod while it is gone (readiness may not, and is
 *    recorded), and the service must be ready again once it is back.
 * 2. measurements (kind `probe`, only with a cluster): start time and endpoint propagation (see
 *    measure.ts); a measurement that broke is ERROR, never a silent assumption.
 * 3. manifests (kind `probe`, only with manifests): one gate per finding of probes/manifest-lint.ts,
 *    FAIL for errors (and warnings with failOn 'warning').
 */
import type { AppProfile, ProbeEndpoint } from '../experiments/app-profile.ts';
import { hasCapabilities, type Target, type TargetWith } from '../cluster/target.ts';
import { k8s } from '../lib/kube/client.ts';
import { isPodReady } from '../lib/kube/disrupt.ts';
import { findKind } from '../lib/kube/render.ts';
import { checkWithoutLoad, type CheckRecord, type GateRecord } from '../reports/run-record.ts';
import { CheckFailed, pass, runSuite, type SuiteCheck, type SuiteRun } from '../lib/checks/suite.ts';
import { suiteCheckRecord } from '../suites/record.ts';
import { findingVerdict, lintManifests, type Finding, type Measurements } from './manifest-lint.ts';
import type { ManifestSource } from './manifest-source.ts';
import { measureByDeletingOnePod, startTimeFromPods } from './measure.ts';

export interface ProbesRunOptions {
  app: AppProfile;
  /** Base URL of the service. */
  url: string;
  /** The manifests to judge (and whose probe settings the live checks use). */
  manifests?: ManifestSource;
  /** The cluster the service runs on: dependencies to take away, values to measure. */
  target?: Target;
  /**
   * `disruptive`: delete one pod to measure propagation and start time (only on a target the
   * harness owns that observes its routing; elsewhere it falls back to read-only); `read-only`:
   * start times from the pods' conditions; `none`. Default `disruptive`.
   */
  measure?: 'disruptive' | 'read-only' | 'none';
  /** Take each dependency away to check liveness (needs target.dependencies). Default true. */
  cutDependencies?: boolean;
  failOn?: 'error' | 'warning';
  /** Requests per endpoint. Default 5. */
  samples?: number;
  signal?: AbortSignal;
  say?: (m: string) => void;
}

export interface ProbesResult {
  checks: CheckRecord[];
  endpoints: SuiteRun;
  findings: Finding[];
  measured: Measurements;
  /** The run broke (unreachable, interrupted) or null. */
  error: string | null;
}

const K8S_DEFAULT_TIMEOUT_S = 1;

/** The app's container in the workload's Deployment among `objects`, or undefined. */
function appContainer(app: AppProfile, objects: ManifestSource['objects'] | undefined): k8s.V1Container | undefined {
  const d = objects && findKind(objects, 'Deployment', app.workload.deployment);
  return d?.spec?.template?.spec?.containers?.find((c) => c.name === app.workload.container);
}

function endpointCheck(e: ProbeEndpoint, container: k8s.V1Container | undefined, samples: number): SuiteCheck {
  const probe = container?.[`${e.probe}Probe` as const];
  const path = probe?.httpGet?.path ?? e.path;
  const timeoutS = probe?.timeoutSeconds ?? K8S_DEFAULT_TIMEOUT_S;
  const timeoutSource = probe
    ? `the manifest's ${e.probe}Probe timeoutSeconds ${timeoutS} s`
    : container
      ? `no ${e.probe}Probe in the manifest: Kubernetes' default timeoutSeconds ${timeoutS} s`
      : `no manifest given: Kubernetes' default timeoutSeconds ${timeoutS} s`;
  const budgetMs = (timeoutS * 1000) / 2;
  return {
    name: e.probe,
    budgetMs,
    verifies: `GET ${path} answers ${e.expects}, ${samples} times, each within half of ${timeoutSource}`,
    async run({ http }) {
      let slowest = 0;
      for (let i = 0; i < samples; i++) {
        const r = await http.request(path);
        slowest = Math.max(slowest, r.durationMs);
        const problem = e.judge({ status: r.status, json: r.json, text: r.text });
        if (problem)
          throw new CheckFailed(`GET ${path} ${problem}${i ? ` (on request ${i + 1} of ${samples})` : ''}`, {
            status: r.status,
            path,
          });
      }
      return pass(
        `GET ${path} answered as the ${e.probe} probe needs ${samples} times; slowest ${slowest.toFixed(1)} ms, budget ${budgetMs} ms (half of ${timeoutSource})`,
        { path, samples, timeout_seconds: timeoutS, slowest_ms: Math.round(slowest * 10) / 10 },
      );
    },
  };
}

/** Liveness on every pod while `dep` is stopped; the dependency is restarted (also on interrupt) and the service must be ready again. */
function withoutDependencyCheck(app: AppProfile, target: TargetWith<'dependencies'>, dep: string): SuiteCheck {
  const live = app.probes!.endpoints.find((e) => e.probe === 'liveness')!;
  const ready = app.probes!.endpoints.find((e) => e.probe === 'readiness');
  const w = app.workload;
  return {
    name: `liveness-without-${dep}`,
    budgetMs: 2000,
    verifies: `with ${dep} stopped, ${live.path} answers ${live.statusWithoutDependency ?? 200} on every pod (the kubelet must not restart them for an outage it cannot fix); the service is ready again once ${dep} is back`,
    async run(ctx) {
      const core = target.kubeConfig.makeApiClient(k8s.CoreV1Api);
      const pods = (await core.listNamespacedPod({ namespace: w.namespace, labelSelector: w.selector })).items.filter(
        (p) => !p.metadata?.deletionTimestamp && isPodReady(p) && p.status?.podIP,
      );
      if (!pods.length) throw new CheckFailed(`no ready pod of ${w.selector} to ask`);
      const portOf = (p: k8s.V1Pod) => p.spec?.containers.find((c) => c.name === w.container)?.ports?.[0]?.containerPort ?? 80;
      const restartsBefore = pods.map((p) => (p.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0));
      const deps = target.dependencies;
      await deps.stop(dep);
      const undo = ctx.cleanup.add(`start ${dep}`, async () => {
        await deps.start(dep);
        return `${dep} started again`;
      });
      const answers: string[] = [];
      let bad: string | null = null;
      try {
        await new Promise((r) => setTimeout(r, 1500));
        for (const p of pods) {
          const pod = ctx.http.withBase(`http://${p.status!.podIP}:${portOf(p)}`);
          const l = await pod.request(live.path);
          const rd = ready ? await pod.request(ready.path) : null;
          answers.push(`${p.metadata!.name}: live ${l.status}${rd ? `, ready ${rd.status}` : ''}`);
          if (l.status !== (live.statusWithoutDependency ?? 200) && !bad)
            bad = `${p.metadata!.name} answered ${live.path} ${l.status} with ${dep} stopped`;
        }
      } finally {
        await deps.start(dep);
        undo();
      }
      if (bad)
        throw new CheckFailed(`${bad}: liveness depends on ${dep}, so an outage would restart every pod (${answers.join('; ')})`);
      // Back: the Service must answer ready again (bounded).
      const deadline = Date.now() + 60_000;
      let last = 0;
      for (;;) {
        last = (await ctx.http.request(ready?.path ?? w.readyPath, { timeoutMs: 5000 }).catch(() => ({ status: 0 }))).status;
        if (last === 200) break;
        if (Date.now() > deadline)
          throw new CheckFailed(`${dep} is back, but ${ready?.path ?? w.readyPath} still answers ${last} after 60 s`);
        await new Promise((r) => setTimeout(r, 500));
      }
      const after = (await core.listNamespacedPod({ namespace: w.namespace, labelSelector: w.selector })).items;
      const restarted = pods.filter((p, i) => {
        const now = after.find((a) => a.metadata?.name === p.metadata?.name);
        return now && (now.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0) > restartsBefore[i];
      });
      if (restarted.length)
        throw new CheckFailed(
          `containers restarted during the ${dep} outage: ${restarted.map((p) => p.metadata!.name).join(', ')}`,
        );
      return pass(`with ${dep} stopped every pod stayed live (${answers.join('; ')}); ready again once it was back, no restart`, {
        pods: pods.length,
        dependency: dep,
      });
    },
  };
}

export async function runProbes(o: ProbesRunOptions): Promise<ProbesResult> {
  const { app } = o;
  if (!app.probes) throw new Error(`the ${app.name} profile has no probe description`);
  const say = o.say ?? (() => {});
  const container = appContainer(app, o.manifests?.objects);
  if (o.manifests && !container)
    throw new Error(
      `${o.manifests.source} has no Deployment ${app.workload.deployment} with a container ${app.workload.container}`,
    );
  const checks: SuiteCheck[] = app.probes.endpoints.map((e) => endpointCheck(e, container, o.samples ?? 5));
  const t = o.target;
  if (t && hasCapabilities(t, ['dependencies']) && (o.cutDependencies ?? true) && t.owned) {
    for (const dep of t.dependencies.names()) checks.push(withoutDependencyCheck(app, t, dep));
  }
  const endpoints = await runSuite({
    name: 'probe-endpoints',
    url: o.url,
    checks,
    signal: o.signal,
    say,
    recordHeaders: [app.identityHeaders.version, app.identityHeaders.backend],
    versionHeader: app.identityHeaders.version,
    retries: 0,
    description: `${app.name}'s startup, liveness and readiness endpoints against ${o.url}: status and body as the probes need them, each answer within half the probe's timeoutSeconds${checks.length > app.probes.endpoints.length ? '; liveness on every pod with each dependency stopped' : ' (liveness without dependencies is checked only on a target that can take them away: embedded)'}.`,
  });
  const records: CheckRecord[] = [suiteCheckRecord(endpoints, 'probe')];
  let error = endpoints.error;
  const measured: Measurements = {};
  if (t && !error && (o.measure ?? 'disruptive') !== 'none') {
    const m = await measurements(t, o, measured);
    records.push(m.record);
    error = m.error ?? error;
  }
  let findings: Finding[] = [];
  if (o.manifests) {
    const m = manifestsRecord(o.manifests, app, o.failOn ?? 'error', measured);
    findings = m.findings;
    records.push(m.record);
  }
  return { checks: records, endpoints, findings, measured, error };
}

/**
 * Start time and endpoint propagation on the target, into `measured`: by deleting one pod where the
 * harness owns a target that observes its routing, else read from the pods' conditions. A
 * measurement that broke is an ERROR gate, never a silent assumption.
 */
async function measurements(
  t: Target,
  o: ProbesRunOptions,
  measured: Measurements,
): Promise<{ record: CheckRecord; error: string | null }> {
  const { app } = o;
  const started = Date.now();
  const gates: GateRecord[] = [];
  let timeline: CheckRecord['timeline'] = [];
  let error: string | null = null;
  const disruptive = (o.measure ?? 'disruptive') === 'disruptive' && !!t.routing && t.owned;
  try {
    if (disruptive) {
      const m = await measureByDeletingOnePod(t, app.workload, { signal: o.signal, say: o.say });
      measured.propagationMs = m.propagationMs;
      measured.startMs = m.startMs;
      timeline = m.timeline;
    }
    measured.startMs ??= await startTimeFromPods(t.kubeConfig, app.workload.namespace, app.workload.selector);
    gates.push(startTimeGate(measured), ...propagationGate(measured));
  } catch (err) {
    if (o.signal?.aborted) error = String((o.signal.reason as Error)?.message ?? o.signal.reason ?? 'interrupted');
    gates.push({
      name: 'measurement',
      verdict: 'ERROR',
      evidence: `the measurement broke: ${(err as Error).message}`,
      observed: {},
    });
  }
  const record = checkWithoutLoad({
    name: 'measurements',
    kind: 'probe',
    description: disruptive
      ? `start time and endpoint propagation measured on the ${t.kind} cluster by deleting one pod (with its grace period) and watching its replacement`
      : `start time read from the pods' conditions on the ${t.kind} target (read-only); ${propagationNotMeasured(t)}`,
    startedAt: started,
    gates,
    timeline: timeline.map((e) => ({ ...e })),
  });
  return { record, error };
}

function startTimeGate(measured: Measurements): GateRecord {
  return measured.startMs
    ? {
        name: 'start time',
        verdict: 'PASS',
        evidence: `${(measured.startMs.ms / 1000).toFixed(2)} s: ${measured.startMs.source}`,
        observed: { ms: measured.startMs.ms },
      }
    : {
        name: 'start time',
        verdict: 'INCONCLUSIVE',
        evidence: 'no ready pod to measure a start time from',
        observed: { ms: null },
      };
}

/**
 * The measured propagation as a gate, or none: a target where the harness deletes no pod (not its
 * own, or blind to its data plane) gives no evidence, and an unmeasured value must not read as a
 * PASS. The record's description says it was not measured and why; the manifest check assumes a
 * value and says so in its finding.
 */
function propagationGate(measured: Measurements): GateRecord[] {
  const p = measured.propagationMs;
  return p
    ? [
        {
          name: 'endpoint propagation',
          verdict: 'PASS',
          evidence: `${(p.ms / 1000).toFixed(2)} s: ${p.source}`,
          observed: { ms: p.ms },
        },
      ]
    : [];
}

/** Why propagation was not measured on `t`, for the record's description. */
function propagationNotMeasured(t: Target): string {
  return `endpoint propagation not measured: the ${t.kind} target ${t.routing ? "is not the harness's own (it deletes no pod there)" : 'does not observe its data plane'} (no gate: the manifest check assumes a value and says so)`;
}

/** The manifests' findings, one gate each: FAIL for errors (and warnings with failOn 'warning'). */
function manifestsRecord(
  manifests: ManifestSource,
  app: AppProfile,
  failOn: 'error' | 'warning',
  measured: Measurements,
): { record: CheckRecord; findings: Finding[] } {
  const started = Date.now();
  const findings = lintManifests(manifests.objects, { deployments: [app.workload.deployment], app: app.probes, measured });
  const gates: GateRecord[] = findings.map((f) => ({
    name: f.rule,
    verdict: findingVerdict(f, failOn),
    evidence: `${f.severity}: ${f.message}`,
    observed: {
      severity: f.severity,
      object: f.object,
      field: f.field,
      measured: f.measured,
      required: f.required,
      fix: f.fix,
    },
  }));
  if (!gates.length) gates.push({ name: 'manifests', verdict: 'PASS', evidence: 'no finding', observed: {} });
  const count = (s: Finding['severity']) => findings.filter((f) => f.severity === s).length;
  const record = checkWithoutLoad({
    name: 'manifests',
    kind: 'probe',
    description: `zero-downtime rules of ${manifests.source} (Deployment ${app.workload.deployment}), failing on ${failOn === 'warning' ? 'warnings and errors' : 'errors'}: ${count('error')} errors, ${count('warning')} warnings, ${count('info')} notes`,
    startedAt: started,
    gates,
  });
  return { record, findings };
}
