/**
 * One experiment's lifetimes while it runs: its abort (the run's signal, or a failure that must stop
 * its loads at once), the timeline it watches, the loads it started, the outages it declared and
 * whatever it deferred. `context()` is what the experiment gets; `unwind()` stops every load and
 * runs the deferred work in reverse order, whatever happened; `evidence()` joins each load's ledger
 * with the timeline.
 */
import type { ControlPlaneAway, CredentialRotation, Outage } from '../lib/evidence/causes.ts';
import { joinLedger } from '../lib/evidence/join.ts';
import { ClusterTimeline } from '../lib/evidence/timeline.ts';
import type { Target } from '../cluster/target.ts';
import type { AppConnection } from './app-profile.ts';
import { deployStep } from './deploy-step.ts';
import type { Evidence, LoadEvidence, LoadHandle, RunContext } from './experiment.ts';
import { loadExecutor, loadStrategy, type LoadEntry, type LoadRequest, type StartedLoad } from './loads.ts';
import type { AppProfile } from './app-profile.ts';
import type { HarnessConfig } from './config.ts';
import type { ExperimentOptions } from './experiment.ts';
import type { Progress } from '../lib/load/index.ts';

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

export class ExperimentScope {
  readonly timeline: ClusterTimeline;
  readonly teardownErrors: string[] = [];
  readonly #abort = new AbortController();
  readonly #stack = new AsyncDisposableStack();
  readonly #loads: LoadEntry[] = [];
  readonly #outages: Outage[] = [];
  readonly #controlPlaneAway: ControlPlaneAway[] = [];
  readonly #rotations: CredentialRotation[] = [];
  readonly #onAbort: () => void;

  readonly target: Target;
  readonly conn: AppConnection;
  /** The Service's base URL from here. */
  readonly url: string;
  readonly o: RunnerOptions;
  /** Progress, prefixed with the experiment's name. */
  readonly say: (message: string) => void;

  constructor(target: Target, conn: AppConnection, url: string, o: RunnerOptions, say: (message: string) => void) {
    this.target = target;
    this.conn = conn;
    this.url = url;
    this.o = o;
    this.say = say;
    const { workload } = o.app;
    this.timeline = new ClusterTimeline({
      kubeConfig: target.kubeConfig,
      namespace: workload.namespace,
      selector: workload.selector,
      service: workload.service,
    });
    this.#onAbort = () => this.#abort.abort(o.signal.reason);
    o.signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Starts watching; what the experiment gets. */
  async start(): Promise<RunContext> {
    await this.timeline.start();
    this.#stack.defer(() => this.timeline.stop());
    return this.context();
  }

  context(): RunContext {
    const { target, conn, url, o, timeline, say } = this;
    const strategy = loadStrategy({
      target,
      app: o.app,
      conn,
      url,
      signal: this.#abort.signal,
      say,
      agents: o.agents,
      onProgress: o.onLoadProgress,
    });
    const step = { target, workload: o.app.workload, url, timeline, signal: this.#abort.signal, say };
    return {
      target,
      app: o.app,
      conn,
      url,
      options: o.options,
      config: o.config,
      timeline,
      signal: this.#abort.signal,
      say,
      defer: (what, fn) => this.#defer(what, fn),
      load: async (label, l) => {
        const request: LoadRequest = { label, ...l };
        const { executor, arrivals } = loadExecutor(conn, request);
        const started = await strategy.start(request, executor, (e) => this.#loads.push(e));
        timeline.phase('load-start', `${label}: ${l.rate} req/s (${arrivals.toFixed(1)} iterations/s)${strategy.where}`);
        return this.#handle(started);
      },
      deploy: (release, d) => deployStep(step, release, d),
      outage: (x) => {
        this.#outages.push(x);
      },
      controlPlaneAway: (w) => {
        this.#controlPlaneAway.push(w);
      },
      credentialRotation: (x) => {
        this.#rotations.push(x);
      },
    };
  }

  /** The run's error message for `err`: `interrupted: ...` when the run's own signal stopped it. */
  errorOf(err: unknown): string {
    return this.#abort.signal.aborted && this.o.signal.aborted
      ? `interrupted: ${String((this.o.signal.reason as Error)?.message ?? this.o.signal.reason)}`
      : ((err as Error)?.message ?? String(err));
  }

  /** Stops every load still running, waits for their results, runs the deferred work in reverse order. */
  async unwind(): Promise<void> {
    for (const l of this.#loads) {
      if (!l.result) {
        l.abort('experiment ended');
        l.result = l.final();
      }
    }
    await Promise.allSettled(this.#loads.flatMap((l) => (l.result ? [l.result] : [])));
    await this.#stack.disposeAsync().catch((err) => this.teardownErrors.push(String(err)));
    this.o.signal.removeEventListener('abort', this.#onAbort);
  }

  /** What the experiment is judged on: each load that has a result, joined with the timeline. */
  async evidence<D>(data: D, startedAt: number): Promise<Evidence<D>> {
    const endedAt = Date.now();
    const { target, timeline } = this;
    const loads: LoadEvidence[] = [];
    for (const l of this.#loads) {
      const result = await l.result!.catch(() => undefined);
      if (!result) continue;
      const joined = joinLedger(result.ledger, {
        timeline,
        outages: this.#outages,
        controlPlaneAway: this.#controlPlaneAway,
        credentialRotations: this.#rotations,
        endpointLagMs: target.endpointLagMs ?? 0,
        recoveryAllowanceMs: this.o.config.gates.dependency.recoveryMs,
        unknownResourceStatuses: this.o.app.unknownResource?.statuses,
        coldStartMs: this.o.config.gates.latency.coldStartMs,
        resourceName: this.o.app.unknownResource?.what,
        // The Service proxy's connection records are keyed by this machine's client ports: agents' rows are not.
        podOfConnection: target.attribution && !l.agents ? (port) => target.attribution!.podOf(port) : undefined,
      });
      loads.push({ label: l.label, control: l.control, result, joined });
    }
    return { data, loads, timeline, outages: this.#outages, rotations: this.#rotations, startedAt, endedAt };
  }

  #defer(what: string, fn: () => Promise<unknown>): void {
    this.#stack.defer(async () => {
      try {
        await fn();
      } catch (err) {
        this.teardownErrors.push(`${what}: ${(err as Error).message ?? err}`);
      }
    });
  }

  #handle({ entry, answersFrom }: StartedLoad): LoadHandle {
    const { timeline } = this;
    return {
      label: entry.label,
      answersFrom,
      stop(reason = 'experiment over') {
        if (!entry.result) {
          entry.stopGracefully?.(reason);
          timeline.phase('load-stop', entry.label);
          entry.result = entry.final();
        }
        return entry.result;
      },
    };
  }
}
