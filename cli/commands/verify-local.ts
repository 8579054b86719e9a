import { Command, InvalidArgumentError, Option } from 'commander';
import { parseTargetSpec } from '../../cluster/target.ts';
import { EXPERIMENTS, VERIFY_LOCAL_ALL, VERIFY_LOCAL_DEFAULT } from '../../experiments/index.ts';
import { FAULTS } from '../../apps/license-api/profile.ts';
import { runExperimentCommand } from '../experiment-run.ts';
import { UsageError } from '../exit-codes.ts';

export const collect = (v: string, prev: string[]) => [...prev, v];
export const targetOption = () =>
  new Option(
    '--target <target>',
    'embedded (made here, needs root), kind (needs Docker), context:<name> (an allowed kubeconfig context), or auto',
  ).argParser((v) => {
    try {
      return parseTargetSpec(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  });
export const rateOption = () =>
  new Option('--rate <req/s>', "requests per second of the app's load mix (default from the config: 450)").argParser((v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > 5000)
      throw new InvalidArgumentError('must be a number of requests per second from 1 to 5000');
    return n;
  });
export const nodesOption = () =>
  new Option('--nodes <n>', 'embedded cluster nodes (the Deployment has 3 replicas and a PDB of 2)')
    .argParser((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 10) throw new InvalidArgumentError('must be a whole number from 1 to 10');
      return n;
    })
    .default(3);
export const lagOption = () =>
  new Option(
    '--endpoint-lag <ms>',
    'embedded: delay before the Service proxy applies an endpoint change (default 1100, measured on kube-proxy in kind: see the README; 0 turns it off)',
  ).argParser((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 60_000) throw new InvalidArgumentError('must be whole milliseconds from 0 to 60000');
    return n;
  });
export const agentsOption = () =>
  new Option(
    '--agents <n>',
    'embedded: run the load from N load agents in the cluster (an Indexed Job of the bundled engine; their ledgers merged and judged as one) instead of this process',
  ).argParser((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 100)
      throw new InvalidArgumentError('must be a whole number of agents from 1 to 100');
    return n;
  });
export const breakOption = () =>
  new Option('--break <fault>', 'deploy a deliberately broken release, to see the verdict catch it (repeatable)')
    .choices(Object.keys(FAULTS))
    .argParser(collect)
    .default([]);

interface Opts {
  from: string;
  to: string;
  rate?: number;
  nodes: number;
  out: string;
  break: string[];
  stateDir?: string;
  target?: string;
  all: boolean;
  config?: string;
  endpointLag?: number;
  json: boolean;
  agents?: number;
  history?: string;
  againstHistory: boolean;
}

/** `--history <path>`: the run history file (a CI cache or artifact shared by a team). */
export const historyOption = () =>
  new Option(
    '--history <path>',
    'the run history every run is appended to (SQLite; default: history.sqlite beside the --out folder, .reports/history.sqlite)',
  );
/** `--against-history`: judge the run against the history too. */
export const againstHistoryOption = () =>
  new Option(
    '--against-history',
    'judge the run against the last comparable runs of the history too ("no worse than history"; too few runs: INCONCLUSIVE)',
  ).default(false);

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
        target: (o.target ?? 'embedded') as never,
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
        clusterName: 'verify-local',
        agents: o.agents,
        history: o.history,
        againstHistory: o.againstHistory,
      });
    });
}
