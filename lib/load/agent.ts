/**
 * The load agent: the entry point of the single-file bundle (see bundle.ts) that runs the engine with
 * plain `node`, e.g. inside a cluster. Same flags as `verdict load` (plus --harness-network for the
 * pod network the harness created); the scenario is compiled in. Prints progress and the summary
 * table on stderr and the JSON result on stdout; exits 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR,
 * 64 bad usage (the same codes as the verdict CLI).
 *
 * As one of N agents of a distributed run (lib/load/distributed): `--agents N` and its index
 * (`--agent-index`, default $JOB_COMPLETION_INDEX, which a Kubernetes Indexed Job sets) give it its
 * share of the load (distributed/share.ts), `--start-at` the shared instant to start at, and `--report-to`
 * the collector it sends its ledger and summary to ($VERDICT_REPORT_TOKEN authenticates it), and
 * `--progress-to` where it posts its successful answers per version every second while it runs (the
 * answer may tell it to stop: it then stops gracefully, as `LoadRun.stop()`, and reports). Then
 * the run is judged by the harness on the merged ledgers: the agent exits 0 once its report is
 * accepted, 3 when it could not deliver it.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { ExitCode, exitCodeOf } from '../verdict.ts';
import { agentShare, sharePools } from './distributed/share.ts';
import { REPORT_TYPE, REPORT_VERSION, sendReport } from './distributed/report.ts';
import { startLoad, type LoadRun } from './engine.ts';
import { progressLine, summaryTable } from './report-text.ts';
import { loadOptionsFromFlags, LoadUsageError, type LoadFlags } from './run-options.ts';
import type { Scenario } from './scenario.ts';
import { VersionAnswers } from './version-answers.ts';
import { TargetNotAllowedError } from './target-guard.ts';
import { ThresholdSyntaxError } from './thresholds.ts';

/** Mirrors cli/exit-codes.ts (the agent ships without the CLI). */
const EXIT = ExitCode;

const HELP = `usage: node load-agent.mjs --url URL (--rate 100/s | --vus N) --duration 30s [options]
options: --max-vus N --connections N --timeout 10s --max-requests N --min-requests N --max-schedule-delay 50ms
         --threshold "http_req_duration: p(99)<250" (repeatable) --config k6.json
         --ndjson FILE --allow-remote --remote-rate-cap N --harness-network CIDR (repeatable)
         --insecure --precision timer|spin --quiet
         --backend-header NAME --version-header NAME (response headers naming the pod and the app version)
distributed: --agents N --agent-index K (default $JOB_COMPLETION_INDEX) --start-at EPOCH_MS
         --report-to URL (token in $VERDICT_REPORT_TOKEN) --progress-to URL --executor-json JSON --thresholds-json JSON`;

/** How often an agent posts its progress (and learns whether to stop). */
const PROGRESS_EVERY_MS = 1000;

export async function runAgent(scenario?: Scenario, argv: string[] = process.argv.slice(2)): Promise<number> {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        rate: { type: 'string' },
        vus: { type: 'string' },
        duration: { type: 'string' },
        'max-vus': { type: 'string' },
        connections: { type: 'string' },
        timeout: { type: 'string' },
        'max-requests': { type: 'string' },
        'min-requests': { type: 'string' },
        'max-schedule-delay': { type: 'string' },
        threshold: { type: 'string', multiple: true },
        config: { type: 'string' },
        ndjson: { type: 'string' },
        'allow-remote': { type: 'boolean' },
        'remote-rate-cap': { type: 'string' },
        'harness-network': { type: 'string', multiple: true },
        insecure: { type: 'boolean' },
        precision: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean' },
        'backend-header': { type: 'string' },
        'version-header': { type: 'string' },
        agents: { type: 'string' },
        'agent-index': { type: 'string' },
        'start-at': { type: 'string' },
        'report-to': { type: 'string' },
        'progress-to': { type: 'string' },
        'executor-json': { type: 'string' },
        'thresholds-json': { type: 'string' },
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
    url: values.url as string,
    rate: values.rate as string,
    vus: values.vus as string,
    duration: values.duration as string,
    maxVus: values['max-vus'] as string,
    connections: values.connections as string,
    timeout: values.timeout as string,
    maxRequests: values['max-requests'] as string,
    minRequests: values['min-requests'] as string,
    maxScheduleDelay: values['max-schedule-delay'] as string,
    threshold: values.threshold as string[],
    config: values.config as string,
    allowRemote: values['allow-remote'] as boolean,
    remoteRateCap: values['remote-rate-cap'] as string,
    harnessNetwork: values['harness-network'] as string[],
    insecure: values.insecure as boolean,
    precision: values.precision as string,
    backendHeader: values['backend-header'] as string,
    versionHeader: values['version-header'] as string,
  };
  const quiet = Boolean(values.quiet);
  const say = (m: string) => {
    if (!quiet) process.stderr.write(`load-agent: ${m}\n`);
  };
  const reportTo = values['report-to'] as string | undefined;
  const progressTo = values['progress-to'] as string | undefined;
  const token = process.env.VERDICT_REPORT_TOKEN ?? '';
  // A signal stops the run, also while it waits for its start instant; in-flight requests are
  // recorded as aborted and the agent still reports what it has.
  const interrupted = new AbortController();
  const stop = (sig: string) => interrupted.abort(`interrupted by ${sig}`);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let run: LoadRun;
  let agents = 1,
    index = 0,
    startAt: number | undefined;
  try {
    agents = wholeNumber('agents', values.agents as string | undefined, 1) ?? 1;
    index = wholeNumber('agent-index', (values['agent-index'] as string | undefined) ?? process.env.JOB_COMPLETION_INDEX, 0) ?? 0;
    const startFlag = values['start-at'] as string | undefined;
    if (startFlag !== undefined && !/^\d{10,16}$/.test(startFlag))
      throw new LoadUsageError(`--start-at must be an epoch time in milliseconds, got "${startFlag}"`);
    if ((reportTo || progressTo) && !token)
      throw new LoadUsageError("--report-to and --progress-to need the collector's token in $VERDICT_REPORT_TOKEN");
    const { options } = await loadOptionsFromFlags(flags, {
      scenario,
      executor: json('executor-json', values['executor-json']),
      thresholds: json('thresholds-json', values['thresholds-json']),
    });
    const share = agentShare(options.executor, agents, index, {
      connections: options.connections,
      maxRequests: options.maxRequests,
    });
    options.executor = share.executor;
    if (share.connections !== undefined) options.connections = share.connections;
    if (share.maxRequests !== undefined) options.maxRequests = share.maxRequests;
    if (agents > 1) options.iterationNumbers = { offset: index, stride: agents };
    if (agents > 1 && options.scenario?.pools)
      options.scenario = { ...options.scenario, pools: sharePools(options.scenario.pools, agents) };
    if (startFlag !== undefined) options.startAt = startAt = Number(startFlag) + share.offsetMs;
    if (values.ndjson) options.ndjson = values.ndjson as string;
    options.signal = interrupted.signal;
    options.progressIntervalMs = 5000;
    options.onProgress = (p) => {
      if (p.phase !== 'done') say(progressLine(p, run?.plan.durationMs ?? 0));
    };
    if (agents > 1) say(`agent ${index} of ${agents}${startAt ? `, starting at ${new Date(startAt).toISOString()}` : ''}`);
    run = await startLoad(options);
  } catch (err) {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (
      err instanceof LoadUsageError ||
      err instanceof TargetNotAllowedError ||
      err instanceof ThresholdSyntaxError ||
      err instanceof RangeError
    ) {
      process.stderr.write(`load-agent: ${(err as Error).message}\n`);
      return EXIT.USAGE;
    }
    process.stderr.write(`load-agent: ${(err as Error)?.stack ?? err}\n`);
    return EXIT.ERROR;
  }
  if (run.startLateMs > 1) say(`started ${run.startLateMs.toFixed(1)} ms after its start instant`);
  const posting = progressTo ? postProgress(run, `${progressTo.replace(/\/+$/, '')}/${index}`, token, say) : null;
  try {
    const result = await run.result;
    await posting;
    if (!quiet) process.stderr.write(summaryTable(result) + '\n');
    if (reportTo) {
      const url = `${reportTo.replace(/\/+$/, '')}/${index}`;
      const rows = result.ledger.length;
      await sendReport(
        url,
        token,
        {
          type: REPORT_TYPE,
          version: REPORT_VERSION,
          index,
          agents,
          host: hostname(),
          startAt: startAt ?? null,
          startLateMs: run.startLateMs,
          originEpochMs: result.ledger.origin.epochMs,
          rows,
          summary: result.summary,
          thresholds: result.thresholds,
          assessment: result.assessment,
        },
        result.ledger,
        { onRetry: (n, e) => say(`report attempt ${n} failed (${e}); retrying`) },
      );
      say(`report sent: ${rows} rows to ${url}`);
      // The harness judges the merged run; this agent's part is done.
      return EXIT.PASS;
    }
    process.stdout.write(
      JSON.stringify({ summary: result.summary, thresholds: result.thresholds, assessment: result.assessment }) + '\n',
    );
    return exitCodeOf(result.assessment.verdict);
  } catch (err) {
    process.stderr.write(`load-agent: ${(err as Error)?.stack ?? err}\n`);
    return EXIT.ERROR;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function wholeNumber(flag: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new LoadUsageError(`--${flag} must be a whole number >= ${min}, got "${v}"`);
  return n;
}

function json<T>(flag: string, v: unknown): T | undefined {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(typeof v === 'string' ? v : JSON.stringify(v)) as T;
  } catch (err) {
    throw new LoadUsageError(`--${flag} is not JSON: ${(err as Error).message}`);
  }
}

/**
 * Posts the run's successful answers per version every {@link PROGRESS_EVERY_MS} until it ends; when
 * the answer says stop, stops the run gracefully. Best effort: a post that fails is said once and
 * tried again at the next tick (the report at the end is what counts).
 */
async function postProgress(run: LoadRun, url: string, token: string, say: (m: string) => void): Promise<void> {
  const answers = new VersionAnswers(run.ledger);
  let ended = false;
  void run.result.then(
    () => {
      ended = true;
    },
    () => {
      ended = true;
    },
  );
  let failedOnce = false;
  let stopped = false;
  while (!ended) {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ answers: answers.all() }),
        signal: AbortSignal.timeout(PROGRESS_EVERY_MS * 2),
      });
      const body = res.ok ? ((await res.json()) as { stop?: string | null }) : null;
      if (!res.ok && !failedOnce) {
        failedOnce = true;
        say(`progress refused (HTTP ${res.status}); going on`);
      }
      if (body?.stop && !stopped) {
        stopped = true;
        say(`stopping: ${body.stop}`);
        run.stop(body.stop);
      }
    } catch (err) {
      if (!failedOnce) {
        failedOnce = true;
        say(`progress could not be posted (${(err as Error).message}); going on`);
      }
    }
    await Promise.race([run.result.catch(() => {}), new Promise((r) => setTimeout(r, PROGRESS_EVERY_MS))]);
  }
}
