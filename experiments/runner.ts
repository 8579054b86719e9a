/**
 * Runs experiments against one target: it owns every lifetime (timeline watches, loads, whatever an
 * experiment defers), the signal, the attribution of failures and the conversion of a throw into an
 * ERROR verdict. Experiments run one after another on the same target; each gets a fresh timeline.
 */
import { ClusterTimeline } from '../lib/evidence/timeline.ts';
import { joinLedger } from '../lib/evidence/join.ts';
import type { Outage } from '../lib/evidence/causes.ts';
import { deployRelease } from '../lib/kube/deploy.ts';
import { RolloutFailedError } from '../lib/kube/rollout.ts';
import { waitForSettled } from '../lib/kube/disrupt.ts';
import { renderRelease } from '../lib/kube/deploy.ts';
import { startLoad, type LoadResult, type Progress } from '../lib/load/index.ts';
import { startAgents } from '../lib/load/distributed/index.ts';
import { VersionAnswers } from '../lib/load/version-answers.ts';
import type { Verdict } from '../lib/verdict.ts';
import { combine, type Gate } from '../reports/gates.ts';
import { cannotSentence, missingCapabilities, type Target } from '../cluster/target.ts';
import type { AppConnection, AppProfile } from './app-profile.ts';
import { assertTargetAllowed, type HarnessConfig } from './config.ts';
import type { AnyExperiment, Evidence, ExperimentOptions, LoadEvidence, LoadHandle, RunContext } from './experiment.ts';

export interface CheckResult {
  name: string;
  /** An experiment (default) or a run-level gate over several experiments. */
  kind?: 'experiment' | 'gate';
  description: string;
  verdict: Verdict;
  gates: Gate[];
  /** Why the experiment broke (its verdict is then ERROR), or null. */
  error: string | null;
  evidence: Evidence<unknown> | null;
  startedAt: number;
  endedAt: number;
}

export interface RunnerOptions {
  app: AppProfile;
  options: ExperimentOptions;
  config: HarnessConfig;
  configSource?: string;
  signal: AbortSignal;
  say?: (message: string) => void;
  onLoadProgress?: (label: string, p: Progress) => void;
  /**
   * Run every load from this many load agents in the cluster (an Indexed Job, merged ledgers;
   * lib/load/distributed) instead of this process. Needs a target whose pods reach the harness
   * (`podReach`) and that loads images.
   */
  agents?: number;
}

/** A load an experiment started, as the runner tracks it. */
interface LoadEntry {
  label: string;
  control: boolean;
  /** Run by load agents in the cluster. */
  agents: boolean;
  abort(reason: string): void;
  stopGracefully?(reason: string): void;
  /** The run's result (settles after a stop or an abort). */
  final(): Promise<LoadResult>;
  result?: Promise<LoadResult>;
}

/** The Service URL as the agents' pods reach it: the same NodePort at the pod gateway. */
function agentUrlOf(target: Target, url: string): string {
  const u = new URL(url);
  const nodePort = Number(u.port);
  if (!target.podReach || !nodePort)
    throw new Error(`load agents need a target whose pods reach its NodePorts (podReach): the ${target.kind} target has none`);
  return target.podReach.serviceUrl(nodePort) + u.pathname.replace(/\/$/, '');
}

/** Load runs are bounded: never longer than this, whatever an experiment asks. */
const MAX_LOAD_MS = 30 * 60_000;

/**
 * Checks the target may be disrupted, builds the releases' images where the target loads images,
 * connects the app and runs each experiment. Resolves with one result per experiment (an
 * experiment that could not run is an ERROR result, never skipped); rejects only when the run as a
 * whole cannot start (a refused target, images that cannot be built, an app that cannot be reached).
 */
export async function runExperiments(target: Target, experiments: AnyExperiment[], o: RunnerOptions): Promise<CheckResult[]> {
  const say = o.say ?? (() => {});
  assertTargetAllowed(target, o.config, o.configSource);
  if (o.agents !== undefined) {
    if (!Number.isInteger(o.agents) || o.agents < 1 || o.agents > 100)
      throw new RangeError(`agents must be a whole number from 1 to 100, got ${o.agents}`);
    const missing = missingCapabilities(target, ['podReach', 'images']);
    if (missing.length)
      throw new Error(
        `load agents run on targets whose pods reach the harness and that load images (the embedded cluster); ${cannotSentence(target, missing)}: run without --agents`,
      );
  }
  if (target.images) {
    for (const img of o.app.supportImages?.(target.platform) ?? []) {
      o.signal.throwIfAborted();
      await target.images.load(img, say);
    }
    for (const tag of new Set([o.options.from, o.options.to])) {
      o.signal.throwIfAborted();
      await target.images.load(o.app.image(tag), say);
    }
  }
  const url = target.serviceUrl(o.app.workload.nodePort);
  const conn = await o.app.connect(target, url);
  const results: CheckResult[] = [];
  for (const exp of experiments) {
    o.signal.throwIfAborted();
    say(`experiment ${exp.name}: ${exp.description}`);
    const r = await runExperiment(target, exp, conn, url, o);
    say(`experiment ${exp.name}: ${r.verdict}${r.error ? ` (${r.error})` : ''}`);
    results.push(r);
  }
  return results;
}

/** Waits until `url` answers 200 three times in a row (bounded): the data plane routes to the release. */
async function waitForService(url: string, signal: AbortSignal, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ok = 0;
  let last = '';
  while (ok < 3) {
    signal.throwIfAborted();
    try {
      const r = await fetch(url, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]),
        headers: { connection: 'close' },
      });
      await r.arrayBuffer();
      ok = r.status === 200 ? ok + 1 : 0;
      last = `HTTP ${r.status}`;
    } catch (err) {
      ok = 0;
      last = String((err as Error).cause ?? (err as Error).message);
    }
    if (Date.now() > deadline) throw new Error(`the Service does not answer at ${url} (last: ${last})`);
    if (ok < 3) await new Promise((r) => setTimeout(r, 200));
  }
}

export async function runExperiment(
  target: Target,
  exp: AnyExperiment,
  conn: AppConnection,
  url: string,
  o: RunnerOptions,
): Promise<CheckResult> {
  const startedAt = Date.now();
  const say = (m: string) => o.say?.(`${exp.name}: ${m}`);
  const missing = missingCapabilities(target, exp.needs ?? []);
  if (missing.length) {
    return {
      name: exp.name,
      description: exp.description,
      verdict: 'INCONCLUSIVE',
      evidence: null,
      startedAt,
      endedAt: Date.now(),
      error: null,
      gates: [
        {
          name: 'target can run it',
          verdict: 'INCONCLUSIVE',
          evidence: `${cannotSentence(target, missing)}, so this experiment cannot show anything here`,
        },
      ],
    };
  }
  const { workload } = o.app;
  // The experiment's own abort: the run's signal, or a failure that must stop its loads at once.
  const abort = new AbortController();
  const onAbort = () => abort.abort(o.signal.reason);
  o.signal.addEventListener('abort', onAbort, { once: true });
  const stack = new AsyncDisposableStack();
  const teardownErrors: string[] = [];
  const loads: LoadEntry[] = [];
  const outages: Outage[] = [];
  const timeline = new ClusterTimeline({
    kubeConfig: target.kubeConfig,
    namespace: workload.namespace,
    selector: workload.selector,
    service: workload.service,
  });
  let data: unknown;
  let error: string | null = null;
  const ctx: RunContext = {
    target,
    app: o.app,
    conn,
    url,
    options: o.options,
    config: o.config,
    timeline,
    signal: abort.signal,
    say,
    defer(what, fn) {
      stack.defer(async () => {
        try {
          await fn();
        } catch (err) {
          teardownErrors.push(`${what}: ${(err as Error).message ?? err}`);
        }
      });
    },
    async load(label, l) {
      const rpi = conn.requestsPerIteration({ sessions: l.sessions });
      const arrivals = l.rate / rpi;
      const maxMs = Math.min(l.maxMs, MAX_LOAD_MS);
      const executor = {
        executor: 'constant-arrival-rate' as const,
        rate: arrivals,
        duration: `${Math.ceil(maxMs / 1000)}s`,
        preAllocatedVUs: Math.max(20, Math.ceil(arrivals * 2)),
        maxVUs: Math.max(100, Math.ceil(arrivals * 20)),
      };
      // The runner judges the load itself (gates); the engine's own assessment is not the verdict.
      const thresholds = { http_req_failed: ['rate<=1'] };
      let entry: LoadEntry;
      let answersFrom: (version: string) => number;
      if (o.agents) {
        const agentScenario = conn.agentScenario?.({ sessions: l.sessions });
        if (!agentScenario) throw new Error(`${o.app.name} has no scenario module for load agents: run without --agents`);
        const agentsRun = await startAgents({
          cluster: target,
          agents: o.agents,
          url: agentUrlOf(target, url),
          executor,
          scenario: agentScenario.module,
          env: agentScenario.env,
          thresholds,
          minRequests: 0,
          timeout: '10s',
          identityHeaders: o.app.identityHeaders,
          signal: abort.signal,
          onProgress: (m) => say(`${label}: ${m}`),
        });
        entry = {
          label,
          control: l.control ?? false,
          agents: true,
          abort: (r) => agentsRun.abort(r),
          final: () => agentsRun.result,
        };
        loads.push(entry);
        // The experiment's clock starts when the load does: every agent has started.
        await agentsRun.started();
        answersFrom = (version) => agentsRun.answersFrom(version);
        entry.stopGracefully = (reason) => agentsRun.stop(reason);
      } else {
        const run = await startLoad({
          url,
          executor,
          scenario: conn.scenario({ sessions: l.sessions }),
          identityHeaders: o.app.identityHeaders,
          timeout: '10s',
          thresholds,
          minRequests: 0,
          signal: abort.signal,
          target: target.harnessNetworks?.length ? { harnessNetworks: target.harnessNetworks } : undefined,
          onProgress: o.onLoadProgress ? (p) => o.onLoadProgress!(label, p) : undefined,
        });
        entry = {
          label,
          control: l.control ?? false,
          agents: false,
          abort: (r) => run.abort(r),
          final: () => run.result,
          stopGracefully: (r) => run.stop(r),
        };
        loads.push(entry);
        const counter = new VersionAnswers(run.ledger);
        answersFrom = (version) => counter.of(version);
      }
      timeline.phase(
        `load-start`,
        `${label}: ${l.rate} req/s (${arrivals.toFixed(1)} iterations/s)${o.agents ? ` from ${o.agents} load agents` : ''}`,
      );
      const handle: LoadHandle = {
        label,
        answersFrom,
        stop(reason = 'experiment over') {
          if (!entry.result) {
            entry.stopGracefully?.(reason);
            timeline.phase('load-stop', label);
            entry.result = entry.final();
          }
          return entry.result;
        },
      };
      return handle;
    },
    async deploy(release, d = {}) {
      timeline.phase(
        'deploy',
        `${release.image}${release.env && Object.keys(release.env).length ? ` env ${Object.keys(release.env).join(',')}` : ''}`,
      );
      try {
        await deployRelease(target.kubeConfig, release, {
          timeoutMs: d.timeoutMs ?? 300_000,
          failFast: d.failFast ?? true,
          signal: abort.signal,
          onProgress: (m) => say(m),
        });
        timeline.phase('rolled-out', release.image);
        // Done means settled: no pod of another release left (a terminating pod still answers
        // through a lagging data plane) and the Service answers, as it does for clients.
        const replicas = (await renderRelease(release)).find((x) => x.kind === 'Deployment')?.spec.replicas ?? 1;
        await waitForSettled(target.kubeConfig, workload.namespace, workload.selector, release.deployment, replicas, {
          signal: abort.signal,
        });
        await waitForService(url + workload.readyPath, abort.signal);
        timeline.phase('settled', release.image);
        return { ok: true };
      } catch (err) {
        abort.signal.throwIfAborted();
        const problem = err instanceof RolloutFailedError ? err.problem : undefined;
        const detail = problem
          ? `${(err as Error).message}; pods: ${problem.pods.map((p) => `${p.name} restarts=${p.restarts} ready=${p.ready}${p.waiting ? ` waiting=${p.waiting}` : ''}${p.lastTerminated ? ` last=${p.lastTerminated}` : ''}`).join('; ')}`
          : (err as Error).message;
        timeline.phase('deploy-failed', detail);
        return { ok: false, error: detail };
      }
    },
    outage(x) {
      outages.push(x);
    },
  };
  try {
    await timeline.start();
    stack.defer(() => timeline.stop());
    await exp.setup(ctx);
    data = await exp.act(ctx);
  } catch (err) {
    error =
      abort.signal.aborted && o.signal.aborted
        ? `interrupted: ${String((o.signal.reason as Error)?.message ?? o.signal.reason)}`
        : ((err as Error)?.message ?? String(err));
  } finally {
    for (const l of loads) {
      if (!l.result) {
        l.abort('experiment ended');
        l.result = l.final();
      }
    }
    await Promise.allSettled(loads.map((l) => l.result));
    await stack.disposeAsync().catch((err) => teardownErrors.push(String(err)));
    o.signal.removeEventListener('abort', onAbort);
  }
  const endedAt = Date.now();
  const loadEvidence: LoadEvidence[] = [];
  for (const l of loads) {
    const result = await l.result!.catch(() => undefined);
    if (!result) continue;
    const joined = joinLedger(result.ledger, {
      timeline,
      outages,
      endpointLagMs: target.endpointLagMs ?? 0,
      recoveryAllowanceMs: o.config.gates.dependency.recoveryMs,
      // The Service proxy's connection records are keyed by this machine's client ports: agents' rows are not.
      podOfConnection: target.attribution && !l.agents ? (port) => target.attribution!.podOf(port) : undefined,
    });
    loadEvidence.push({ label: l.label, control: l.control, result, joined });
  }
  const evidence: Evidence<unknown> = { data, loads: loadEvidence, timeline, outages, startedAt, endedAt };
  if (teardownErrors.length) error = [error, `teardown failed: ${teardownErrors.join('; ')}`].filter(Boolean).join('; ');
  if (error !== null) {
    return { name: exp.name, description: exp.description, verdict: 'ERROR', gates: [], error, evidence, startedAt, endedAt };
  }
  let gates: Gate[];
  try {
    gates = exp.judge(evidence, { options: o.options, config: o.config, target });
  } catch (err) {
    return {
      name: exp.name,
      description: exp.description,
      verdict: 'ERROR',
      gates: [],
      error: `judging failed: ${(err as Error).message}`,
      evidence,
      startedAt,
      endedAt,
    };
  }
  return {
    name: exp.name,
    description: exp.description,
    verdict: combine(gates),
    gates,
    error: null,
    evidence,
    startedAt,
    endedAt,
  };
}
