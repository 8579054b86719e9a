/**
 * Load from N agents in the cluster: the esbuild agent bundle (engine + scenario) as an image, run as
 * a Kubernetes Indexed Job of N pods (each its share of the load by its completion index, all
 * starting at one shared instant), each reporting its ledger to a collector the harness runs at an
 * address pods reach; the ledgers merged and judged as one run (merge.ts). An agent that does not
 * report (killed, failed, never started, too slow) makes the run INCONCLUSIVE with the reason. The
 * Job, its pods and its Secret are deleted afterwards, also when the run is aborted; the collector
 * is closed.
 *
 *   const result = await runAgents({ cluster: target, agents: 2, url: target.podReach.serviceUrl(30080) + '/health/ready',
 *     executor: { executor: 'constant-arrival-rate', rate: 400, duration: '30s' } });
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isNotFound, k8s, mergePatch, messageOf } from '../../kube/client.ts';
import { bundleLoadAgent } from '../bundle.ts';
import type { IdentityHeaders } from '../engine.ts';
import { planExecutor, type ExecutorConfig } from '../executors.ts';
import { DEFAULT_THRESHOLDS } from '../run-options.ts';
import { TargetNotAllowedError, vetTarget } from '../target-guard.ts';
import { parseThresholds, type ThresholdConfig } from '../thresholds.ts';
import { parseDuration } from '../units.ts';
import { startCollector, type Collector } from './collector.ts';
import { mergeAgentResults, type DistributedLoadResult } from './merge.ts';
import { agentShare } from './share.ts';

/** An image made from a bundle (the shape of cluster/target.ts's ImageSource, which satisfies it). */
export interface AgentImageSource {
  ref: string;
  bundle?: { fill(dir: string): Promise<void>; cmd: string[] };
}

/** What the runner needs of a target (cluster/target.ts's Target satisfies it). */
export interface AgentCluster {
  readonly kubeConfig: k8s.KubeConfig;
  /** Makes a locally built image runnable in the cluster (the embedded image store). */
  readonly images?: { load(images: readonly AgentImageSource[], onProgress?: (m: string) => void): Promise<void> };
  /** Where pods reach this machine and NodePort Services (the embedded cluster's pod gateway). */
  readonly podReach?: { harnessAddress: string; networks: string[]; serviceUrl(nodePort: number): string };
}

export interface RunAgentsOptions {
  cluster: AgentCluster;
  /** Number of agents (pods), 1 to 100. */
  agents: number;
  /** The URL the agents load, as pods see it: e.g. `cluster.podReach.serviceUrl(30080) + '/health/ready'`. */
  url: string;
  /** The whole run's load; each agent runs 1/agents of it (rates and VUs split, see share.ts). */
  executor: ExecutorConfig;
  /** Scenario module bundled into the agents (default: GET the URL's path). */
  scenario?: string;
  /** Environment the scenario reads (e.g. LICENSE_TOKEN): given to the agents through a Secret. */
  env?: Record<string, string>;
  /** Judged on the merged ledger (default `http_req_failed: rate<0.01`). */
  thresholds?: ThresholdConfig;
  /** Per request (default 10 s). */
  timeout?: string | number;
  /** Totals, split over the agents (default per agent: the engine's, 32 connections). */
  connections?: number;
  maxRequests?: number;
  /** Of the merged run (default 100). */
  minRequests?: number;
  maxScheduleDelay?: string | number;
  identityHeaders?: IdentityHeaders;
  /** Namespace of the Job (default `default`). */
  namespace?: string;
  /**
   * An image already runnable in the cluster that holds the agent bundle as `load-agent.mjs` in its
   * working directory and `node` on its PATH (e.g. from `verdict load --bundle`); default: build one
   * from the bundle and load it with `cluster.images`.
   */
  image?: string;
  /** Where the collector listens (default: `cluster.podReach.harnessAddress`, a free port). */
  collector?: { host?: string; port?: number };
  /** Networks the agents' target guard allows besides loopback (default `cluster.podReach.networks`). */
  harnessNetworks?: string[];
  /** How far ahead the shared start instant is set (default 10 s): time for the pods to start. */
  startDelayMs?: number;
  /** An agent that starts later than this after the shared instant makes the run INCONCLUSIVE (default 1 s). */
  maxStartLatenessMs?: number;
  /** How long after the last agent's schedule and graceful stop reports may still come (default 60 s). */
  reportTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
}

export interface AgentsRun extends AsyncDisposable {
  /** The Job's name and namespace, and the label selector of its pods. */
  readonly job: string;
  readonly namespace: string;
  readonly selector: string;
  /** The shared start instant (epoch ms): the merged ledger's origin. */
  readonly startAt: number;
  /** Settles once every agent reported or is known lost, the result merged and everything cleaned up. */
  readonly result: Promise<DistributedLoadResult>;
  /** Stops the run: the agents get SIGTERM (they report what they have); the result is INCONCLUSIVE. */
  abort(reason?: string): void;
  /**
   * Ends the run gracefully: each agent learns it at its next progress post (within about a second),
   * starts no new iteration, lets the running ones finish and reports, as `LoadRun.stop()` does.
   */
  stop(reason?: string): void;
  /** Successful answers from `version` over every agent, as of their last progress post (about 1 s old). */
  answersFrom(version: string): number;
  /**
   * Resolves once every agent has posted progress (its load has started); rejects when one has not
   * `withinMs` after the start instant, when the run ends first, or on abort.
   */
  started(withinMs?: number): Promise<void>;
}

const RUN_LABEL = 'verdict.dev/load-run';
const INDEX_LABEL = 'batch.kubernetes.io/job-completion-index';
const AGENT_USER = 65532;
const TERMINATION_GRACE_S = 20;

/** Runs the agents and waits for the merged result. */
export async function runAgents(o: RunAgentsOptions): Promise<DistributedLoadResult> {
  return await (
    await startAgents(o)
  ).result;
}

/**
 * Checks the plan, builds and loads the agent image, starts the collector and creates the Job;
 * resolves once the Job exists (configuration errors reject here, before any pod runs).
 */
export async function startAgents(o: RunAgentsOptions): Promise<AgentsRun> {
  const say = o.onProgress ?? (() => {});
  const p = await planAgents(o);
  const runId = randomBytes(4).toString('hex');
  const kc = o.cluster.kubeConfig;
  const job: JobRef = {
    name: `verdict-load-${runId}`,
    namespace: o.namespace ?? 'default',
    runId,
    selector: `${RUN_LABEL}=${runId}`,
    batch: kc.makeApiClient(k8s.BatchV1Api),
    core: kc.makeApiClient(k8s.CoreV1Api),
    say,
  };
  const image = o.image ?? (await buildAgentImage(o, say));
  const token = randomBytes(24).toString('base64url');
  const collector = await startCollector({
    host: p.collectorHost,
    port: o.collector?.port,
    token,
    agents: p.n,
    maxRowsPerAgent: Math.max(...p.shares.map((s) => s.maxRequests ?? 5_000_000)),
    onReport: (r) =>
      say(`agent ${r.header.index} reported: ${r.header.rows} requests, its own verdict ${r.header.assessment.verdict}`),
    onRefused: (i, why) => say(`refused a report${i === null ? '' : ` from agent ${i}`}: ${why}`),
  });
  const startAt = Date.now() + (o.startDelayMs ?? 10_000);
  const longestMs = Math.max(...p.agentPlans.map((ap, k) => p.shares[k].offsetMs + ap.durationMs + 1000 + ap.gracefulStopMs));
  const reportTimeoutMs = o.reportTimeoutMs ?? 60_000;
  const deadlineS = Math.ceil((startAt - Date.now() + longestMs + reportTimeoutMs) / 1000) + 30;
  const cleanup = () => removeJob(job, collector);
  try {
    await createJob(job, agentJob(job, image, agentArgs(o, p, startAt, collector), p.n, deadlineS), {
      ...o.env,
      VERDICT_REPORT_TOKEN: token,
    });
  } catch (err) {
    await cleanup();
    throw new Error(`creating the load agents' Job ${job.namespace}/${job.name} failed: ${messageOf(err)}`);
  }
  say(`Job ${job.namespace}/${job.name}: ${p.n} agents of ${image}, starting together at ${new Date(startAt).toISOString()}`);
  return followAgents(o, p, job, collector, { startAt, longestMs, reportTimeoutMs, cleanup });
}

/** What the flags make of the run: the plans (whole and per agent), thresholds and where the agents load and report. */
async function planAgents(o: RunAgentsOptions) {
  const n = o.agents;
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new RangeError(`agents must be a whole number from 1 to 100, got ${n}`);
  const timeoutMs = parseDuration(o.timeout ?? '10s');
  if (!(timeoutMs > 0)) throw new RangeError('timeout must be > 0');
  const plan = planExecutor(o.executor, { timeoutMs });
  const shares = Array.from({ length: n }, (_, k) =>
    agentShare(o.executor, n, k, { connections: o.connections, maxRequests: o.maxRequests }),
  );
  const agentPlans = shares.map((s) => planExecutor(s.executor, { timeoutMs }));
  const thresholdConfig = o.thresholds && Object.keys(o.thresholds).length ? o.thresholds : DEFAULT_THRESHOLDS;
  const thresholds = parseThresholds(thresholdConfig);
  const maxScheduleDelayMs = o.maxScheduleDelay === undefined ? undefined : parseDuration(o.maxScheduleDelay);
  const harnessNetworks = o.harnessNetworks ?? o.cluster.podReach?.networks ?? [];
  const target = await vetTarget(o.url, { harnessNetworks });
  if (target.kind === 'remote') {
    throw new TargetNotAllowedError(
      `${target.url.origin} is neither loopback nor a network the harness created; distributed load goes only to the harness's own networks (${harnessNetworks.join(', ') || 'none given'})`,
    );
  }
  const collectorHost = o.collector?.host ?? o.cluster.podReach?.harnessAddress;
  if (!collectorHost) {
    throw new Error(
      'this target does not say at which address pods reach this machine (podReach), so the agents could not report: pass collector.host (the embedded cluster has it; kind and existing clusters are not supported yet)',
    );
  }
  return {
    n,
    timeoutMs,
    plan,
    shares,
    agentPlans,
    thresholdConfig,
    thresholds,
    maxScheduleDelayMs,
    harnessNetworks,
    target,
    collectorHost,
  };
}

type AgentsPlan = Awaited<ReturnType<typeof planAgents>>;

/** The Job of one run, and how to reach it. */
interface JobRef {
  name: string;
  namespace: string;
  runId: string;
  selector: string;
  batch: k8s.BatchV1Api;
  core: k8s.CoreV1Api;
  say: (m: string) => void;
}

const labelsOf = (job: JobRef) => ({
  'app.kubernetes.io/name': 'verdict-load-agent',
  'app.kubernetes.io/managed-by': 'verdict',
  [RUN_LABEL]: job.runId,
});

/** The agent's command line: the whole run's executor (each agent takes its share by its index), where to report. */
function agentArgs(o: RunAgentsOptions, p: AgentsPlan, startAt: number, collector: Collector): string[] {
  return [
    '--url',
    o.url,
    '--agents',
    String(p.n),
    '--start-at',
    String(startAt),
    '--report-to',
    collector.url,
    '--progress-to',
    collector.progressUrl,
    '--executor-json',
    JSON.stringify(o.executor),
    '--thresholds-json',
    JSON.stringify(p.thresholdConfig),
    '--timeout',
    `${p.timeoutMs}ms`,
    '--min-requests',
    '0',
    ...(o.connections !== undefined ? ['--connections', String(o.connections)] : []),
    ...(o.maxRequests !== undefined ? ['--max-requests', String(o.maxRequests)] : []),
    ...(p.maxScheduleDelayMs !== undefined ? ['--max-schedule-delay', `${p.maxScheduleDelayMs}ms`] : []),
    ...p.harnessNetworks.flatMap((c) => ['--harness-network', c]),
    ...(o.identityHeaders?.backend ? ['--backend-header', o.identityHeaders.backend] : []),
    ...(o.identityHeaders?.version ? ['--version-header', o.identityHeaders.version] : []),
  ];
}

/** The Indexed Job of the agents: one pod per agent, spread over the nodes, no retries, bounded by a deadline. */
function agentJob(job: JobRef, image: string, args: string[], n: number, activeDeadlineSeconds: number): k8s.V1Job {
  const labels = labelsOf(job);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: job.name, namespace: job.namespace, labels },
    spec: {
      completionMode: 'Indexed',
      completions: n,
      parallelism: n,
      // No retries, and per index: a lost agent must not take the others down (backoffLimit 0 would
      // fail the whole Job at the first loss and terminate every other agent) nor be re-run later.
      backoffLimitPerIndex: 0,
      podReplacementPolicy: 'Failed',
      activeDeadlineSeconds,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: TERMINATION_GRACE_S,
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: AGENT_USER, runAsGroup: AGENT_USER },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: { [RUN_LABEL]: job.runId } },
            },
          ],
          containers: [
            {
              name: 'agent',
              image,
              command: ['node', 'load-agent.mjs'],
              args,
              envFrom: [{ secretRef: { name: job.name } }],
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      },
    },
  };
}

/** The Secret (the agents' environment and report token), the Job, then the Job made the Secret's owner. */
async function createJob(job: JobRef, body: k8s.V1Job, env: Record<string, string>): Promise<void> {
  const { name, namespace, core, batch } = job;
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name, namespace, labels: labelsOf(job) }, type: 'Opaque', stringData: env },
  });
  const created = await batch.createNamespacedJob({ namespace, body });
  const owner = { apiVersion: 'batch/v1', kind: 'Job', name, uid: created.metadata!.uid!, blockOwnerDeletion: false };
  await core
    .patchNamespacedSecret({ name, namespace, body: { metadata: { ownerReferences: [owner] } } }, mergePatch)
    .catch((err) => job.say(`the Secret ${name} has no owner (deleted explicitly afterwards): ${messageOf(err)}`));
}

/** Deletes the Job and its Secret, waits (bounded) until its pods are gone, closes the collector. */
async function removeJob(job: JobRef, collector: Collector): Promise<void> {
  const { name, namespace, core, batch, say } = job;
  await batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }).catch((err) => {
    if (!isNotFound(err)) say(`deleting Job ${name}: ${messageOf(err)}`);
  });
  await core.deleteNamespacedSecret({ name, namespace }).catch((err) => {
    if (!isNotFound(err)) say(`deleting Secret ${name}: ${messageOf(err)}`);
  });
  // The Job's pods go with it (garbage collector); wait for them, bounded, so nothing is left running.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const left = await core.listNamespacedPod({ namespace, labelSelector: job.selector }).then(
      (l) => l.items.length,
      () => 0,
    );
    if (left === 0) break;
    if (Date.now() > deadline) {
      say(`${left} agent pods of ${name} still there after 60 s; they end with the Job's deadline`);
      break;
    }
    await sleep(500);
  }
  await collector.close();
}

/** The running Job as an AgentsRun: its result (watched, merged, cleaned up), abort, stop and start. */
function followAgents(
  o: RunAgentsOptions,
  p: AgentsPlan,
  job: JobRef,
  collector: Collector,
  t: { startAt: number; longestMs: number; reportTimeoutMs: number; cleanup: () => Promise<void> },
): AgentsRun {
  const aborted = new AbortController();
  let abortReason: string | null = null;
  const abort = (reason = 'aborted by caller') => {
    if (abortReason !== null) return;
    abortReason = reason;
    aborted.abort(reason);
  };
  const onSignal = () => {
    const why = o.signal?.reason;
    abort(why instanceof Error ? why.message : String(why ?? 'interrupted'));
  };
  o.signal?.addEventListener('abort', onSignal, { once: true });
  if (o.signal?.aborted) onSignal();
  const result = watchAndMerge(o, p, job, collector, t, aborted.signal, () => abortReason).finally(() =>
    o.signal?.removeEventListener('abort', onSignal),
  );
  result.catch(() => {});
  let settled = false;
  const done = () => {
    settled = true;
  };
  void result.then(done, done);
  return {
    job: job.name,
    namespace: job.namespace,
    selector: job.selector,
    startAt: t.startAt,
    result,
    abort,
    stop(reason = 'stopped by caller') {
      collector.requestStop(reason);
    },
    answersFrom(version) {
      return collector.answersFrom(version);
    },
    started: (withinMs = 30_000) =>
      allStarted(collector, p.n, {
        startAt: t.startAt,
        withinMs,
        job,
        stoppedBecause: () => abortReason,
        settled: () => settled,
      }),
    async [Symbol.asyncDispose]() {
      abort('disposed');
      await result.catch(() => {});
    },
  };
}

/** Watches the agents until each reported or is known lost, merges and judges their reports, then removes the Job. */
async function watchAndMerge(
  o: RunAgentsOptions,
  p: AgentsPlan,
  job: JobRef,
  collector: Collector,
  t: { startAt: number; longestMs: number; reportTimeoutMs: number; cleanup: () => Promise<void> },
  aborted: AbortSignal,
  abortReason: () => string | null,
): Promise<DistributedLoadResult> {
  try {
    const { missing, pods } = await watchAgents({
      core: job.core,
      namespace: job.namespace,
      selector: job.selector,
      agents: p.n,
      collector,
      say: job.say,
      aborted,
      deadline: t.startAt + t.longestMs + t.reportTimeoutMs,
      // While the agents run their schedule, no report is due: say nothing until it is over or stopped.
      reportsDue: () => collector.stopRequested || Date.now() > t.startAt + t.longestMs,
      onAbort: async () => {
        // SIGTERM to every agent (the Job's pods deleted with their grace): each reports what it has.
        await job.batch
          .deleteNamespacedJob({ name: job.name, namespace: job.namespace, propagationPolicy: 'Background' })
          .catch(() => {});
        return Date.now() + (TERMINATION_GRACE_S + 10) * 1000;
      },
    });
    return mergeAgentResults({
      agents: p.n,
      reports: collector.reports,
      missing,
      pods,
      plan: p.plan,
      plannedArrivals: p.agentPlans.every((ap) => ap.model === 'open')
        ? p.agentPlans.reduce((s, ap) => s + (ap.model === 'open' ? ap.arrivals.count : 0), 0)
        : null,
      target: p.target,
      thresholds: p.thresholds,
      timeoutMs: p.timeoutMs,
      minRequests: o.minRequests ?? 100,
      maxScheduleDelayMs: p.maxScheduleDelayMs,
      maxStartLatenessMs: o.maxStartLatenessMs ?? 1000,
      originEpochMs: t.startAt,
      abortReason: abortReason(),
    });
  } finally {
    await t.cleanup();
  }
}

/** Resolves once every agent has posted progress (or reported); rejects when one has not in time, or the run ended or stopped. */
async function allStarted(
  collector: Collector,
  n: number,
  o: { startAt: number; withinMs: number; job: JobRef; stoppedBecause: () => string | null; settled: () => boolean },
): Promise<void> {
  const deadline = o.startAt + o.withinMs;
  for (;;) {
    const waiting = Array.from({ length: n }, (_, i) => i).filter((i) => !collector.progress.has(i) && !collector.reports.has(i));
    if (waiting.length === 0) return;
    const stopped = o.stoppedBecause();
    if (stopped !== null) throw new Error(`the load agents were stopped before they all started: ${stopped}`);
    if (o.settled()) throw new Error(`the load agents' run ended before agents ${waiting.join(', ')} started`);
    if (Date.now() > deadline)
      throw new Error(
        `load agents ${waiting.join(', ')} of Job ${o.job.namespace}/${o.job.name} had not started ${Math.round(o.withinMs / 1000)} s after the start instant`,
      );
    await sleep(200);
  }
}

async function buildAgentImage(o: RunAgentsOptions, say: (m: string) => void): Promise<string> {
  const images = o.cluster.images;
  if (!images)
    throw new Error(
      'this target cannot load images: build the agent (verdict load --bundle) into an image with node and load-agent.mjs in its working directory, and pass it as image',
    );
  const dir = await mkdtemp(join(tmpdir(), 'verdict-load-agent-'));
  try {
    const { outfile, bytes } = await bundleLoadAgent({ scenario: o.scenario, outfile: join(dir, 'load-agent.mjs') });
    const ref = `verdict-load-agent:${createHash('sha256')
      .update(await readFile(outfile))
      .digest('hex')
      .slice(0, 12)}`;
    say(`load agent bundled (${Math.round(bytes / 1024)} KiB${o.scenario ? `, scenario ${o.scenario}` : ''}) as ${ref}`);
    await images.load(
      [{ ref, bundle: { cmd: ['node', 'load-agent.mjs'], fill: (d) => copyFile(outfile, join(d, 'load-agent.mjs')) } }],
      say,
    );
    return ref;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface WatchInput {
  core: k8s.CoreV1Api;
  namespace: string;
  selector: string;
  agents: number;
  collector: Collector;
  say: (m: string) => void;
  /** Latest time a report may arrive (epoch ms). */
  deadline: number;
  /** Whether reports are due (the schedule is over or the agents were told to stop): then waiting is said. */
  reportsDue: () => boolean;
  aborted: AbortSignal;
  /** Called once on abort; returns the new deadline. */
  onAbort: () => Promise<number>;
}

/**
 * Follows the agents' pods until every index has reported or is known lost: its pod failed, was
 * deleted before reporting, or no report came by the deadline. Returns the reason for each lost one.
 */
async function watchAgents(w: WatchInput): Promise<{ missing: Map<number, string>; pods: Map<number, string> }> {
  const missing = new Map<number, string>();
  const pods = new Map<number, string>();
  const lastSeen = new Map<number, k8s.V1Pod>();
  let deadline = w.deadline;
  let abortHandled = false;
  let lastSay = 0;
  const told = new Set<number>();
  const open = () => Array.from({ length: w.agents }, (_, i) => i).filter((i) => !w.collector.reports.has(i) && !missing.has(i));
  while (open().length > 0) {
    if (w.aborted.aborted && !abortHandled) {
      abortHandled = true;
      w.say(`stopping the agents (${String(w.aborted.reason)}); each reports what it has`);
      deadline = Math.min(deadline, await w.onAbort());
    }
    let listed: k8s.V1Pod[] | null = null;
    try {
      listed = (await w.core.listNamespacedPod({ namespace: w.namespace, labelSelector: w.selector })).items;
    } catch (err) {
      w.say(`listing the agents' pods failed (${messageOf(err)}); retrying`);
    }
    if (listed) {
      const present = new Set<number>();
      for (const pod of listed) {
        const index = Number(pod.metadata?.labels?.[INDEX_LABEL] ?? pod.metadata?.annotations?.[INDEX_LABEL]);
        if (!Number.isInteger(index)) continue;
        present.add(index);
        pods.set(index, pod.metadata!.name!);
        lastSeen.set(index, pod);
        if (w.collector.reports.has(index) || missing.has(index)) continue;
        const phase = pod.status?.phase;
        if (phase === 'Failed') missing.set(index, `its pod ${pod.metadata!.name} failed (${describeEnd(pod)})`);
        else if (phase === 'Succeeded') {
          // It exits 0 only after its report was accepted: a report is on its way or was refused.
          const ended = terminatedAt(pod);
          if (ended !== null && Date.now() - ended > 5000)
            missing.set(index, `its pod ${pod.metadata!.name} exited 0 but no complete report arrived`);
        }
      }
      for (const index of open()) {
        const pod = lastSeen.get(index);
        if (pod && !present.has(index)) missing.set(index, `its pod ${pod.metadata!.name} was deleted before it reported`);
      }
    }
    for (const index of open()) {
      if (Date.now() <= deadline) break;
      const pod = lastSeen.get(index);
      missing.set(
        index,
        pod
          ? `no report by the deadline (pod ${pod.metadata!.name}: ${pod.status?.phase ?? 'unknown phase'}${waitingReason(pod)})`
          : 'no pod ran for it by the deadline',
      );
    }
    for (const [index, why] of missing)
      if (!told.has(index)) {
        told.add(index);
        w.say(`agent ${index} lost: ${why}`);
      }
    if (open().length === 0) break;
    if (Date.now() - lastSay > 10_000 && (w.reportsDue() || w.aborted.aborted)) {
      lastSay = Date.now();
      w.say(
        `agents: ${w.collector.reports.size} of ${w.agents} reported${missing.size ? `, ${missing.size} lost` : ''}; waiting`,
      );
    }
    await w.collector.waitForAll(AbortSignal.any([AbortSignal.timeout(1000), w.aborted]));
    if (w.aborted.aborted) await sleep(1000);
  }
  return { missing, pods };
}

function terminatedAt(pod: k8s.V1Pod): number | null {
  const t = pod.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt;
  return t ? new Date(t).getTime() : null;
}

function describeEnd(pod: k8s.V1Pod): string {
  const t = pod.status?.containerStatuses?.[0]?.state?.terminated;
  if (t) return `exit ${t.exitCode}${t.signal ? `, signal ${t.signal}` : ''}${t.reason ? `, ${t.reason}` : ''}`;
  return pod.status?.reason ?? pod.status?.message ?? 'no container status';
}

function waitingReason(pod: k8s.V1Pod): string {
  const w = pod.status?.containerStatuses?.[0]?.state?.waiting;
  return w?.reason ? `, ${w.reason}${w.message ? `: ${w.message}` : ''}` : '';
}
