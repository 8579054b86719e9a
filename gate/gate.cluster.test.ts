import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { licenseApi, licenseApiToken } from '../apps/license-api/profile.ts';
import { EMBEDDED_PLATFORM, upEmbedded, type EmbeddedCluster } from '../cluster/embedded/embedded-cluster.ts';
import { k8s } from '../lib/kube/client.ts';
import { deployRelease } from '../lib/kube/deploy.ts';
import { waitForSettled } from '../lib/kube/disrupt.ts';
import { PromqlSource, type MetricSource } from '../lib/metrics/index.ts';
import { startPrometheus, type PrometheusServer } from '../lib/services/prometheus.ts';
import { assertValidRunRecord } from '../reports/render/json.ts';
import { suiteRunRecord } from '../suites/record.ts';
import { runGate, type GateOptions, type GateResult } from './post-deploy-gate.ts';
import { gateHeadline } from './rollback.ts';
import { exitCodeOf } from '../lib/verdict.ts';

// The post-deploy gate on the embedded cluster: the release is applied without waiting (as the
// production pipeline does), then the gate waits, smokes, judges a window of the harness's own load
// and of a real Prometheus that finds the pods through the Kubernetes API, and rolls back.
const STATE = '/var/lib/verdict/test-gate';
const NS = licenseApi.workload.namespace;
let cluster: EmbeddedCluster;
let prometheus: PrometheusServer;
let token: string;

const fault = (name: string) => licenseApi.faults[name];
const apply = (tag: string, faults: string[] = []) =>
  deployRelease(cluster.kubeConfig, licenseApi.release(tag, EMBEDDED_PLATFORM, faults.map(fault)), { wait: false });
const envOfTemplate = async () =>
  (
    await cluster.kubeConfig.makeApiClient(k8s.AppsV1Api).readNamespacedDeployment({ namespace: NS, name: 'license-api' })
  ).spec!.template.spec!.containers[0].env?.map((e) => e.name) ?? [];

beforeAll(async () => {
  cluster = await upEmbedded({ name: 'verdict', stateDir: STATE, nodes: 3 });
  await cluster.images.load(['v1', 'v2'].map((tag) => licenseApi.image(tag)));
  await deployRelease(cluster.kubeConfig, licenseApi.release('v1', EMBEDDED_PLATFORM), { timeoutMs: 240_000 });
  await waitForSettled(cluster.kubeConfig, NS, licenseApi.workload.selector, 'license-api', 3);
  token = await licenseApiToken(EMBEDDED_PLATFORM, 'gate-test');
  prometheus = await startPrometheus({ jobs: [], fileJobs: [{ name: 'license-api' }], scrapeIntervalSeconds: 1 });
  // Service discovery: every pod of the workload with an address, from the Kubernetes API, kept
  // current in Prometheus' target file (what a cluster's Prometheus does with kubernetes_sd).
  const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  let last = '';
  const discover = async () => {
    const pods = (await core.listNamespacedPod({ namespace: NS, labelSelector: licenseApi.workload.selector })).items.filter(
      (p) => p.status?.podIP,
    );
    const groups = pods.map((p) => ({ targets: [`${p.status!.podIP}:8000`], labels: { kubernetes_pod: p.metadata!.name! } }));
    const text = JSON.stringify(groups);
    if (text !== last) {
      last = text;
      await prometheus.setFileTargets('license-api', groups);
    }
  };
  await discover();
  discovery = setInterval(() => {
    discover().catch(() => {});
  }, 500);
}, 600_000);
let discovery: NodeJS.Timeout | undefined;
afterAll(async () => {
  clearInterval(discovery);
  await prometheus?.stop();
  await cluster?.close();
}, 120_000);

async function gate(o: Partial<GateOptions> & { sources: MetricSource[] }): Promise<GateResult> {
  const r = await runGate({
    target: cluster,
    app: licenseApi,
    namespace: NS,
    deployment: 'license-api',
    url: cluster.serviceUrl(30080),
    token,
    windowMs: 12_000,
    rate: 40,
    maxErrorRate: 0.01,
    minRequests: 200,
    onInconclusive: 'rollback',
    rollback: true,
    timeoutMs: 240_000,
    sourceDelayMs: 3000,
    signal: new AbortController().signal,
    say: (m) => process.stderr.write(`  gate: ${m}\n`),
    ...o,
  });
  const record = suiteRunRecord({
    command: 'gate',
    target: { kind: 'embedded', name: 'verdict', context: null, serverVersion: null, url: null, endpointLagMs: 1000 },
    checks: r.checks,
    startedAt: Date.now() - 1000,
    endedAt: Date.now(),
    app: { name: 'license-api', versions: {}, faults: [] },
  });
  assertValidRunRecord(record, 'gate');
  process.stderr.write(
    `gate: decision ${r.decision}, ${r.action}\n${r.checks.flatMap((c) => c.gates.map((g) => `  ${c.name} ${g.verdict} ${g.name}: ${g.evidence}`)).join('\n')}\n`,
  );
  return r;
}
const promql = () => new PromqlSource({ baseUrl: prometheus.url, stepSeconds: 2 });
const gateOf = (r: GateResult, check: string, name: RegExp) =>
  r.checks.find((c) => c.name === check)?.gates.find((g) => name.test(g.name));

describe('verdict gate', () => {
  it('a good v2 PASSes on client and Prometheus evidence after the whole watched window, and nothing is rolled back', async () => {
    await apply('v2');
    const r = await gate({ sources: [promql()], lookEveryMs: 3000 });
    expect(r.decision).toBe('PASS');
    // Watched every 3 s and never stopped: a PASS needs the whole window (4 looks of 12 s).
    const watched = gateOf(r, 'metrics', /^client: watched continuously/)!;
    expect([watched.verdict, watched.observed.looks, watched.observed.planned_looks, watched.observed.stopped_early]).toEqual([
      'PASS',
      4,
      4,
      0,
    ]);
    expect(r.action).toBe('none');
    expect(r.versions).toEqual({ candidate: 'v2', baseline: 'v1' });
    expect(gateOf(r, 'metrics', /^promql: error rate/)?.verdict).toBe('PASS');
    expect(gateOf(r, 'metrics', /^client: error rate/)?.observed.total).toBeGreaterThanOrEqual(200);
    expect(r.checks.map((c) => c.name)).toEqual(['rollout', 'smoke', 'metrics']);
  }, 600_000);

  it('a v2 with a raised error rate is stopped early in a long watched window, FAILs, is rolled back, and the rollback is verified', async () => {
    await apply('v2', ['error-rate']);
    // A 5-minute window judged every 3 s: the clear failure must not wait for the window's end.
    const r = await gate({ sources: [promql()], windowMs: 300_000, lookEveryMs: 3000 });
    expect(r.decision).toBe('FAIL');
    const watched = gateOf(r, 'metrics', /^client: watched continuously/)!;
    expect(watched.verdict).toBe('FAIL');
    expect(watched.observed.stopped_early).toBe(1);
    expect(watched.observed.looks).toBeLessThanOrEqual(5);
    expect(watched.evidence).toMatch(/stopped early at look \d+ of 100/);
    // The fixed-window gates judge what the window got; none can PASS a release at 5 % errors.
    expect(gateOf(r, 'metrics', /^client: error rate/)?.verdict).not.toBe('PASS');
    expect(r.action).toBe('rolled-back');
    expect(r.checks.find((c) => c.name === 'rollback')?.gates.map((g) => [g.name, g.verdict])).toEqual([
      ['rolled back', 'PASS'],
      ['rollback rolled out', 'PASS'],
      ['read-only smoke after the rollback', 'PASS'],
    ]);
    expect(await envOfTemplate()).not.toContain('FAULT_ERROR_RATE');
  }, 600_000);

  it('a v2 that never becomes ready FAILs before the progress deadline, with its pods as evidence, and is rolled back', async () => {
    await apply('v2', ['never-ready']);
    const started = Date.now();
    const r = await gate({ sources: [] });
    expect(r.decision).toBe('FAIL');
    const rollout = gateOf(r, 'rollout', /rollout completed/)!;
    expect(rollout.verdict).toBe('FAIL');
    expect(rollout.evidence).toMatch(/without becoming Ready/);
    expect(r.checks.map((c) => c.name)).toEqual(['rollout', 'rollback']);
    expect(r.action).toBe('rolled-back');
    // At the readiness budget (2 × 5 s × 3 + 30 s after start-up) plus the rollback: far sooner than the
    // Deployment's 600 s progress deadline, which is also this test's timeout.
    expect(Date.now() - started).toBeLessThan(180_000);
  }, 600_000);

  it('Prometheus down is never PASS: the source ERRORs; with --no-rollback the gate says what it would do and changes nothing', async () => {
    await apply('v1');
    await prometheus.pause();
    try {
      const r = await gate({ sources: [promql()], rollback: false });
      expect(gateOf(r, 'metrics', /^promql: error rate/)?.verdict).toBe('ERROR');
      expect(gateOf(r, 'metrics', /^client: error rate/)?.verdict).toBe('PASS');
      expect(r.decision).toBe('ERROR');
      expect(r.action).toBe('would-roll-back');
      expect(gateOf(r, 'rollback', /rollback not done/)?.evidence).toMatch(
        /would have rolled coditect\/license-api back to revision \d+ \(v2\)/,
      );
      const d = await cluster.kubeConfig
        .makeApiClient(k8s.AppsV1Api)
        .readNamespacedDeployment({ namespace: NS, name: 'license-api' });
      expect(d.spec!.template.metadata!.labels!['app.kubernetes.io/version']).toBe('v1');
    } finally {
      await prometheus.start();
    }
  }, 600_000);

  it('an empty query is INCONCLUSIVE, never PASS: held when told to hold', async () => {
    await apply('v2');
    const empty = new PromqlSource({ baseUrl: prometheus.url, stepSeconds: 2, selector: 'route="/no-such-route"' });
    const r = await gate({ sources: [empty], onInconclusive: 'hold' });
    expect(gateOf(r, 'metrics', /^promql: error rate/)?.verdict).toBe('INCONCLUSIVE');
    expect(r.decision).toBe('INCONCLUSIVE');
    expect(r.action).toBe('held');
    const d = await cluster.kubeConfig
      .makeApiClient(k8s.AppsV1Api)
      .readNamespacedDeployment({ namespace: NS, name: 'license-api' });
    expect(d.spec!.template.metadata!.labels!['app.kubernetes.io/version']).toBe('v2');
  }, 600_000);

  it('a rollback that worked but whose verification met an expired token: "rollback done, verification could not run", ERROR', async () => {
    // Issue 22: the token has expired before the gate starts, past the API's 5 s clock tolerance (the
    // rollout needs no token; how soon a crash loop is judged depends on probe timing, so the test does
    // not race it); the crash-looping
    // release FAILs, is rolled back, and the read-only smoke after the rollback gets 401 TOKEN_EXPIRED.
    // (The never-ready case above shows the rollout's own failure path.)
    const shortLived = await licenseApiToken(EMBEDDED_PLATFORM, 'gate-expiring', '1s');
    await apply('v2'); // the release before: rolled back to, whichever test ran before this one
    await apply('v2', ['bad-config']);
    await new Promise((resolve) => setTimeout(resolve, 7_500));
    const r = await gate({ sources: [], token: shortLived });
    expect(r.decision).toBe('FAIL');
    expect(r.action).toBe('rolled-back-unverified');
    const rollback = r.checks.find((c) => c.name === 'rollback')!;
    expect(rollback.gates.map((g) => [g.name, g.verdict])).toEqual([
      ['rolled back', 'PASS'],
      ['rollback rolled out', 'PASS'],
      ['read-only smoke after the rollback', 'ERROR'],
    ]);
    expect(rollback.gates[2].evidence).toMatch(
      /^verification could not run: the token expired at .*heartbeat-unknown was refused with 401/,
    );
    const record = suiteRunRecord({
      command: 'gate',
      target: { kind: 'embedded', name: 'verdict', context: null, serverVersion: null, url: null, endpointLagMs: 1000 },
      checks: r.checks,
      startedAt: Date.now() - 1000,
      endedAt: Date.now(),
      app: { name: 'license-api', versions: {}, faults: [] },
    });
    expect(gateHeadline(record.verdict, r)).toBe(
      `ERROR: release ${r.versions.candidate} FAIL; rollback done, verification could not run: token expired`,
    );
    expect(exitCodeOf(record.verdict)).toBe(3);
    const d = await cluster.kubeConfig
      .makeApiClient(k8s.AppsV1Api)
      .readNamespacedDeployment({ namespace: NS, name: 'license-api' });
    expect(d.spec!.template.metadata!.labels!['app.kubernetes.io/version']).toBe('v2');
    expect(d.spec!.template.spec!.containers[0].readinessProbe?.httpGet?.path).not.toBe('/health/never');
  }, 600_000);
});
