import { expect } from 'vitest';
import type { Target } from '../../cluster/target.ts';
import { assertValidRunRecord } from '../../reports/render/json.ts';
import type { AppProfile } from '../app-profile.ts';
import type { HarnessConfig } from '../config.ts';
import type { AnyExperiment } from '../experiment.ts';
import { checkRecord, describeTarget, ledgerLines, runRecord } from '../record.ts';
import { runExperiments, type CheckResult } from '../runner.ts';
import { removeWorkload } from './fresh-workload.ts';

export interface ClusterRun {
  target: Target;
  experiment: AnyExperiment;
  app: AppProfile;
  config: HarnessConfig;
  /** Names of the app's faults to deploy v2 with. */
  faults?: string[];
  /** The command the record is written for. */
  command?: 'experiment' | 'rehearse';
  /** The Service's URL as the record describes the target. */
  serviceUrl: string;
}

/**
 * One experiment on a cluster for the cluster suites, as the CLI runs it (v1 → v2 at the config's
 * rate), on a namespace without the previous test's pods (removeWorkload): every real result must make a valid verdict/v1 record with one ledger line per recorded
 * request; the verdict, gates and failure causes are printed with the run's duration.
 */
export async function runOnCluster(o: ClusterRun): Promise<CheckResult> {
  const faults = o.faults ?? [];
  const name = o.experiment.name;
  const say = timedSay();
  // Where the harness deploys (the target takes images), it starts from an empty namespace rather
  // than draining the previous test's pods; on a target it cannot deploy to, the running workload is
  // what it tests.
  if (o.target.images) {
    await removeWorkload(o.target, o.app.workload);
    say(`the previous test's workload removed`);
  }
  const [r] = await runExperiments(o.target, [o.experiment], {
    app: o.app,
    config: o.config,
    signal: new AbortController().signal,
    say,
    options: { rate: o.config.experiments.rate, from: 'v1', to: 'v2', faults: faults.map((f) => o.app.faults[f]) },
  });
  const rec = checkRecord(r);
  const record = runRecord({
    command: o.command ?? 'experiment',
    target: await describeTarget(o.target, o.serviceUrl),
    results: [r],
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    app: { name: o.app.name, versions: { from: 'v1', to: 'v2' }, faults },
    ledgerFile: r.evidence?.loads.length ? 'ledger.ndjson.gz' : null,
  });
  assertValidRunRecord(record, name);
  let lines = 0;
  for (const line of ledgerLines([r])) {
    if (lines++ === 0) expect(JSON.parse(line).check).toMatch(new RegExp(`^${name}`));
  }
  expect(lines).toBe(r.evidence?.loads.reduce((n, l) => n + l.result.ledger.length, 0) ?? 0);
  process.stderr.write(
    `${name}${faults.length ? ` [${faults}]` : ''}: ${r.verdict}${r.error ? ` ${r.error}` : ''} in ${((r.endedAt - r.startedAt) / 1000).toFixed(1)} s\n` +
      `${r.gates.map((g) => `  ${g.verdict} ${g.name}: ${g.evidence}`).join('\n')}\n` +
      `${rec.failures.map((f) => `  ${f.count} × ${f.cause}: ${f.examples[0]?.reason}`).join('\n')}\n`,
  );
  return r;
}

/**
 * Progress on stderr, each line with the seconds since the run began, so that a slow phase (deploy,
 * warm-up, outage, recovery, settle) shows in the log of any run.
 */
export function timedSay(started = Date.now()): (message: string) => void {
  return (m) => process.stderr.write(`  +${((Date.now() - started) / 1000).toFixed(1)} s ${m}\n`);
}

/** rollout-under-load's gates in their order, each PASS: what a shipped release must get on any target. */
export const EVERY_ROLLOUT_GATE_PASSES = [
  'rollout completed',
  'no failed request',
  'load as planned',
  'traffic crossed the rollout',
  'capacity held',
  'sessions preserved',
  'latency held',
  'cold-start latency',
].map((name) => [name, 'PASS']);
