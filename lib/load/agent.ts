/**
 * The load agent: the entry point of the single-file bundle (see bundle.ts) that runs the engine with
 * plain `node`, e.g. inside a cluster. Same flags as `verdict load` (plus --harness-network for the
 * pod network the harness created); the scenario is compiled in. Prints progress and the summary
 * table on stderr and the JSON result on stdout; exits 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR,
 * 64 bad usage (the same codes as the verdict CLI).
 */
import { parseArgs } from 'node:util';
import { ExitCode, exitCodeOf } from '../verdict.ts';
import { startLoad, type LoadRun } from './engine.ts';
import { progressLine, summaryTable } from './report-text.ts';
import { loadOptionsFromFlags, LoadUsageError, type LoadFlags } from './run-options.ts';
import type { Scenario } from './scenario.ts';
import { TargetNotAllowedError } from './target-guard.ts';
import { ThresholdSyntaxError } from './thresholds.ts';

/** Mirrors cli/exit-codes.ts (the agent ships without the CLI). */
const EXIT = ExitCode;

const HELP = `usage: node load-agent.mjs --url URL (--rate 100/s | --vus N) --duration 30s [options]
options: --max-vus N --connections N --timeout 10s --max-requests N --min-requests N --max-schedule-delay 50ms
         --threshold "http_req_duration: p(99)<250" (repeatable) --config k6.json
         --ndjson FILE --allow-remote --remote-rate-cap N --harness-network CIDR (repeatable)
         --insecure --precision timer|spin --quiet
         --backend-header NAME --version-header NAME (response headers naming the pod and the app version)`;

export async function runAgent(scenario?: Scenario, argv: string[] = process.argv.slice(2)): Promise<number> {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' }, rate: { type: 'string' }, vus: { type: 'string' }, duration: { type: 'string' },
        'max-vus': { type: 'string' }, connections: { type: 'string' }, timeout: { type: 'string' },
        'max-requests': { type: 'string' }, 'min-requests': { type: 'string' }, 'max-schedule-delay': { type: 'string' }, threshold: { type: 'string', multiple: true },
        config: { type: 'string' }, ndjson: { type: 'string' }, 'allow-remote': { type: 'boolean' },
        'remote-rate-cap': { type: 'string' }, 'harness-network': { type: 'string', multiple: true },
        insecure: { type: 'boolean' }, precision: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean' },
        'backend-header': { type: 'string' }, 'version-header': { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`load-agent: ${(err as Error).message}\n${HELP}\n`);
    return EXIT.USAGE;
  }
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return EXIT.PASS;
  }
  const flags: LoadFlags = {
    url: values.url as string, rate: values.rate as string, vus: values.vus as string, duration: values.duration as string,
    maxVus: values['max-vus'] as string, connections: values.connections as string, timeout: values.timeout as string,
    maxRequests: values['max-requests'] as string, minRequests: values['min-requests'] as string,
    maxScheduleDelay: values['max-schedule-delay'] as string,
    threshold: values.threshold as string[], config: values.config as string, allowRemote: values['allow-remote'] as boolean,
    remoteRateCap: values['remote-rate-cap'] as string, harnessNetwork: values['harness-network'] as string[],
    insecure: values.insecure as boolean, precision: values.precision as string,
    backendHeader: values['backend-header'] as string, versionHeader: values['version-header'] as string,
  };
  const quiet = Boolean(values.quiet);
  let run: LoadRun;
  try {
    const { options } = await loadOptionsFromFlags(flags, { scenario });
    if (values.ndjson) options.ndjson = values.ndjson as string;
    options.progressIntervalMs = 5000;
    options.onProgress = (p) => {
      if (!quiet && p.phase !== 'done') process.stderr.write(`load-agent: ${progressLine(p, run?.plan.durationMs ?? 0)}\n`);
    };
    run = await startLoad(options);
  } catch (err) {
    if (err instanceof LoadUsageError || err instanceof TargetNotAllowedError || err instanceof ThresholdSyntaxError || err instanceof RangeError) {
      process.stderr.write(`load-agent: ${(err as Error).message}\n`);
      return EXIT.USAGE;
    }
    process.stderr.write(`load-agent: ${(err as Error)?.stack ?? err}\n`);
    return EXIT.ERROR;
  }
  const stop = (sig: string) => run.abort(`interrupted by ${sig}`);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const result = await run.result;
    if (!quiet) process.stderr.write(summaryTable(result) + '\n');
    process.stdout.write(JSON.stringify({ summary: result.summary, thresholds: result.thresholds, assessment: result.assessment }) + '\n');
    return exitCodeOf(result.assessment.verdict);
  } catch (err) {
    process.stderr.write(`load-agent: ${(err as Error)?.stack ?? err}\n`);
    return EXIT.ERROR;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
