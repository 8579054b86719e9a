/** Options several commands share, with their parsers. */
import { InvalidArgumentError, Option } from 'commander';
import { FAULTS } from '../apps/license-api/profile.ts';
import { parseTargetSpec, type TargetSpec } from '../cluster/target.ts';

export const collect = (v: string, prev: string[]) => [...prev, v];
/** `--target`'s value through the one parser (cluster/target.ts). */
export const targetArg = (v: string): TargetSpec => {
  try {
    return parseTargetSpec(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};
export const targetOption = (
  description = 'embedded (made here, needs root), kind (needs Docker), context:<name> (an allowed kubeconfig context), or auto',
) => new Option('--target <target>', description).argParser(targetArg);
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
