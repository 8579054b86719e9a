import { Command } from 'commander';
import type { TargetSpec } from '../../cluster/target.ts';
import { EXPERIMENTS, VERIFY_LOCAL_ALL, VERIFY_LOCAL_DEFAULT } from '../../experiments/index.ts';
import { runExperimentCommand, sharedRunOptions } from '../experiment-run.ts';
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
  from: string;
  to: string;
  rate?: number;
  nodes: number;
  out: string;
  break: string[];
  stateDir?: string;
  target?: TargetSpec;
  all: boolean;
  config?: string;
  endpointLag?: number;
  json: boolean;
  agents?: number;
  history?: string;
  againstHistory: boolean;
}

/** `verdict verify-local`: the main job. A local cluster, the release rolled out and disrupted under load, one verdict. */
export function verifyLocalCommand(): Command {
  return new Command('verify-local')
    .description('bring up a local cluster, roll the license API out and disrupt it under load, and decide PASS/FAIL')
    .option('--from <tag>', 'release running before the rollout', 'v1')
    .option('--to <tag>', 'release rolled out under load (the candidate)', 'v2')
    .addOption(rateOption())
    .addOption(nodesOption())
    .addOption(targetOption().default('embedded'))
    .addOption(lagOption())
    .addOption(agentsOption())
    .option(
      '--all',
      `also run ${VERIFY_LOCAL_ALL.filter((n) => !VERIFY_LOCAL_DEFAULT.includes(n)).join(' and ') || 'the slower experiments'}`,
      false,
    )
    .option('--out <dir>', 'where the run directory goes (<out>/verify-local-<time>/, and <out>/latest)', '.reports/verify-local')
    .option('--config <file>', 'gates, thresholds and allowed contexts (default: ./verdict.config.yaml if present)')
    .option('--state-dir <dir>', "the embedded cluster's state directory (default /var/lib/verdict/verify-local)")
    .option('--json', 'print verdict.json to stdout instead of the summary', false)
    .addOption(breakOption())
    .addOption(historyOption())
    .addOption(againstHistoryOption())
    .addHelpText(
      'after',
      `
What it does (embedded target: no Docker needed, run as root):
  1. starts the cluster (real control plane, process node agent, pod network, NodePort proxy
     with the endpoint lag measured on kube-proxy, 1.1 s) and builds license-api:<from> and license-api:<to>
  2. runs the experiments, each under the license flow's load through http://127.0.0.1:30080:
     ${VERIFY_LOCAL_DEFAULT.map((n) => `${n}: ${EXPERIMENTS[n].description}`).join('\n     ')}
  3. judges every gate, writes the run directory and prints the verdict; tears everything down

Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR, 64 bad usage. Anything but 0: do not promote.
Examples:
  sudo make verify-local
  npx verdict verify-local --break naive-shutdown      # should FAIL: requests dropped on SIGTERM
  npx verdict verify-local --agents 2                  # the load from 2 agents in the cluster`,
    )
    .action(async (o: Opts) => {
      if (process.getuid?.() !== 0 && (o.target ?? 'embedded') === 'embedded') {
        throw new UsageError(
          'verify-local runs the embedded cluster, which needs root (network namespaces): run it as root, e.g. sudo make verify-local, or use --target kind',
        );
      }
      process.exitCode = await runExperimentCommand({
        command: 'verify-local',
        experiments: o.all ? VERIFY_LOCAL_ALL : VERIFY_LOCAL_DEFAULT,
        target: o.target ?? 'embedded',
        ...sharedRunOptions(o),
        clusterName: 'verify-local',
        agents: o.agents,
        againstHistory: o.againstHistory,
      });
    });
}
