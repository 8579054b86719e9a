/**
 * Runs experiments against one target: it owns every lifetime (timeline watches, loads, whatever an
 * experiment defers: ./scope.ts), the signal, the attribution of failures and the conversion of a
 * throw into an ERROR verdict. Experiments run one after another on the same target; each gets a
 * fresh timeline. Where loads run is ./loads.ts, how a release is deployed ./deploy-step.ts.
 */
import { renderRelease } from '../lib/kube/deploy.ts';
import { findKind } from '../lib/kube/render.ts';
import type { Verdict } from '../lib/verdict.ts';
import { combine, type Gate } from '../reports/gates.ts';
import { cannotSentence, missingCapabilities, type Capability, type Target } from '../cluster/target.ts';
import type { AppConnection } from './app-profile.ts';
import { assertTargetAllowed } from './config.ts';
import type { AnyExperiment, Evidence } from './experiment.ts';
import { ExperimentScope, type RunnerOptions } from './scope.ts';

export type { RunnerOptions };

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
  /** The experiment's own history figures (Experiment.figures), beside the generic ones the record adds. */
  figures?: Record<string, number>;
  /** Replicas of the release under test (a history key), null when unknown. */
  replicas?: number | null;
}

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
    o.signal.throwIfAborted();
    const releases = [...new Set([o.options.from, o.options.to])].map((tag) => o.app.image(tag));
    await target.images.load([...(o.app.supportImages?.(target.platform) ?? []), ...releases], say, o.signal);
  }
  const url = target.serviceUrl(o.app.workload.nodePort);
  const conn = await o.app.connect(target, url);
  const replicas = await replicasOf(o, target).catch(() => null);
  const results: CheckResult[] = [];
  for (const exp of experiments) {
    o.signal.throwIfAborted();
    say(`experiment ${exp.name}: ${exp.description}`);
    const r = { ...(await runExperiment(target, exp, conn, url, o)), replicas };
    say(`experiment ${exp.name}: ${r.verdict}${r.error ? ` (${r.error})` : ''}`);
    results.push(r);
  }
  return results;
}

/** Replicas the release under test's manifests ask for (the history's key), null when they name none. */
async function replicasOf(o: RunnerOptions, target: Target): Promise<number | null> {
  const objects = await renderRelease(o.app.release(o.options.to, target.platform));
  return findKind(objects, 'Deployment')?.spec?.replicas ?? null;
}

/** One experiment on the target: its needs checked, then setup and act in its scope, unwound, judged. */
export async function runExperiment(
  target: Target,
  exp: AnyExperiment,
  conn: AppConnection,
  url: string,
  o: RunnerOptions,
): Promise<CheckResult> {
  const startedAt = Date.now();
  const missing = missingCapabilities(target, exp.needs ?? []);
  if (missing.length) return cannotRun(target, exp, missing, startedAt);
  const scope = new ExperimentScope(target, conn, url, o, (m) => o.say?.(`${exp.name}: ${m}`));
  let data: unknown;
  let error: string | null = null;
  try {
    const ctx = await scope.start();
    await exp.setup(ctx);
    data = await exp.act(ctx);
  } catch (err) {
    error = scope.errorOf(err);
  } finally {
    await scope.unwind();
  }
  const evidence = await scope.evidence(data, startedAt);
  if (scope.teardownErrors.length)
    error = [error, `teardown failed: ${scope.teardownErrors.join('; ')}`].filter(Boolean).join('; ');
  return judged(target, exp, evidence, error, o);
}

/** An experiment the target cannot run: INCONCLUSIVE, saying which capability it lacks (never skipped). */
function cannotRun(target: Target, exp: AnyExperiment, missing: Capability[], startedAt: number): CheckResult {
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

/** The result: ERROR when the run broke (or judging it did), else the verdict of its gates. */
function judged(
  target: Target,
  exp: AnyExperiment,
  evidence: Evidence<unknown>,
  error: string | null,
  o: RunnerOptions,
): CheckResult {
  const base = {
    name: exp.name,
    description: exp.description,
    evidence,
    startedAt: evidence.startedAt,
    endedAt: evidence.endedAt,
  };
  if (error !== null) return { ...base, verdict: 'ERROR', gates: [], error };
  let gates: Gate[];
  let figures: Record<string, number> | undefined;
  try {
    gates = exp.judge(evidence, { options: o.options, config: o.config, target });
    figures = exp.figures?.(evidence);
  } catch (err) {
    return { ...base, verdict: 'ERROR', gates: [], error: `judging failed: ${(err as Error).message}` };
  }
  return { ...base, verdict: combine(gates), gates, error: null, figures };
}
