import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { licenseApi } from '../../apps/license-api/profile.ts';
import { Command } from 'commander';
import type { PodReach, TargetSpec } from '../../cluster/target.ts';
import { targetOption } from '../options.ts';
import { openShell } from '../shell.ts';
import type { LoadRun } from '../../lib/load/index.ts';
import type { DistributedLoadResult } from '../../lib/load/distributed/index.ts';
import type { LoadFlags } from '../../lib/load/run-options.ts';
import { exitCodeOf, UsageError } from '../exit-codes.ts';

interface LoadCommandFlags extends LoadFlags {
  out?: string;
  ndjson?: boolean;
  bundle?: string;
  progressEvery?: string;
  agents?: string;
  target?: TargetSpec;
  name?: string;
  stateDir?: string;
  namespace?: string;
  agentEnv?: string[];
  startDelay?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** `verdict load`: bounded HTTP load against one URL, with a per-request ledger and a verdict. */
export function loadCommand(): Command {
  const cmd = new Command('load').description(
    'send bounded HTTP load to a URL (open or closed model) and judge it against thresholds',
  );
  return agentOptions(engineOptions(cmd))
    .addHelpText('after', LOAD_HELP)
    .action(async (flags: LoadCommandFlags) => {
      await refuseDisallowedContext(flags.target);
      if (flags.agents !== undefined) process.exitCode = await distributedLoad(flags);
      else if (flags.bundle) await bundleAgent(flags);
      else process.exitCode = await localLoad(flags);
    });
}

/** The engine's flags (lib/load/run-options.ts reads them) and where the results go. */
function engineOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'target URL (loopback by default; its path is requested when no scenario is given)')
    .option('--rate <rate>', 'open model: constant arrival rate, e.g. 500/s, 30000/m')
    .option('--vus <n>', 'closed model: constant virtual users')
    .option('--duration <duration>', 'how long to schedule load, e.g. 30s, 2m')
    .option('--max-vus <n>', 'open model: iterations in flight before new ones are dropped')
    .option('--connections <n>', 'keep-alive connections (default 32, or one per VU)')
    .option('--timeout <duration>', 'per-request timeout (default 10s)')
    .option('--max-requests <n>', 'hard cap on requests (default 5,000,000)')
    .option('--min-requests <n>', 'fewer finished requests make the run INCONCLUSIVE (default 100)')
    .option('--max-schedule-delay <duration>', 'engine lateness (p99) that makes the run INCONCLUSIVE (default 50ms)')
    .option('--threshold <expr>', 'k6-style threshold, repeatable: "http_req_duration: p(99)<250"', collect, [])
    .option('--config <file>', 'k6-shaped options file (.json/.yaml): scenarios, thresholds, verdict{url,...}')
    .option('--scenario <file.ts>', 'scenario module (default export: defineScenario({...}))')
    .option('--out <dir>', 'write load-summary.json (and requests.ndjson with --ndjson) here')
    .option('--ndjson', 'stream the per-request ledger to <out>/requests.ndjson')
    .option('--allow-remote', 'allow a target outside loopback (rate capped at 10/s, arrival-rate only)')
    .option('--remote-rate-cap <n>', 'lower the remote rate cap')
    .option('--insecure', 'do not verify TLS certificates')
    .option('--precision <mode>', 'scheduling: "timer" (default) or "spin" (sub-ms, costs a core)')
    .option('--progress-every <duration>', 'progress line interval when stderr is not a TTY (default 5s)')
    .option('--bundle <file>', 'instead of running: write a single-file load agent (engine + scenario) for plain node');
}

/** Identity headers, and `--agents` with the flags that go with it. */
function agentOptions(cmd: Command): Command {
  return cmd
    .option(
      '--backend-header <name>',
      'response header naming the pod that answered (recorded per request)',
      licenseApi.identityHeaders.backend,
    )
    .option(
      '--version-header <name>',
      'response header naming the app version (recorded per request)',
      licenseApi.identityHeaders.version,
    )
    .option(
      '--agents <n>',
      'run the load from N agents in the cluster (a Kubernetes Indexed Job), each 1/N of it, merged into one result',
    )
    .addOption(
      targetOption(
        'with --agents: where the agents run; only "embedded" (the running `verdict cluster up` cluster) for now',
      ).default('embedded'),
    )
    .option('--name <name>', "with --agents: the embedded cluster's name", 'verdict')
    .option('--state-dir <dir>', "with --agents: the embedded cluster's state directory")
    .option('--namespace <ns>', "with --agents: namespace of the agents' Job", 'default')
    .option(
      '--agent-env <NAME>',
      'with --agents: pass this environment variable to the agents (e.g. LICENSE_TOKEN for the scenario); repeatable',
      collect,
      [],
    )
    .option(
      '--start-delay <duration>',
      "with --agents: how far ahead the agents' shared start is set (time for their pods to start)",
      '10s',
    );
}

const LOAD_HELP = `
Examples:
  verdict load --url http://127.0.0.1:8080/health/ready --rate 500/s --duration 30s
  verdict load --url http://127.0.0.1:8080 --scenario apps/license-api/load-scenario.ts --rate 200/s --duration 1m \\
    --threshold "http_req_failed: rate<0.001" --threshold "http_req_duration: p(99)<250" --out .reports/load
  verdict load --config k6-options.json --out .reports/load
  verdict load --scenario apps/license-api/load-scenario.ts --bundle dist/load-agent.mjs
  LICENSE_TOKEN=$(verdict token --sub load) verdict load --agents 2 --url http://127.0.0.1:30080 \\
    --scenario apps/license-api/load-scenario.ts --agent-env LICENSE_TOKEN --rate 100/s --duration 1m

With --agents N the load runs on the embedded cluster that \`verdict cluster up\` started (it is
not brought up here: the app must be deployed on it first; run as root). The engine and the
scenario are bundled into an image in its image store, run as an Indexed Job of N pods, each with
1/N of the rate (or VUs), connections and request cap, all starting at one instant --start-delay
ahead. A loopback --url is the Service's NodePort: the agents reach it at the pod network's
gateway (10.244.0.1), where the cluster's Service proxy listens too. Each agent sends its ledger
to this command, which merges them and judges the merged run with the same statistics and
thresholds as one process; an agent that does not report makes the run INCONCLUSIVE. The Job
and its pods are deleted afterwards, also on Ctrl-C. kind and existing clusters: not yet.

Exit codes: 0 PASS, 1 FAIL (threshold breached), 2 INCONCLUSIVE (too little data, load below target,
aborted), 3 ERROR, 64 bad usage (including a target the guard refuses).`;

/** `--bundle <file>`: the single-file load agent (engine + scenario) for plain node, instead of a run. */
async function bundleAgent(flags: LoadCommandFlags): Promise<void> {
  const { bundleLoadAgent } = await import('../../lib/load/bundle.ts');
  const out = await bundleLoadAgent({ scenario: flags.scenario, outfile: flags.bundle! });
  process.stderr.write(
    `load agent written to ${out.outfile} (${(out.bytes / 1024).toFixed(0)} KiB); run: node ${out.outfile} --url URL --rate 100/s --duration 30s\n`,
  );
}

/** The load from this process: a live progress line, Ctrl-C through the shell, the summary, the verdict's exit code. */
async function localLoad(flags: LoadCommandFlags): Promise<number> {
  // The engine (undici, esbuild, zod, ...) loads only when this command runs, not for `verdict --help`.
  const { startLoad, TargetNotAllowedError, ThresholdSyntaxError } = await import('../../lib/load/index.ts');
  const { progressLine, summaryTable } = await import('../../lib/load/report-text.ts');
  const { options, defaultThresholds } = await usageFromFlags(flags);
  if (flags.ndjson && !flags.out) throw new UsageError('--ndjson writes into --out: give --out <dir> as well');
  if (flags.out) {
    await mkdir(flags.out, { recursive: true });
    if (flags.ndjson) options.ndjson = join(flags.out, 'requests.ndjson');
  }
  const plainEvery = await progressEvery(flags);
  let run: LoadRun | undefined;
  using shell = openShell({
    label: 'load',
    stopping: 'stopping; in-flight requests are recorded as aborted',
    // The engine reports on its own clock: a line is due when about `plainEvery` has passed.
    everyMs: plainEvery * 0.9,
    onInterrupt: (sig) => run?.abort(`interrupted by ${sig}`),
  });
  options.progressIntervalMs = process.stderr.isTTY ? 250 : Math.min(1000, plainEvery);
  options.onProgress = (p) => (p.phase === 'done' ? shell.done() : shell.update(progressLine(p, run?.plan.durationMs ?? 0)));
  try {
    run = await startLoad(options);
  } catch (err) {
    if (err instanceof TargetNotAllowedError || err instanceof ThresholdSyntaxError || err instanceof RangeError)
      throw new UsageError((err as Error).message);
    throw err;
  }
  if (shell.signal.aborted) run.abort((shell.signal.reason as Error).message);
  if (defaultThresholds) shell.say('no thresholds given; judging with the default http_req_failed: rate<0.01');
  const result = await run.result;
  shell.done();
  process.stdout.write(summaryTable(result) + '\n');
  if (flags.out) {
    const file = join(flags.out, 'load-summary.json');
    const { summary, thresholds, assessment } = result;
    await writeFile(file, JSON.stringify({ summary, thresholds, assessment }, null, 2) + '\n');
    shell.say(`results in ${file}${typeof options.ndjson === 'string' ? ` and ${options.ndjson}` : ''}`);
  }
  return exitCodeOf(result.assessment.verdict);
}

/** `--progress-every`: how often a plain progress line is printed off a terminal (default 5 s). */
async function progressEvery(flags: LoadCommandFlags): Promise<number> {
  if (!flags.progressEvery) return 5000;
  const { parseDuration } = await import('../../lib/load/units.ts');
  try {
    return parseDuration(flags.progressEvery);
  } catch (err) {
    throw new UsageError(`--progress-every: ${(err as Error).message}`);
  }
}

/**
 * `--target context:<name>`: agents in someone else's cluster are load and pods in it, so the
 * context must pass the experiments' allow-list (verdict.config.yaml in the working directory:
 * `--config` here is the k6 options file) before anything else is said or done, production first.
 */
async function refuseDisallowedContext(target: TargetSpec | undefined): Promise<void> {
  const { specTarget } = await import('../../cluster/target.ts');
  const context = target ? specTarget(target).context : null;
  if (!context) return;
  const { assertTargetAllowed, ConfigFileError, loadHarnessConfig, TargetNotAllowedError } =
    await import('../../experiments/config.ts');
  try {
    const { config, source } = await loadHarnessConfig();
    assertTargetAllowed({ owned: false, kind: 'existing', context, name: context }, config, source);
  } catch (err) {
    if (err instanceof TargetNotAllowedError || err instanceof ConfigFileError) throw new UsageError(err.message);
    throw err;
  }
}

/** `verdict load --agents N`: the load from N agents on the running embedded cluster, merged. */
async function distributedLoad(flags: LoadCommandFlags): Promise<number> {
  const { TargetNotAllowedError } = await import('../../lib/load/target-guard.ts');
  const { ThresholdSyntaxError } = await import('../../lib/load/thresholds.ts');
  const { summaryTable } = await import('../../lib/load/report-text.ts');
  const { startAgents } = await import('../../lib/load/distributed/index.ts');
  const { agents, startDelayMs, env } = await agentUsage(flags);
  const { options, defaultThresholds, scenarioPath } = await usageFromFlags(flags);
  // Ctrl-C from the start (also while the image is built or the Job created): the first stops the
  // agents (they report what they have, the run is INCONCLUSIVE), a second quits at once.
  using shell = openShell({ label: 'load', stopping: 'stopping the agents; each reports what it has', everyMs: 0 });
  const target = await attachedCluster(flags);
  const url = await agentsUrl(options.url, target.podReach, shell.say);
  if (defaultThresholds) shell.say('no thresholds given; judging with the default http_req_failed: rate<0.01');
  let run;
  try {
    run = await startAgents({
      cluster: target,
      agents,
      url,
      executor: options.executor,
      scenario: scenarioPath,
      env,
      thresholds: options.thresholds,
      timeout: options.timeout,
      connections: options.connections,
      maxRequests: options.maxRequests,
      minRequests: options.minRequests,
      maxScheduleDelay: options.maxScheduleDelay,
      identityHeaders: options.identityHeaders,
      namespace: flags.namespace,
      startDelayMs,
      onProgress: shell.say,
      signal: shell.signal,
    });
  } catch (err) {
    if (err instanceof TargetNotAllowedError || err instanceof ThresholdSyntaxError || err instanceof RangeError)
      throw new UsageError((err as Error).message);
    throw err;
  }
  shell.leaves(
    `the Job ${run.namespace}/${run.job}, which ends by its own deadline (or: kubectl delete job -n ${run.namespace} ${run.job})`,
  );
  const result = await run.result;
  process.stdout.write(summaryTable(result) + '\n');
  process.stdout.write(`\n  agents      ${result.agents.map(agentLine).join('\n              ')}\n`);
  if (flags.out) shell.say(`results in ${await writeAgentResults(flags.out, result, flags.ndjson ?? false)}`);
  return exitCodeOf(result.assessment.verdict);
}

/** `--agents`' own flags, checked before any cluster is touched. */
async function agentUsage(
  flags: LoadCommandFlags,
): Promise<{ agents: number; startDelayMs: number; env: Record<string, string> }> {
  const { specTarget } = await import('../../cluster/target.ts');
  const { parseDuration } = await import('../../lib/load/units.ts');
  const agents = Number(flags.agents);
  if (!Number.isInteger(agents) || agents < 1 || agents > 100)
    throw new UsageError(`--agents must be a whole number from 1 to 100, got "${flags.agents}"`);
  if (flags.bundle) throw new UsageError('--bundle writes an agent; --agents runs them: use one or the other');
  if (specTarget(flags.target ?? 'embedded').kind !== 'embedded')
    throw new UsageError(
      `--agents runs on --target embedded only for now (got "${flags.target}"): kind and existing clusters are not supported yet`,
    );
  if (flags.allowRemote) throw new UsageError("--agents loads only the cluster's own Services: --allow-remote does not apply");
  if (flags.ndjson && !flags.out) throw new UsageError('--ndjson writes into --out: give --out <dir> as well');
  let startDelayMs: number;
  try {
    startDelayMs = parseDuration(flags.startDelay ?? '10s');
  } catch (err) {
    throw new UsageError(`--start-delay: ${(err as Error).message}`);
  }
  const env: Record<string, string> = {};
  for (const name of flags.agentEnv ?? []) {
    const value = process.env[name];
    if (value === undefined) throw new UsageError(`--agent-env ${name}: ${name} is not set in this environment`);
    env[name] = value;
  }
  return { agents, startDelayMs, env };
}

/** The cluster `verdict cluster up` runs, attached to through the embedded strategy (not made, and left running). */
async function attachedCluster(flags: LoadCommandFlags) {
  const { openTarget, TargetUnavailableError } = await import('../../cluster/target.ts');
  const { TARGET_STRATEGIES } = await import('../../cluster/strategies.ts');
  try {
    return await openTarget('embedded', TARGET_STRATEGIES, { attach: true, name: flags.name, stateDir: flags.stateDir });
  } catch (err) {
    if (err instanceof TargetUnavailableError)
      throw new UsageError(`--agents runs the agents on a running embedded cluster: ${err.message}`);
    throw err;
  }
}

/** The URL as the agents' pods reach it: a loopback URL is the Service's NodePort, at the pod network's gateway. */
async function agentsUrl(given: string, podReach: PodReach | undefined, say: (m: string) => void): Promise<string> {
  const { isLoopback } = await import('../../lib/load/target-guard.ts');
  if (!podReach) throw new UsageError('--agents: the target gives its pods no way back to this machine');
  const url = new URL(given);
  if (isLoopback(url.hostname.replace(/^\[|\]$/g, ''))) {
    url.hostname = new URL(podReach.serviceUrl(Number(url.port || 80))).hostname;
    say(`the agents reach ${given} at ${url.href} (the node port on the pod network's gateway)`);
  }
  return url.href;
}

function agentLine(a: DistributedLoadResult['agents'][number]): string {
  const what = a.reported
    ? `${a.rows.toLocaleString('en-US')} requests${a.problem ? `, ${a.problem}` : ''}`
    : `lost, ${a.problem}`;
  return `${a.index}${a.pod ? ` (${a.pod})` : ''}: ${what}`;
}

/** load-summary.json (and requests.ndjson) of the merged run in `dir`; returns what was written, in words. */
async function writeAgentResults(dir: string, result: DistributedLoadResult, ndjson: boolean): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'load-summary.json');
  const { summary, thresholds, assessment, agents } = result;
  await writeFile(file, JSON.stringify({ summary, thresholds, assessment, agents }, null, 2) + '\n');
  if (!ndjson) return file;
  const out = await open(join(dir, 'requests.ndjson'), 'w');
  try {
    let batch = '';
    for (let r = 0; r < result.ledger.length; r++) {
      batch += result.ledger.toNdjsonLine(r) + '\n';
      if (batch.length >= 1 << 16) {
        await out.write(batch);
        batch = '';
      }
    }
    if (batch) await out.write(batch);
  } finally {
    await out.close();
  }
  return `${file} and ${join(dir, 'requests.ndjson')}`;
}

/** The load options of the flags; a flag the load engine rejects is bad usage (exit 64). */
async function usageFromFlags(flags: LoadFlags) {
  const { loadOptionsFromFlags, LoadUsageError } = await import('../../lib/load/run-options.ts');
  try {
    return await loadOptionsFromFlags(flags);
  } catch (err) {
    if (err instanceof LoadUsageError) throw new UsageError(err.message);
    throw err;
  }
}
