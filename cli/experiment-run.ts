/**
 * What `verdict verify-local` and `verdict experiment` share: read the config, pick the target,
 * run the experiments with the runner, write the run directory, print the summary, exit with the
 * verdict's code. Ctrl-C (or SIGTERM) stops the load, tears down what the experiments made and the
 * cluster the harness created, and still writes what was found (verdict ERROR).
 */
import { licenseApi } from '../apps/license-api/profile.ts';
import { openTarget, specTarget, type TargetSpec, type Target } from '../cluster/target.ts';
import { TARGET_STRATEGIES } from '../cluster/strategies.ts';
import {
  assertNotDenied,
  assertTargetAllowed,
  ConfigFileError,
  loadHarnessConfig,
  TargetNotAllowedError,
  type HarnessConfig,
} from '../experiments/config.ts';
import { EXPERIMENTS } from '../experiments/index.ts';
import { describeTarget, ledgerLines, runRecord } from '../experiments/record.ts';
import { runExperiments, type CheckResult } from '../experiments/runner.ts';
import { evidenceStrength } from '../experiments/evidence-strength.ts';
import type { AppProfile, Fault } from '../experiments/app-profile.ts';
import type { ApprovalRecord, TargetRecord } from '../reports/run-record.ts';
import type { AnyExperiment } from '../experiments/experiment.ts';
import { LEDGER_FILE } from '../reports/ledger-file.ts';
import { UsageError } from './exit-codes.ts';
import { dirname, join, resolve } from 'node:path';
import { HISTORY_FILE, RunHistory } from '../reports/history.ts';
import { noWorseThanHistory } from '../experiments/history-gate.ts';
import { openShell, type Shell } from './shell.ts';

export interface ExperimentRunOptions {
  command: 'verify-local' | 'experiment' | 'rehearse';
  /** By name (experiments/index.ts), or made for this run (observe mode's foreign action). */
  experiments: Array<string | AnyExperiment>;
  target: TargetSpec;
  from: string;
  to: string;
  rate?: number;
  breaks: string[];
  out: string;
  config?: string;
  nodes: number;
  stateDir?: string;
  endpointLag?: number;
  url?: string;
  json?: boolean;
  clusterName: string;
  /** Load from this many agents in the cluster (embedded only). */
  agents?: number;
  /** The run history to append to (default: history.sqlite beside the --out folder, i.e. .reports/history.sqlite). */
  history?: string;
  /** Judge the run against the history too ("no worse than history"). */
  againstHistory?: boolean;
  /** A person's go-ahead the run carries (a deploy window overridden), for verdict.json. */
  approvals?: ApprovalRecord[];
  /** Changes to the config for this run (a flag that overrides a config value). */
  configPatch?: (config: HarnessConfig) => void;
}

/** The flags `experiment`, `verify-local` and `rehearse` share, as commander parses them. */
export interface SharedRunFlags {
  from: string;
  to: string;
  rate?: number;
  break: string[];
  out: string;
  config?: string;
  nodes: number;
  stateDir?: string;
  endpointLag?: number;
  json?: boolean;
  history?: string;
}

/** The run options the shared flags give (`--break` becomes `breaks`). */
export const sharedRunOptions = (o: SharedRunFlags) => ({
  from: o.from,
  to: o.to,
  rate: o.rate,
  breaks: o.break,
  out: o.out,
  config: o.config,
  nodes: o.nodes,
  stateDir: o.stateDir,
  endpointLag: o.endpointLag,
  json: o.json,
  history: o.history,
});

/** The embedded target makes network namespaces: without root, refuse before anything starts, naming the other targets. */
export function requireRootForEmbedded(target: TargetSpec, command = 'this command'): void {
  if (process.getuid?.() !== 0 && target === 'embedded')
    throw new UsageError(
      `${command} on the embedded target needs root (network namespaces): run as root (e.g. sudo), or use --target kind or --target context:<name>`,
    );
}

/** Where a run's history is kept: `--history`, else beside the run folders (`.reports/history.sqlite`). */
export const historyPathOf = (o: Pick<ExperimentRunOptions, 'history' | 'out'>) =>
  o.history ? resolve(o.history) : join(dirname(resolve(o.out)), HISTORY_FILE);

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Validates everything a user can get wrong before anything starts; throws UsageError naming the fix. */
export function checkUsage(o: ExperimentRunOptions, app: AppProfile = licenseApi): void {
  if (!TAG.test(o.from) || !TAG.test(o.to) || o.from === o.to)
    throw new UsageError('--from and --to must be two different image tags, e.g. --from v1 --to v2');
  for (const name of o.experiments) {
    if (typeof name === 'string' && !EXPERIMENTS[name])
      throw new UsageError(
        `unknown experiment "${name}"; the experiments are: ${Object.keys(EXPERIMENTS).join(', ')} (verdict experiment --list)`,
      );
  }
  for (const b of o.breaks) {
    if (!app.faults[b])
      throw new UsageError(`unknown fault "${b}" for --break; the faults are: ${Object.keys(app.faults).join(', ')}`);
  }
  if (o.agents !== undefined && !['embedded', 'auto'].includes(specTarget(o.target).kind)) {
    throw new UsageError(
      `--agents runs on --target embedded only for now (got "${o.target}"): kind and existing clusters give pods no address of the harness to report to yet`,
    );
  }
}

export async function runExperimentCommand(o: ExperimentRunOptions, app: AppProfile = licenseApi): Promise<number> {
  const { config, source } = await allowedConfig(o, app);
  o.configPatch?.(config);
  // Steps as lines; the load's progress as one live line on a terminal, a line every 10 s in CI.
  using shell = openShell({ stopping: 'stopping the load and tearing down' });
  const faults = o.breaks.map((b) => app.faults[b]);
  for (const f of faults) shell.say(`deliberately broken release: ${f.name} (${f.what}); the verdict should not be PASS`);
  shell.leaves(leftBehind(o, specTarget(o.target).kind));
  const { results, targetRecord, runError } = await runOnTarget(o, app, shell, { config, source, faults });
  const hasLedger = results.some((r) => r.evidence?.loads.length);
  const recordOf = (checks: CheckResult[]) => ({
    ...runRecord({
      command: o.command,
      target: targetRecord,
      results: checks,
      startedAt: shell.started,
      endedAt: Date.now(),
      error: runError,
      app: { name: app.name, versions: { from: o.from, to: o.to }, faults: o.breaks },
      ledgerFile: hasLedger ? LEDGER_FILE : null,
    }),
    ...(o.approvals?.length ? { approvals: o.approvals } : {}),
  });
  const historyPath = historyPathOf(o);
  if (o.againstHistory && results.length) results.push(noWorseThanHistory(historyPath, recordOf(results), config.gates.history));
  return await shell.finish(recordOf(results), {
    out: o.out,
    json: o.json,
    ledger: hasLedger ? ledgerLines(results) : null,
    // Every run joins the history (a run that broke before any experiment adds nothing).
    onWritten: (dir, record) => {
      try {
        using history = RunHistory.open(historyPath);
        history.append(record, dir);
      } catch (err) {
        process.stderr.write(`verdict: the run was not added to the history ${historyPath}: ${(err as Error).message}\n`);
      }
    },
  });
}

/**
 * The config file, and the command checked against it: someone else's cluster is refused before it
 * is touched (no request is sent) when the config does not allow it, a denied (production) context
 * first, whatever else is wrong with the command.
 */
async function allowedConfig(o: ExperimentRunOptions, app: AppProfile): Promise<{ config: HarnessConfig; source?: string }> {
  let loaded;
  try {
    loaded = await loadHarnessConfig(o.config);
  } catch (err) {
    if (err instanceof ConfigFileError) throw new UsageError(err.message);
    throw err;
  }
  const { config, source } = loaded;
  const { context } = specTarget(o.target);
  const existing = context ? ({ owned: false, kind: 'existing', context, name: context } as const) : null;
  try {
    if (existing) assertNotDenied(existing, config, source);
    checkUsage(o, app);
    if (existing) assertTargetAllowed(existing, config, source);
  } catch (err) {
    if (err instanceof TargetNotAllowedError) throw new UsageError(err.message);
    throw err;
  }
  return { config, source };
}

/** Opens the target, runs the experiments (and, for verify-local, the evidence-strength gate), closes the target. */
async function runOnTarget(
  o: ExperimentRunOptions,
  app: AppProfile,
  shell: Shell,
  c: { config: HarnessConfig; source?: string; faults: Fault[] },
): Promise<{ results: CheckResult[]; targetRecord: TargetRecord; runError: string | null }> {
  const { say } = shell;
  const { kind } = specTarget(o.target);
  let target: Target | undefined;
  let results: CheckResult[] = [];
  let runError: string | null = null;
  let targetRecord: TargetRecord = {
    kind: kind === 'auto' ? 'embedded' : kind,
    name: o.clusterName,
    context: null,
    serverVersion: null,
    url: o.url ?? null,
    endpointLagMs: null,
  };
  try {
    target = await openTarget(o.target, TARGET_STRATEGIES, {
      name: o.clusterName,
      nodes: o.nodes,
      stateDir: o.stateDir,
      endpointLagMs: o.endpointLag,
      serviceUrl: o.url,
      onProgress: say,
      signal: shell.signal,
    });
    let url: string | null = null;
    try {
      url = target.serviceUrl(app.workload.nodePort);
    } catch {
      /* said again by the runner */
    }
    targetRecord = await describeTarget(target, url);
    results = await runExperiments(
      target,
      o.experiments.map((n) => (typeof n === 'string' ? EXPERIMENTS[n] : n)),
      {
        app,
        config: c.config,
        configSource: c.source,
        signal: shell.signal,
        say,
        agents: o.agents,
        options: { rate: o.rate ?? c.config.experiments.rate, from: o.from, to: o.to, faults: c.faults },
        onLoadProgress: (label, p) =>
          shell.update(
            `load ${label}: ${p.succeeded} ok, ${p.failed} failed, ${p.dropped} dropped, ${p.recentRate.toFixed(0)} req/s, p99 ${p.recentP99?.toFixed(1) ?? '-'} ms`,
          ),
      },
    );
    if (o.command === 'verify-local') results.push(evidenceStrength(results, c.config.gates.evidence.maxUpperBound));
  } catch (err) {
    if (err instanceof TargetNotAllowedError) process.stderr.write(`verdict: ${err.message}\n`);
    runError = shell.errorOf(err);
  } finally {
    shell.done();
    if (target) {
      say(target.owned ? 'tearing the cluster down' : 'leaving the cluster as found');
      await target.close().catch((err) => say(`teardown: ${err}`));
    }
  }
  return { results, targetRecord, runError };
}

/** What quitting at once (a second Ctrl-C) may leave of the cluster this run makes, and how to remove it. */
function leftBehind(o: ExperimentRunOptions, kind: ReturnType<typeof specTarget>['kind']): string {
  if (kind === 'existing') return "the experiment's Deployment, load and pods in the context, as they were when it quit";
  const embedded = `what the embedded cluster started: verdict cluster down --name ${o.clusterName}${o.stateDir ? ` --state-dir ${o.stateDir}` : ''}`;
  const kindCluster = `the kind cluster: verdict cluster down --provider kind --name ${o.clusterName}`;
  return kind === 'embedded' ? embedded : kind === 'kind' ? kindCluster : `${embedded}; or ${kindCluster}`;
}
