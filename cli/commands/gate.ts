import { Command, InvalidArgumentError, Option } from 'commander';
import { licenseApi } from '../../apps/license-api/profile.ts';
import { TARGET_STRATEGIES } from '../../cluster/strategies.ts';
import { openTarget, parseTargetSpec, type TargetSpec } from '../../cluster/target.ts';
import type { AppProfile } from '../../experiments/app-profile.ts';
import { describeTarget } from '../../experiments/record.ts';
import { runGate } from '../../gate/post-deploy-gate.ts';
import { GATE_DEFAULTS, gateHeadline, tokenLifetimeWarning } from '../../gate/rollback.ts';
import { parseBaseUrl } from '../../lib/checks/http.ts';
import { shortSecretWarning } from '../../lib/checks/redact.ts';
import { parseDuration } from '../../lib/load/units.ts';
import { flagName, METRIC_SOURCES, SourceUsageError, type MetricSource } from '../../lib/metrics/index.ts';
import { suiteRunRecord } from '../../suites/record.ts';
import type { ApprovalRecord, RunRecord, TargetRecord } from '../../reports/run-record.ts';
import { openShell } from '../shell.ts';
import { UsageError } from '../exit-codes.ts';
import { checkDeployWindowOrRefuse, windowOptions, type WindowFlags } from '../deploy-window.ts';

/** `client` (the gate's own load, always measured) and every source built from flags. */
const SOURCES = ['client', ...METRIC_SOURCES.map((p) => p.name)];
const duration = (what: string, maxMs: number) => (v: string) => {
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  if (!(ms > 0) || ms > maxMs)
    throw new InvalidArgumentError(`${what} must be above 0 and at most ${maxMs / 60_000} min, e.g. 10m or 30s`);
  return ms;
};
const number = (what: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${what} must be a number from ${min} to ${max}`);
  return n;
};
const collect = (v: string, prev: string[]) => [...prev, v];

interface GateFlags extends WindowFlags {
  context?: string;
  kubeconfig?: string;
  deployment?: string;
  url?: string;
  expectVersion?: string;
  token?: string;
  source: string[];
  window: number;
  lookEvery: number;
  rate: number;
  maxErrorRate: number;
  minRequests: number;
  p99?: number;
  onInconclusive: 'rollback' | 'hold';
  rollback: boolean;
  timeout: number;
  sourceDelay: number;
  out: string;
  json: boolean;
}

/** The sources `--source` names, each built by its provider from its flags' values (bad usage: UsageError). */
function sourcesOf(wanted: string[], values: Record<string, unknown>): MetricSource[] {
  const names = new Set(wanted.length ? wanted : ['client']);
  for (const s of names) if (!SOURCES.includes(s)) throw new UsageError(`unknown --source "${s}": use ${SOURCES.join(', ')}`);
  const out: MetricSource[] = [];
  for (const p of METRIC_SOURCES.filter((x) => names.has(x.name))) {
    const flags: Record<string, string | undefined> = {};
    for (const f of p.flags) flags[flagName(f)] = values[new Option(f.flag).attributeName()] as string | undefined;
    try {
      out.push(p.create(flags));
    } catch (err) {
      if (err instanceof SourceUsageError) throw new UsageError(err.message);
      throw err;
    }
  }
  return out;
}

/** `verdict gate`: after a deploy, decide on evidence, roll back on anything but PASS, and prove the rollback. */
export function gateCommand(app: AppProfile = licenseApi): Command {
  const cmd = new Command('gate').description(
    'post-deploy gate: wait for the rollout, smoke it, judge a window of client and server metrics, roll back and verify the rollback unless PASS',
  );
  return judgementOptions(sourceOptions(releaseOptions(cmd)))
    .addOption(windowOptions.environment())
    .addOption(windowOptions.overrideWindow())
    .addOption(windowOptions.config())
    .option('--out <dir>', 'where the run directory goes', '.reports/gate')
    .option('--json', 'print verdict.json to stdout instead of the summary', false)
    .addHelpText('after', GATE_HELP)
    .action((f: GateFlags) => runGateCommand(f, app));
}

/** Where the release went and how to reach it. */
function releaseOptions(cmd: Command): Command {
  return cmd
    .option('--context <name>', 'kubeconfig context of the cluster (required)')
    .option('--kubeconfig <path>', 'kubeconfig file (default $KUBECONFIG, ~/.kube/config)')
    .option('--deployment <ns/name>', 'the Deployment just deployed, e.g. coditect/license-api (required)')
    .option('--url <url>', "the Service's URL from here, e.g. https://api.example.com (required)")
    .option(
      '--expect-version <v>',
      "the version the new release must report (default: its pod template's app.kubernetes.io/version)",
    )
    .option('--token <jwt>', 'bearer token for the smoke and the load (default $TEST_TOKEN, then $LICENSE_TOKEN); never printed');
}

/** `--source`, and one option for each distinct flag of the metric sources (lib/metrics/providers.ts), its help naming the sources that read it. */
function sourceOptions(cmd: Command): Command {
  cmd.option(
    '--source <name>',
    `metric source, repeatable: ${SOURCES.join(', ')} (client, the gate's own load, is always used)`,
    collect,
    [],
  );
  const byFlag = new Map<string, { description: string; sources: string[] }>();
  for (const p of METRIC_SOURCES)
    for (const f of p.flags) {
      const o = byFlag.get(f.flag) ?? { description: f.description, sources: [] };
      o.sources.push(p.name);
      byFlag.set(f.flag, o);
    }
  for (const [flag, o] of byFlag) cmd.addOption(new Option(flag, `${o.sources.join(', ')}: ${o.description}`));
  return cmd;
}

/** The window, what PASSes in it, and what happens otherwise. */
function judgementOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--window <duration>', 'the judged window: the light load runs this long')
        .argParser(duration('--window', 60 * 60_000))
        .default(GATE_DEFAULTS.windowMs, '10m'),
    )
    .addOption(
      new Option(
        '--look-every <duration>',
        "judge the gate's own requests this often during the window and stop it early on a clear FAIL (a sequential test valid under repeated looks); a PASS still needs the whole window; 0: judge once, at the end",
      )
        .argParser((v) => (v === '0' ? 0 : duration('--look-every', 60 * 60_000)(v)))
        .default(60_000, '1m'),
    )
    .addOption(
      new Option('--rate <req/s>', "the light load's rate (capped at 10 off loopback)")
        .argParser(number('--rate', 0.1, 1000))
        .default(5),
    )
    .addOption(
      new Option('--max-error-rate <fraction>', 'highest error rate that can PASS (the seed: 0.01)')
        .argParser(number('--max-error-rate', 0, 1))
        .default(0.01),
    )
    .addOption(
      new Option('--min-requests <n>', 'fewer requests in the window is INCONCLUSIVE')
        .argParser(number('--min-requests', 1, 10_000_000))
        .default(300),
    )
    .addOption(new Option('--p99 <ms>', 'p99 latency objective').argParser(number('--p99', 1, 600_000)))
    .addOption(
      new Option('--on-inconclusive <what>', 'INCONCLUSIVE rolls back (fail-closed) or holds for a person')
        .choices(['rollback', 'hold'])
        .default('rollback'),
    )
    .option('--no-rollback', 'decide and report what would be done, change nothing')
    .addOption(
      new Option(
        '--timeout <duration>',
        "bound on waiting for the rollout (and the rollback); the Deployment's progress deadline may end it sooner",
      )
        .argParser(duration('--timeout', 60 * 60_000))
        .default(GATE_DEFAULTS.timeoutMs, '10m'),
    )
    .addOption(
      new Option('--source-delay <duration>', 'wait after the window before asking server sources (two scrape intervals)')
        .argParser(duration('--source-delay', 10 * 60_000))
        .default(GATE_DEFAULTS.sourceDelayMs, '30s'),
    );
}

const GATE_HELP = `
Steps: 1. rollout status (crash-looping or never-ready: FAIL at once, with restarts, last state, events);
2. the smoke suite; 3. a light bounded load for --window while the sources are read; 4. the decision,
fail-closed (a source that errs or has no data is never PASS); 5. on FAIL or ERROR (and INCONCLUSIVE
unless --on-inconclusive hold) kubectl rollout undo, wait for it, read-only smoke against it.
The run's verdict is the release's; a rollback that itself failed makes it ERROR, and so does one
that worked but could not be verified because the token expired ("rollback done, verification
could not run: token expired"). A token (JWT) that expires before the run can end is warned about
at the start.

Deploy windows: the gate promotes a release, so outside the environment's window (deployWindows in
verdict.config.yaml; --environment, else matched by --context) it refuses at once with exit 64 and the
next allowed time, before contacting the cluster. --override-window "<reason>" proceeds and records who
and why in verdict.json. A rollback is never refused.

Exit codes: 0 PASS (promote), 1 FAIL, 2 INCONCLUSIVE, 3 ERROR, 64 bad usage.
Example:
  TEST_TOKEN=... npx verdict gate --context gke_acme_us-central1_prod --deployment coditect/license-api \\
    --url https://api.example.com --expect-version v1.0.42-abc1234 --source client --source gmp --project acme`;

/** What a gate run needs from its flags, each mistake a UsageError before anything is contacted. */
function gateUsage(f: GateFlags): {
  context: string;
  deployment: string;
  spec: TargetSpec;
  url: string;
  namespace: string;
  name: string;
} {
  if (!f.context) throw new UsageError('give --context (the kubeconfig context of the cluster the release went to)');
  if (!f.deployment || !/^[a-z0-9-]{1,63}\/[a-z0-9.-]{1,253}$/.test(f.deployment))
    throw new UsageError('give --deployment as namespace/name, e.g. coditect/license-api');
  if (!f.url) throw new UsageError("give --url, the Service's URL from here");
  let spec: TargetSpec;
  try {
    spec = parseTargetSpec(`context:${f.context}`);
  } catch (err) {
    throw new UsageError(`--context: ${(err as Error).message}`);
  }
  let url: string;
  try {
    url = parseBaseUrl(f.url).toString().replace(/\/$/, '');
  } catch (err) {
    throw new UsageError(`--url: ${(err as Error).message}`);
  }
  const [namespace, name] = f.deployment.split('/');
  return { context: f.context, deployment: f.deployment, spec, url, namespace, name };
}

async function runGateCommand(f: GateFlags, app: AppProfile): Promise<void> {
  const { context, deployment, spec, url, namespace, name } = gateUsage(f);
  // Before the cluster or a metric source is contacted: a closed deploy window refuses (exit 64) unless overridden.
  const window = await checkDeployWindowOrRefuse('gate', f, { context });
  const sources = sourcesOf(f.source, f as unknown as Record<string, unknown>);
  const token = f.token ?? process.env.TEST_TOKEN ?? process.env.LICENSE_TOKEN ?? null;
  const secrets = token ? [token] : [];
  using shell = openShell({ stopping: 'stopping; cleaning up what the run created first', secrets });
  const { say, started } = shell;
  const short = shortSecretWarning(secrets);
  if (short) say(`warning: ${short}`);
  const lifetime = tokenLifetimeWarning(token, {
    now: started,
    timeoutMs: f.timeout,
    windowMs: f.window,
    sourceDelayMs: f.sourceDelay,
  });
  if (lifetime) say(`warning: ${lifetime}`);
  shell.leaves(
    `a rollout or rollback of ${deployment} half done and unverified: see verdict history --context ${context} --deployment ${deployment}`,
  );
  if (token && !process.env.LICENSE_TOKEN) process.env.LICENSE_TOKEN = token; // the app's load uses it
  let error: string | null = null;
  let result: GateResult | undefined;
  let targetRecord = {
    kind: 'existing' as const,
    name: context,
    context,
    serverVersion: null,
    url,
    endpointLagMs: null,
  };
  try {
    const target = await openTarget(spec, TARGET_STRATEGIES, { kubeconfig: f.kubeconfig, serviceUrl: url });
    targetRecord = (await describeTarget(target, url)) as typeof targetRecord;
    result = await runGate({
      target,
      app,
      namespace,
      deployment: name,
      url,
      token,
      expectVersion: f.expectVersion,
      sources,
      windowMs: f.window,
      lookEveryMs: f.lookEvery,
      rate: f.rate,
      maxErrorRate: f.maxErrorRate,
      minRequests: f.minRequests,
      p99Ms: f.p99,
      onInconclusive: f.onInconclusive,
      rollback: f.rollback,
      timeoutMs: f.timeout,
      sourceDelayMs: f.sourceDelay,
      signal: shell.signal,
      say,
    });
  } catch (err) {
    error = shell.errorOf(err);
  } finally {
    await Promise.allSettled(sources.map((s) => s.close()));
  }
  const { record, lines } = gateRecord(app, { target: targetRecord, started, error, result, approval: window.approval });
  process.exitCode = await shell.finish(record, { out: f.out, json: f.json, ledger: lines });
}

type GateResult = Awaited<ReturnType<typeof runGate>>;

/** The gate's run record (its approval and headline) and its ledger's lines, from what the run found. */
function gateRecord(
  app: AppProfile,
  r: { target: TargetRecord; started: number; error: string | null; result?: GateResult; approval: ApprovalRecord | null },
): { record: RunRecord; lines: Iterable<string> | null } {
  const record = suiteRunRecord({
    command: 'gate',
    target: r.target,
    checks: r.result?.checks ?? [],
    startedAt: r.started,
    endedAt: Date.now(),
    error: r.error,
    app: {
      name: app.name,
      versions: {
        ...(r.result?.versions.candidate ? { candidate: r.result.versions.candidate } : {}),
        ...(r.result?.versions.baseline ? { baseline: r.result.versions.baseline } : {}),
      },
      faults: [],
    },
  });
  if (r.approval) record.approvals = [r.approval];
  if (r.result) record.headline = gateHeadline(record.verdict, r.result);
  const lines = r.result?.ledger
    ? (function* (l) {
        for (let r = 0; r < l.length; r++) yield `{"check":"metrics",${l.toNdjsonLine(r).slice(1)}`;
      })(r.result.ledger)
    : null;
  if (lines) record.files = { ledger: 'ledger.ndjson.gz' };
  return { record, lines };
}
