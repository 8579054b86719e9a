import { Command } from 'commander';
import type { TargetSpec } from '../../cluster/target.ts';
import { EXPERIMENTS } from '../../experiments/index.ts';
import { requireRootForEmbedded, runExperimentCommand, sharedRunOptions } from '../experiment-run.ts';
import { UsageError } from '../exit-codes.ts';
import {
  againstHistoryOption,
  agentsOption,
  breakOption,
  historyOption,
  lagOption,
  nodesOption,
  rateOption,
  targetOption,
} from '../options.ts';

interface Opts {
  list: boolean;
  from: string;
  to: string;
  rate?: number;
  nodes: number;
  out: string;
  break: string[];
  stateDir?: string;
  target: TargetSpec;
  config?: string;
  endpointLag?: number;
  url?: string;
  json: boolean;
  agents?: number;
  history?: string;
  againstHistory: boolean;
}

/** `verdict experiment <name...>`: one or more experiments against any allowed target. */
export function experimentCommand(): Command {
  return new Command('experiment')
    .description('run named experiments (pod kill, drain, rollout...) against a target and decide PASS/FAIL')
    .argument('[names...]', 'experiments to run, in order (see --list)')
    .option('--list', 'list the experiments and exit', false)
    .addOption(targetOption().default('embedded'))
    .option('--url <url>', "context targets: the URL that reaches the app's Service from here")
    .option('--from <tag>', 'release running before a rollout', 'v1')
    .option('--to <tag>', 'the release under test', 'v2')
    .addOption(rateOption())
    .addOption(nodesOption())
    .addOption(lagOption())
    .addOption(agentsOption())
    .option('--out <dir>', 'where the run directory goes', '.reports/experiment')
    .option('--config <file>', 'gates, thresholds and allowed contexts (default: ./verdict.config.yaml if present)')
    .option('--state-dir <dir>', "the embedded cluster's state directory")
    .option('--json', 'print verdict.json to stdout instead of the summary', false)
    .addOption(breakOption())
    .addOption(historyOption())
    .addOption(againstHistoryOption())
    .addHelpText(
      'after',
      `
A context target must be allowed by name in the config (allowedContexts); one matching
deniedContexts (default "*prod*") is always refused. Clusters the harness creates are always allowed.

Examples:
  verdict experiment --list
  sudo npx verdict experiment rollout-under-load --rate 300
  npx verdict experiment rollout-under-load --target context:staging --url https://staging.example.com`,
    )
    .action(async (names: string[], o: Opts) => {
      if (o.list) {
        for (const e of Object.values(EXPERIMENTS))
          process.stdout.write(
            `${e.name.padEnd(22)} ${e.description}${e.needs?.length ? ` [needs: ${e.needs.join(', ')}]` : ''}\n`,
          );
        return;
      }
      if (names.length === 0)
        throw new UsageError(
          'name the experiments to run (verdict experiment --list shows them), e.g. verdict experiment rollout-under-load',
        );
      requireRootForEmbedded(o.target, 'verdict experiment');
      process.exitCode = await runExperimentCommand({
        command: 'experiment',
        experiments: names,
        target: o.target,
        ...sharedRunOptions(o),
        url: o.url,
        clusterName: 'experiment',
        agents: o.agents,
        againstHistory: o.againstHistory,
      });
    });
}
