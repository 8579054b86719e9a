// Distributed load on the embedded cluster: the license API deployed, two load agents as an Indexed
// Job reaching its Service at the pod gateway's NodePort and reporting to a collector on that gateway.
// The merged totals must be the sum of the agents' parts and match the Service's own
// http_requests_total; a killed agent must make the run INCONCLUSIVE, naming it. An experiment
// whose load comes from agents (--agents) must judge as one from this process does: a broken release
// here, the shipped one in agents-rollout.cluster.test.ts. Needs root.
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { licenseApi, licenseApiToken } from '../../../apps/license-api/profile.ts';
import { EMBEDDED_PLATFORM, upEmbedded, type EmbeddedCluster } from '../../../cluster/embedded/embedded-cluster.ts';
import { isNotFound, k8s } from '../../kube/client.ts';
import { deployRelease, renderRelease } from '../../kube/deploy.ts';
import { findKind } from '../../kube/render.ts';
import { isPodReady, waitForSettled } from '../../kube/disrupt.ts';
import { startAgents, type RunAgentsOptions } from './index.ts';
import { noAgentsLeft, rolloutFromAgents } from '../../../experiments/testing/agents-experiment.ts';
import { errorText } from '../../errors.ts';
import { THIRD_LOADED_SLOT } from '../../../cluster/embedded/testing/lanes.ts';

const STATE = '/var/lib/verdict/test-agents';
const NS = licenseApi.workload.namespace;
const SCENARIO = fileURLToPath(new URL('../../../apps/license-api/load-scenario.ts', import.meta.url));
const log = (m: string) => process.stderr.write(`  ${m}\n`);

let cluster: EmbeddedCluster;
let core: k8s.CoreV1Api;
let batch: k8s.BatchV1Api;
let token: string;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last error: ${errorText(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

beforeAll(async () => {
  cluster = await upEmbedded({ name: 'verdict', stateDir: STATE, nodes: 3, slot: THIRD_LOADED_SLOT, onProgress: log });
  core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
  batch = cluster.kubeConfig.makeApiClient(k8s.BatchV1Api);
  await cluster.images.load([licenseApi.image('v1')], log);
  const release = licenseApi.release('v1', cluster.platform);
  await deployRelease(cluster.kubeConfig, release, { timeoutMs: 240_000, onProgress: log }).catch(async (err) => {
    // Say what the node agent saw before failing (a CreateContainerConfigError names its cause in an Event).
    const events = (await core.listNamespacedEvent({ namespace: NS })).items.filter((e) => e.type === 'Warning');
    for (const e of events) log(`event ${e.involvedObject.name} ${e.reason}: ${e.message}`);
    throw err;
  });
  const replicas = findKind(await renderRelease(release), 'Deployment')?.spec?.replicas ?? 1;
  await waitForSettled(cluster.kubeConfig, NS, licenseApi.workload.selector, licenseApi.workload.deployment, replicas);
  // The Service answers on the node port at the pod gateway too (where the agents reach it).
  for (const base of [cluster.serviceUrl(30080), cluster.podReach.serviceUrl(30080)]) {
    await waitFor(
      `the Service at ${base}`,
      async () => (await fetch(`${base}/health/ready`, { headers: { connection: 'close' } })).status === 200,
      60_000,
    );
  }
  token = await licenseApiToken(EMBEDDED_PLATFORM, 'load-agents');
}, 600_000);
afterAll(async () => {
  await cluster?.close();
}, 120_000);

/** Pod name → the sum of http_requests_total over the license routes, from every license-api pod's own /metrics. */
async function licenseRequestsServed(): Promise<{ total: number; restarts: number; pods: string[] }> {
  const pods = (await core.listNamespacedPod({ namespace: NS, labelSelector: licenseApi.workload.selector })).items.filter(
    (p) => isPodReady(p) && !p.metadata?.deletionTimestamp,
  );
  let total = 0;
  for (const p of pods) {
    const text = await (await fetch(`http://${p.status!.podIP}:8000/metrics`, { headers: { connection: 'close' } })).text();
    for (const m of text.matchAll(/^http_requests_total\{([^}]*)\} (\d+)$/gm))
      if (/route="\/api\/v1\/licenses\//.test(m[1])) total += Number(m[2]);
  }
  const restarts = pods.reduce((n, p) => n + (p.status?.containerStatuses ?? []).reduce((a, c) => a + c.restartCount, 0), 0);
  return { total, restarts, pods: pods.map((p) => p.metadata!.name!).sort() };
}

const agentOptions = (duration: string): RunAgentsOptions => ({
  cluster,
  agents: 2,
  url: cluster.podReach.serviceUrl(licenseApi.workload.nodePort),
  namespace: 'default',
  // 40 license flows a second (acquire → heartbeat → release: 120 requests a second), split over two agents.
  executor: { executor: 'constant-arrival-rate', rate: 40, duration },
  scenario: SCENARIO,
  env: { LICENSE_TOKEN: token, LICENSE_KEY: 'TEST-KEY' },
  identityHeaders: licenseApi.identityHeaders,
  thresholds: { http_req_failed: ['rate<0.01'] },
  startDelayMs: 8000,
  onProgress: log,
});

async function nothingLeft(job: string, selector: string): Promise<void> {
  await expect(batch.readNamespacedJob({ name: job, namespace: 'default' })).rejects.toSatisfy(isNotFound);
  await expect(core.readNamespacedSecret({ name: job, namespace: 'default' })).rejects.toSatisfy(isNotFound);
  expect((await core.listNamespacedPod({ namespace: 'default', labelSelector: selector })).items).toEqual([]);
}

describe('Indexed Jobs on the embedded node agent', () => {
  it('runs each index with JOB_COMPLETION_INDEX and its hostname, finishes pods as Succeeded or Failed, and the Job controller counts them', async () => {
    // Each container writes what it saw into a world-writable directory (pods run as another user).
    const marks = join(STATE, 'job-marks');
    await rm(marks, { recursive: true, force: true });
    await mkdir(marks, { recursive: true });
    await chmod(marks, 0o777);
    await cluster.imageStore.addFiles('verdict-test-indexed:v1', ['node', 'job.mjs'], {
      'job.mjs': `import { writeFileSync } from 'node:fs';
writeFileSync(process.env.MARK_DIR + '/' + process.env.JOB_COMPLETION_INDEX + '.json', JSON.stringify({ index: process.env.JOB_COMPLETION_INDEX, host: process.env.HOSTNAME }));
process.exitCode = process.env.JOB_COMPLETION_INDEX === '2' ? 3 : 0;`,
    });
    const name = 'indexed-check';
    await batch.createNamespacedJob({
      namespace: 'default',
      body: {
        metadata: { name },
        spec: {
          completionMode: 'Indexed',
          completions: 3,
          parallelism: 3,
          backoffLimitPerIndex: 0,
          podReplacementPolicy: 'Failed',
          template: {
            spec: {
              restartPolicy: 'Never',
              securityContext: { runAsUser: 65532 },
              containers: [{ name: 'c', image: 'verdict-test-indexed:v1', env: [{ name: 'MARK_DIR', value: marks }] }],
            },
          },
        },
      },
    });
    try {
      const job = await waitFor(
        'the Job to finish',
        async () => {
          const j = await batch.readNamespacedJob({ name, namespace: 'default' });
          return j.status?.conditions?.some((c) => (c.type === 'Failed' || c.type === 'Complete') && c.status === 'True') && j;
        },
        90_000,
        500,
      );
      expect(job.status).toMatchObject({ completedIndexes: '0,1', failedIndexes: '2', succeeded: 2, failed: 1 });
      expect(job.status!.conditions!.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'FailedIndexes' });
      const pods = (await core.listNamespacedPod({ namespace: 'default', labelSelector: `batch.kubernetes.io/job-name=${name}` }))
        .items;
      const byIndex = new Map(pods.map((p) => [p.metadata!.labels!['batch.kubernetes.io/job-completion-index'], p]));
      expect([...byIndex.keys()].sort()).toEqual(['0', '1', '2']);
      expect(['0', '1', '2'].map((i) => byIndex.get(i)!.status!.phase)).toEqual(['Succeeded', 'Succeeded', 'Failed']);
      expect(byIndex.get('2')!.status!.containerStatuses![0].state!.terminated).toMatchObject({ exitCode: 3 });
      // What each container saw: its index, and the hostname the Job controller gave its pod.
      for (const i of byIndex.keys()) {
        expect(JSON.parse(await readFile(join(marks, `${i}.json`), 'utf8'))).toEqual({ index: i, host: `${name}-${i}` });
      }
    } finally {
      await batch.deleteNamespacedJob({ name, namespace: 'default', propagationPolicy: 'Background' });
      await waitFor(
        "the Job's pods gone",
        async () =>
          (await core.listNamespacedPod({ namespace: 'default', labelSelector: `batch.kubernetes.io/job-name=${name}` })).items
            .length === 0,
        60_000,
      );
    }
  }, 180_000);
});

describe('load agents as an Indexed Job', () => {
  it('two agents: the merged totals are the sum of their parts and what the Service counted itself', async () => {
    const before = await licenseRequestsServed();
    const run = await startAgents(agentOptions('15s'));
    const result = await run.result;
    // /metrics renderings are shared for up to a second: wait that out before the second scrape.
    await new Promise((r) => setTimeout(r, 1500));
    const after = await licenseRequestsServed();
    const { summary, assessment, ledger, agents } = result;
    log(
      `merged: ${summary.counts.scheduled} requests, ${summary.counts.failed} failed; agents ${JSON.stringify(agents)}; ${assessment.verdict} ${assessment.reasons.join('; ')}`,
    );
    expect(assessment).toEqual({ verdict: 'PASS', reasons: [] });
    expect(agents.map((a) => [a.index, a.reported, a.problem])).toEqual([
      [0, true, null],
      [1, true, null],
    ]);
    // 600 planned flows (40/s for 15 s), each agent 300 of them, three requests each.
    expect(summary.rates.planned).toBe(600);
    expect(summary.counts.iterations.started).toBe(600);
    expect(ledger.length).toBe(agents[0].rows + agents[1].rows);
    expect(agents.map((a) => a.rows)).toEqual([900, 900]);
    expect(summary.counts).toMatchObject({ scheduled: 1800, succeeded: 1800, failed: 0, dropped: 0, pending: 0 });
    // Every pod behind the Service answered some of them.
    expect(Object.keys(summary.servedBy).sort()).toEqual(before.pods);
    // The Service's own count: every request that got an answer was counted once by the pod that
    // answered it. Requests without an answer (none here) might or might not have been counted.
    expect(after.restarts).toBe(before.restarts);
    expect(after.pods).toEqual(before.pods);
    const answered = [...ledger.rows()].filter((r) => r.status !== 0).length;
    const unanswered = ledger.length - answered;
    const served = after.total - before.total;
    log(`the Service counted ${served} license requests; the merged ledger has ${answered} answered, ${unanswered} unanswered`);
    expect(Math.abs(served - answered)).toBeLessThanOrEqual(unanswered);
    expect(served).toBe(1800);
    await nothingLeft(run.job, run.selector);
  }, 240_000);

  it('a killed agent makes the run INCONCLUSIVE, naming the agent that is missing', async () => {
    const run = await startAgents(agentOptions('20s'));
    await new Promise((r) => setTimeout(r, run.startAt + 5000 - Date.now()));
    const victim = await waitFor(
      "agent 1's pod",
      async () =>
        (await core.listNamespacedPod({ namespace: run.namespace, labelSelector: run.selector })).items.find(
          (p) => p.metadata?.labels?.['batch.kubernetes.io/job-completion-index'] === '1' && p.status?.phase === 'Running',
        ),
      10_000,
    );
    log(`deleting ${victim.metadata!.name} with grace 0`);
    await core.deleteNamespacedPod({ name: victim.metadata!.name!, namespace: run.namespace, gracePeriodSeconds: 0 });
    const result = await run.result;
    log(`${result.assessment.verdict}: ${result.assessment.reasons.join('; ')}`);
    expect(result.assessment.verdict).toBe('INCONCLUSIVE');
    expect(result.assessment.reasons[0]).toMatch(
      new RegExp(`^agent 1 \\(${victim.metadata!.name}\\) did not report: its pod ${victim.metadata!.name} (failed|was deleted)`),
    );
    expect(result.assessment.reasons.join('\n')).toMatch(/achieved load below target/);
    expect(result.agents.map((a) => [a.index, a.reported])).toEqual([
      [0, true],
      [1, false],
    ]);
    // The surviving agent ran its whole share (a lost agent does not take the others down).
    expect(result.agents[0].rows).toBe(1200);
    expect(result.ledger.length).toBe(1200);
    expect(result.summary.counts.failed).toBe(0);
    await nothingLeft(run.job, run.selector);
  }, 240_000);
});

// The shipped release's rollout with the load from agents runs alone (its latency is judged):
// agents-rollout.cluster.test.ts. This FAIL runs beside other suites in make test.
describe('experiments with their load from agents (--agents)', () => {
  it('a release with a raised error rate FAILs, every failure an application-5xx from a v2 pod, as with the load in-process', async () => {
    const r = await rolloutFromAgents(cluster, licenseApi, ['error-rate']);
    expect(r.verdict).toBe('FAIL');
    expect(r.gates.find((g) => g.name === 'no failed request')?.verdict).toBe('FAIL');
    const failures = r.evidence!.loads[0].joined.failures;
    expect(failures.length).toBeGreaterThan(10);
    for (const f of failures) {
      expect(f.cause).toBe('application-5xx');
      expect(f.version).toBe('v2');
    }
    await noAgentsLeft(cluster);
  }, 600_000);
});
