import { Command, InvalidArgumentError } from 'commander';
import { licenseApi } from '../../apps/license-api/profile.ts';
import type { AppProfile } from '../../experiments/app-profile.ts';
import { parseBaseUrl } from '../../lib/checks/http.ts';
import { shortSecretWarning } from '../../lib/checks/redact.ts';
import { urlTarget, suiteRunRecord } from '../../suites/record.ts';
import { runSmoke } from '../../suites/smoke.ts';
import { openShell } from '../shell.ts';
import { UsageError } from '../exit-codes.ts';

interface SmokeFlags {
  url?: string;
  token?: string;
  readOnly: boolean;
  expectVersion?: string;
  retries: number;
  latencyBudget?: number;
  out: string;
  json: boolean;
}

const wholeNumber = (min: number, max: number, what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new InvalidArgumentError(`must be a whole number of ${what} from ${min} to ${max}`);
  return n;
};

export interface SmokeCommandOptions {
  url: string;
  token: string | null;
  readOnly: boolean;
  expectVersion?: string;
  retries: number;
  budgetMs?: number;
  out: string;
  json: boolean;
}

/** Validates, runs the smoke suite, writes the run directory, prints; resolves with the exit code. */
export async function runSmokeCommand(o: SmokeCommandOptions, app: AppProfile = licenseApi): Promise<number> {
  if (!app.smoke) throw new UsageError(`the ${app.name} profile has no smoke suite`);
  let url: string;
  try {
    url = parseBaseUrl(o.url).toString().replace(/\/$/, '');
  } catch (err) {
    throw new UsageError(`--url: ${(err as Error).message}`);
  }
  if (!o.token && !o.readOnly) {
    throw new UsageError(
      `smoke needs a token for the license endpoints: pass --token <jwt> or set ${app.smoke.tokenEnv.join(' or ')} (or run --read-only, which needs none)`,
    );
  }
  if (o.expectVersion !== undefined && !/^[\x21-\x7e]{1,128}$/.test(o.expectVersion))
    throw new UsageError('--expect-version must be a version string without spaces, e.g. v1.0.42-abc1234');
  const secrets = o.token ? [o.token] : [];
  using shell = openShell({ stopping: 'stopping; cleaning up what the run created first', secrets });
  const { say, started } = shell;
  const short = shortSecretWarning(secrets);
  if (short) say(`warning: ${short}`);
  if (!o.readOnly) shell.leaves(`what the smoke wrote and had not undone yet (at most ${app.smoke.writesAtMost})`);
  say(`smoke ${url}${o.readOnly ? ' (read-only)' : ''}${o.expectVersion ? `, expecting version ${o.expectVersion}` : ''}`);
  const { run, record } = await runSmoke({
    app,
    url,
    token: o.token,
    expectVersion: o.expectVersion,
    readOnly: o.readOnly,
    retries: o.retries,
    budgetMs: o.budgetMs,
    signal: shell.signal,
    say,
  });
  const rec = suiteRunRecord({
    command: 'smoke',
    target: urlTarget(url),
    checks: [record],
    startedAt: started,
    endedAt: Date.now(),
    error: run.error,
    app: { name: app.name, versions: o.expectVersion ? { expected: o.expectVersion } : {}, faults: [] },
  });
  return await shell.finish(rec, { out: o.out, json: o.json });
}

/** `verdict smoke --url URL`: the app's smoke suite against any environment, production included. */
export function smokeCommand(app: AppProfile = licenseApi): Command {
  const tokenEnv = app.smoke?.tokenEnv ?? [];
  return new Command('smoke')
    .description(
      'smoke-test a running service at any URL (safe against production): health, metrics, auth, one seat acquired and released',
    )
    .option('--url <url>', 'base URL of the service, e.g. https://api.example.com or http://127.0.0.1:30080 (required)')
    .option(
      '--token <jwt>',
      `bearer token for the license endpoints (default: $${tokenEnv.join(', then $')}, which other users cannot see in ps); never printed or written`,
    )
    .option('--read-only', 'only the checks that write nothing (no token needed)', false)
    .option('--expect-version <version>', 'every answer must carry this X-App-Version')
    .option(
      '--retries <n>',
      're-run a check that did not pass up to n more times (reported as retried)',
      wholeNumber(0, 5, 'retries'),
      0,
    )
    .option(
      '--latency-budget <ms>',
      'every request of every check must be answered within this many ms (default: per check, 1000-2000)',
      wholeNumber(50, 60_000, 'ms'),
    )
    .option('--out <dir>', 'where the run directory goes', '.reports/smoke')
    .option('--json', 'print verdict.json to stdout instead of the summary', false)
    .addHelpText(
      'after',
      `
Checks, in order: ready (GET /health/ready answers ready), metrics (GET /metrics parses as Prometheus
exposition and has the http_requests_total counter), no-token and bad-token (the license endpoints
answer 401 with the documented error body), heartbeat-unknown (the token is accepted; an unknown
session answers 404 SESSION_NOT_FOUND), acquire, heartbeat, release (one seat, released, then 410),
version (every answer carries X-App-Version, equal to --expect-version when given). Each request
must be answered within its check's latency budget.

Safe against production: it sends about 15 requests, one at a time, and never a load. --read-only
writes nothing (GETs, unauthenticated requests, a heartbeat of a session id that does not exist).
A write run acquires at most ${app.smoke?.writesAtMost ?? 'what its checks say'}.
The token is redacted from every output, report and log line.

No retries by default; with --retries each retried check says so ("passed on retry 1").
An unreachable URL is ERROR (exit 3) naming the URL and the connection error, never PASS.

Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR (unreachable, interrupted), 64 bad usage.

Examples:
  TEST_TOKEN=$(npx verdict token --sub smoke) npx verdict smoke --url http://127.0.0.1:30080
  npx verdict smoke --url https://api.example.com --read-only --expect-version v1.0.42-abc1234`,
    )
    .action(async (f: SmokeFlags) => {
      if (!f.url) throw new UsageError('--url is required: the base URL of the service, e.g. --url http://127.0.0.1:30080');
      const token = f.token ?? tokenEnv.map((k) => process.env[k]).find((v) => v) ?? null;
      process.exitCode = await runSmokeCommand(
        {
          url: f.url,
          token,
          readOnly: f.readOnly,
          expectVersion: f.expectVersion,
          retries: f.retries,
          budgetMs: f.latencyBudget,
          out: f.out,
          json: f.json,
        },
        app,
      );
    });
}
