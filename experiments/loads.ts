/**
 * How an experiment's load runs: in this process (lib/load) or from load agents in the cluster
 * (lib/load/distributed). Each is a LoadStrategy behind one interface (k6's executors shape), so the
 * runner starts, stops and judges a load the same way wherever it runs.
 */
import { startLoad, type ExecutorConfig, type LoadResult, type Progress } from '../lib/load/index.ts';
import { startAgents } from '../lib/load/distributed/index.ts';
import { VersionAnswers } from '../lib/load/version-answers.ts';
import type { Target } from '../cluster/target.ts';
import type { CredentialSource } from '../lib/load/credentials.ts';
import type { AppConnection, AppProfile } from './app-profile.ts';

/** A load an experiment started, as the runner tracks it. */
export interface LoadEntry {
  label: string;
  control: boolean;
  /** Run by load agents in the cluster (their rows carry no client port of this machine). */
  agents: boolean;
  abort(reason: string): void;
  stopGracefully?(reason: string): void;
  /** The run's result (settles after a stop or an abort). */
  final(): Promise<LoadResult>;
  result?: Promise<LoadResult>;
}

/** What an experiment asked for (`ctx.load`). */
export interface LoadRequest {
  label: string;
  rate: number;
  maxMs: number;
  sessions?: string[];
  control?: boolean;
  /** The bearer credential to send, asked for every request (a token that changes during the run). */
  credentials?: CredentialSource;
}

/** What every load of one experiment shares. */
export interface LoadSetup {
  target: Target;
  app: AppProfile;
  conn: AppConnection;
  /** The Service's base URL from here. */
  url: string;
  signal: AbortSignal;
  say: (message: string) => void;
  onProgress?: (label: string, p: Progress) => void;
  /** Run every load from this many agents in the cluster instead of this process. */
  agents?: number;
}

export interface StartedLoad {
  entry: LoadEntry;
  /** Successful answers from app version `version` so far. */
  answersFrom(version: string): number;
}

export interface LoadStrategy {
  /** Said after the rate on the timeline, e.g. ` from 2 load agents`. */
  readonly where: string;
  /**
   * Starts the load; `track` gets its entry as soon as it can be stopped (an agents' run can be
   * aborted before every agent has started), so that the runner stops it whatever happens next.
   */
  start(l: LoadRequest, executor: ExecutorConfig, track: (entry: LoadEntry) => void): Promise<StartedLoad>;
}

/** Load runs are bounded: never longer than this, whatever an experiment asks. */
export const MAX_LOAD_MS = 30 * 60_000;

/** The runner judges the load itself (gates); the engine's own assessment is not the verdict. */
const THRESHOLDS = { http_req_failed: ['rate<=1'] };

/** The app's load mix at `l.rate` requests/s as an open-model executor (iterations/s from requests per iteration). */
export function loadExecutor(conn: AppConnection, l: LoadRequest): { executor: ExecutorConfig; arrivals: number } {
  const arrivals = l.rate / conn.requestsPerIteration({ sessions: l.sessions, rate: l.rate, credentials: l.credentials });
  const maxMs = Math.min(l.maxMs, MAX_LOAD_MS);
  return {
    arrivals,
    executor: {
      executor: 'constant-arrival-rate',
      rate: arrivals,
      duration: `${Math.ceil(maxMs / 1000)}s`,
      preAllocatedVUs: Math.max(20, Math.ceil(arrivals * 2)),
      maxVUs: Math.max(100, Math.ceil(arrivals * 20)),
    },
  };
}

/** The strategy the run asked for: load agents when `agents` is set, else this process. */
export function loadStrategy(s: LoadSetup): LoadStrategy {
  return s.agents ? agentsLoad(s, s.agents) : inProcessLoad(s);
}

/** The engine in this process, against the Service URL from here. */
function inProcessLoad(s: LoadSetup): LoadStrategy {
  return {
    where: '',
    async start(l, executor, track) {
      const run = await startLoad({
        url: s.url,
        executor,
        scenario: s.conn.scenario({ sessions: l.sessions, rate: l.rate, credentials: l.credentials }),
        identityHeaders: s.app.identityHeaders,
        timeout: '10s',
        thresholds: THRESHOLDS,
        minRequests: 0,
        signal: s.signal,
        target: s.target.harnessNetworks?.length ? { harnessNetworks: s.target.harnessNetworks } : undefined,
        onProgress: s.onProgress ? (p) => s.onProgress!(l.label, p) : undefined,
      });
      const entry: LoadEntry = {
        label: l.label,
        control: l.control ?? false,
        agents: false,
        abort: (r) => run.abort(r),
        final: () => run.result,
        stopGracefully: (r) => run.stop(r),
      };
      track(entry);
      const counter = new VersionAnswers(run.ledger);
      return { entry, answersFrom: (version) => counter.of(version) };
    },
  };
}

/** Load agents in the cluster (an Indexed Job), reaching the Service at its NodePort on the pod gateway. */
function agentsLoad(s: LoadSetup, agents: number): LoadStrategy {
  return {
    where: ` from ${agents} load agents`,
    async start(l, executor, track) {
      if (l.credentials)
        throw new Error(`${l.label}: a load whose credentials change during the run runs in this process: run without --agents`);
      const agentScenario = s.conn.agentScenario?.({ sessions: l.sessions, rate: l.rate });
      if (!agentScenario) throw new Error(`${s.app.name} has no scenario module for load agents: run without --agents`);
      const run = await startAgents({
        cluster: s.target,
        agents,
        url: agentUrlOf(s.target, s.url),
        executor,
        scenario: agentScenario.module,
        env: agentScenario.env,
        thresholds: THRESHOLDS,
        minRequests: 0,
        timeout: '10s',
        identityHeaders: s.app.identityHeaders,
        signal: s.signal,
        onProgress: (m) => s.say(`${l.label}: ${m}`),
      });
      const entry: LoadEntry = {
        label: l.label,
        control: l.control ?? false,
        agents: true,
        abort: (r) => run.abort(r),
        final: () => run.result,
      };
      track(entry);
      // The experiment's clock starts when the load does: every agent has started.
      await run.started();
      entry.stopGracefully = (reason) => run.stop(reason);
      return { entry, answersFrom: (version) => run.answersFrom(version) };
    },
  };
}

/** The Service URL as the agents' pods reach it: the same NodePort at the pod gateway. */
function agentUrlOf(target: Target, url: string): string {
  const u = new URL(url);
  const nodePort = Number(u.port);
  if (!target.podReach || !nodePort)
    throw new Error(`load agents need a target whose pods reach its NodePorts (podReach): the ${target.kind} target has none`);
  return target.podReach.serviceUrl(nodePort) + u.pathname.replace(/\/$/, '');
}
