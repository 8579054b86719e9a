/**
 * `verdict rehearse`: the pre-upgrade rehearsal journey as one command and one verdict.
 *
 * - `verdict rehearse gke-upgrade | db-maintenance | key-rotation | all`: the experiments that
 *   rehearse the seed's high-risk changes (experiments/rehearsals.ts), run as one run directory.
 * - `verdict rehearse [--target context:<staging>] -- <command ...>`: observe mode, any external
 *   operation (a real `gcloud container clusters upgrade`, `tofu apply tfplan`, `kubectl apply -f`)
 *   run as the act of an experiment under the app's load and the watched timeline, judged by the
 *   same gates (experiments/observe.ts).
 *
 * A closed deploy window refuses before anything else happens; a context that is not allowed (or is
 * denied) is refused before any load is sent (cli/experiment-run.ts), as `verdict experiment` does.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { specTarget, type TargetSpec } from '../../cluster/target.ts';
import { observeExperiment } from '../../experiments/observe.ts';
import { ALL_JOURNEYS, JOURNEYS, journeyExperiments, UnknownJourneyError } from '../../experiments/rehearsals.ts';
import { EXPERIMENTS } from '../../experiments/index.ts';
import { checkDeployWindowOrRefuse, windowOptions } from '../deploy-window.ts';
import { requireRootForEmbedded, runExperimentCommand, sharedRunOptions } from '../experiment-run.ts';
import { UsageError } from '../exit-codes.ts';
import { breakOption, historyOption, lagOption, nodesOption, rateOption, targetOption } from '../options.ts';

interface Opts {
  list: boolean;
  target: TargetSpec;
  url?: string;
  from: string;
  to: string;
  rate?: number;
  nodes: number;
  endpointLag?: number;
  outage?: number;
  allowFailedRate: number;
  timeout: number;
  break: string[];
  out: string;
  config?: string;
  stateDir?: string;
  json: boolean;
  history?: string;
  environment?: string;
  overrideWindow?: string;
}

const seconds = (what: string, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 1 || n > max)
    throw new InvalidArgumentError(`${what} must be a number of seconds from 1 to ${max}`);
  return n;
};

/** `0.001` or `0.1%`: a fraction of the requests, from 0 to 1. */
export function parseFailedRate(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(v.trim());
  const n = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new InvalidArgumentError('must be a fraction of the requests from 0 to 1 (e.g. 0.001) or a percentage (e.g. 0.1%)');
  return n;
}

/** The journey named before `--`, and the command after it (raw: never parsed as options). */
export function splitRehearseArgs(raw: string[], operands: string[]): { journey: string | null; command: string[] } {
  const at = raw.indexOf('rehearse');
  const dd = raw.indexOf('--', at + 1);
  const command = at >= 0 && dd >= 0 ? raw.slice(dd + 1) : [];
  const before = operands.slice(0, operands.length - command.length);
  if (before.length > 1)
    throw new UsageError(`name one rehearsal, not ${before.length} (${before.join(' ')}); or put the command after --`);
  if (before.length && dd >= 0)
    throw new UsageError(`name a rehearsal or give a command after --, not both ("${before[0]}" and -- ${command.join(' ')})`);
  if (dd >= 0 && !command.length)
    throw new UsageError(
      'give the command to rehearse after --, e.g. verdict rehearse --target context:staging -- gcloud container clusters upgrade ...',
    );
  return { journey: before[0] ?? null, command };
}

function listJourneys(): void {
  for (const j of JOURNEYS) {
    const missing = j.experiments.filter((n) => !EXPERIMENTS[n]);
    process.stdout.write(
      `${j.name.padEnd(16)} ${j.experiments.join(' + ')}${missing.length ? ` (not in this build yet: ${missing.join(', ')})` : ''}\n${' '.repeat(17)}${j.what}\n`,
    );
  }
  process.stdout.write(`${ALL_JOURNEYS.padEnd(16)} every rehearsal above, in order\n`);
  process.stdout.write(`${'-- <command>'.padEnd(16)} any operation under load, judged by the same gates\n`);
}

/** What the run does: the experiments of a journey, or the foreign command as the act of one. */
function experimentsOf(journey: string | null, command: string[], o: Opts) {
  if (journey) {
    try {
      return journeyExperiments(journey);
    } catch (err) {
      if (err instanceof UnknownJourneyError) throw new UsageError(err.message);
      throw err;
    }
  }
  if (!command.length)
    throw new UsageError(
      `name a rehearsal (${JOURNEYS.map((j) => j.name).join(', ')}, ${ALL_JOURNEYS}) or give a command after --: verdict rehearse --list`,
    );
  return [
    observeExperiment({
      argv: command,
      allowFailedRate: o.allowFailedRate,
      timeoutMs: o.timeout * 1000,
      onLine: (line, stream) => process.stderr.write(`  ${stream === 'stderr' ? '!' : '|'} ${line}\n`),
    }),
  ];
}

async function rehearse(operands: string[], o: Opts, cmd: Command): Promise<void> {
  if (o.list) return listJourneys();
  // The program's own argv (commander keeps it as rawArgs): where `--` was is lost in the operands.
  const raw = (cmd.parent as unknown as { rawArgs?: string[] } | null)?.rawArgs ?? process.argv;
  const { journey, command } = splitRehearseArgs(raw, operands);
  const experiments = experimentsOf(journey, command, o);
  requireRootForEmbedded(o.target, 'verdict rehearse');
  // Before anything else (any cluster, any load): a closed deploy window refuses unless overridden.
  const window = await checkDeployWindowOrRefuse('rehearse', o, { context: specTarget(o.target).context });
  process.exitCode = await runExperimentCommand({
    command: 'rehearse',
    experiments,
    target: o.target,
    ...sharedRunOptions(o),
    url: o.url,
    clusterName: 'rehearse',
    approvals: window.approval ? [window.approval] : [],
    configPatch: (c) => {
      if (o.outage !== undefined) c.experiments.controlPlaneOutageMs = o.outage * 1000;
    },
  });
}

export function rehearseCommand(): Command {
  return new Command('rehearse')
    .description(
      'rehearse a high-risk change under load (gke-upgrade, db-maintenance, key-rotation, all), or any operation: -- <command>',
    )
    .argument('[rehearsal]', `${JOURNEYS.map((j) => j.name).join(' | ')} | ${ALL_JOURNEYS} (or: -- <command ...>)`)
    .argument('[command...]', 'after --: the operation to run under load (run as given, without a shell)')
    .option('--list', 'list the rehearsals and exit', false)
    .addOption(targetOption().default('embedded'))
    .option('--url <url>', "context targets: the URL that reaches the app's Service from here")
    .option('--from <tag>', 'release running before a rollout', 'v1')
    .option('--to <tag>', 'the release under test', 'v2')
    .addOption(rateOption())
    .addOption(nodesOption())
    .addOption(lagOption())
    .addOption(
      new Option(
        '--outage <seconds>',
        'control-plane-outage: how long the control plane stays away (default from the config: 120)',
      ).argParser(seconds('--outage', 3600)),
    )
    .addOption(
      new Option(
        '--allow-failed-rate <rate>',
        'observe mode: failed requests allowed (a disruption budget), e.g. 0.001 or 0.1% (default none)',
      )
        .argParser(parseFailedRate)
        .default(0),
    )
    .addOption(
      new Option('--timeout <seconds>', 'observe mode: stop the command after this long')
        .argParser(seconds('--timeout', 86_400))
        .default(3600),
    )
    .option('--out <dir>', 'where the run directory goes', '.reports/rehearse')
    .option('--config <file>', 'gates, allowed contexts, deploy windows (default: ./verdict.config.yaml if present)')
    .option('--state-dir <dir>', "the embedded cluster's state directory")
    .option('--json', 'print verdict.json to stdout instead of the summary', false)
    .addOption(breakOption())
    .addOption(historyOption())
    .addOption(windowOptions.environment())
    .addOption(windowOptions.overrideWindow())
    .addHelpText(
      'after',
      `
A context target must be allowed by name in the config (allowedContexts) and not denied
(deniedContexts, default "*prod*", in any letter case): it is refused before any load is sent. A
closed deploy window (deployWindows) refuses first, unless --override-window "<reason>".

In observe mode the command runs without a shell, with KUBECONFIG set to the target's kubeconfig
when it has one; its output is streamed, and its exit code and last lines are in the report.

Examples:
  sudo npx verdict rehearse gke-upgrade
  npx verdict rehearse --list
  npx verdict rehearse --target context:staging --url https://staging.example.com -- \\
      gcloud container clusters upgrade staging-gke-cluster --master --location us-central1-a --quiet`,
    )
    .action(async (rehearsal: string | undefined, rest: string[], o: Opts, cmd: Command) =>
      rehearse([...(rehearsal ? [rehearsal] : []), ...rest], o, cmd),
    );
}
