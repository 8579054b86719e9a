/**
 * One contract for every experiment (the kubernetes-sigs/e2e-framework shape): `setup` puts the
 * system in its starting state, `act` does what is being tested while the runner records, `judge`
 * turns the evidence into gates. Teardown always runs: whatever an experiment starts it registers
 * with `ctx.defer`, and the runner unwinds those in reverse order after `act` (or after a throw, a
 * Ctrl-C, a lost cluster). Experiments return evidence; gates are pure functions of it; a throw
 * anywhere is an ERROR verdict with the message, never a PASS.
 */
import type { Gate } from '../reports/gates.ts';
import type { ReleaseSpec } from '../lib/kube/deploy.ts';
import type { LoadResult } from '../lib/load/index.ts';
import type { JoinedLoad } from '../lib/evidence/join.ts';
import type { ControlPlaneAway, CredentialRotation, Outage } from '../lib/evidence/causes.ts';
import type { CredentialSource } from '../lib/load/credentials.ts';
import type { Timeline } from '../lib/evidence/timeline.ts';
import type { Capability, TargetWith } from '../cluster/target.ts';
import type { AppConnection, AppProfile, Fault } from './app-profile.ts';
import type { HarnessConfig } from './config.ts';

export interface ExperimentOptions {
  /** Requests per second the load aims at (the mix of the app's flows). */
  rate: number;
  /** The release running before (and, for a rollout, the one rolled out). */
  from: string;
  to: string;
  /** Deliberate faults switched on for this run (named in the report). */
  faults: Fault[];
}

/** A load run the experiment started through `ctx.load`: labelled, owned by the runner. */
export interface LoadHandle {
  readonly label: string;
  /** Successful answers from app version `version` so far. */
  answersFrom(version: string): number;
  /** Stops it (if still running) and returns its result. Idempotent. */
  stop(reason?: string): Promise<LoadResult>;
}

/** What an experiment gets while it runs; `N`: the capabilities it needs, which its target has for sure. */
export interface RunContext<N extends Capability = never> {
  readonly target: TargetWith<N>;
  readonly app: AppProfile;
  readonly conn: AppConnection;
  /** Base URL of the app's Service from here. */
  readonly url: string;
  readonly options: ExperimentOptions;
  readonly config: HarnessConfig;
  /** The watched timeline; put every harness action on it with `timeline.action(...)`. */
  readonly timeline: Timeline;
  /** Aborted on Ctrl-C/SIGTERM or when the runner gives up; every wait must honour it. */
  readonly signal: AbortSignal;
  say(message: string): void;
  /** Registers teardown work; it runs in reverse order after act, whatever happened. */
  defer(what: string, fn: () => Promise<unknown>): void;
  /**
   * Starts the app's load mix at `rate` requests/s for at most `maxMs` (stop it earlier with the
   * handle). A `control` load runs a deliberately broken release: its failures are expected and it
   * does not count as evidence for the release under test.
   */
  load(
    label: string,
    o: { rate: number; maxMs: number; sessions?: string[]; control?: boolean; credentials?: CredentialSource },
  ): Promise<LoadHandle>;
  /** Applies a release and waits for its rollout (kubectl apply + rollout status), with phase markers. */
  deploy(
    release: ReleaseSpec,
    o?: { timeoutMs?: number; failFast?: boolean },
  ): Promise<{ ok: true } | { ok: false; error: string }>;
  /** Records a dependency outage window (for failure causes). */
  outage(o: Outage): void;
  /** Records a spell in which the control plane was away (the endpoints frozen; for failure causes). */
  controlPlaneAway(w: ControlPlaneAway): void;
  /** Records a rotation of the credentials the load sends (for failure causes: a token refused meanwhile). */
  credentialRotation(o: CredentialRotation): void;
}

export interface LoadEvidence {
  label: string;
  control: boolean;
  result: LoadResult;
  joined: JoinedLoad;
}

export interface Evidence<D> {
  data: D;
  loads: LoadEvidence[];
  timeline: Timeline;
  outages: Outage[];
  /** Credential rotations the experiment made (key-rotation). */
  rotations?: CredentialRotation[];
  /** Epoch ms. */
  startedAt: number;
  endedAt: number;
}

export interface JudgeContext<N extends Capability = never> {
  options: ExperimentOptions;
  config: HarnessConfig;
  target: TargetWith<N>;
}

/**
 * `D`: what `act` returns for `judge`; `N`: the target capabilities (cluster/target.ts) it cannot run
 * without. Write one with {@link defineExperiment}, which reads `N` off `needs`, so that inside
 * `ctx.target.<capability>` is there without a `!`.
 */
export interface Experiment<D = unknown, N extends Capability = never> {
  name: string;
  /** One sentence: what it shows. */
  description: string;
  /** Target capabilities it cannot run without; the runner says which is missing (in CAPABILITIES' words) instead of running. */
  needs?: readonly N[];
  setup(ctx: RunContext<N>): Promise<void>;
  act(ctx: RunContext<N>): Promise<D>;
  judge(evidence: Evidence<D>, ctx: JudgeContext<N>): Gate[];
  /**
   * Figures of this experiment kept in the run history beside the generic ones (failed requests,
   * p99 per version, drain times), e.g. the rollout's duration: what can be non-zero by design and
   * should not grow from run to run (`no worse than history`). Names are `word_unit[.qualifier]`.
   */
  figures?(evidence: Evidence<D>): Record<string, number>;
}

/**
 * An experiment of any data and needs (the runner's and the registry's view): the runner checks its
 * `needs` against the target before it hands over a context, so it sees a context without promises
 * (its methods take their parameters bivariantly, as methods do, so every experiment fits).
 */
export type AnyExperiment = Omit<Experiment<unknown>, 'needs'> & { needs?: readonly Capability[] };

/**
 * Types an experiment whose act returns `D`: its `needs` become the capabilities `ctx.target`
 * surely has (`defineExperiment<Data>()({ needs: ['dependencies'], ... })`).
 */
export function defineExperiment<D>() {
  return <const N extends Capability = never>(e: Experiment<D, N>): Experiment<D, N> => e;
}
