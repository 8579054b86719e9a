/**
 * The smoke suite of an app against a URL: the app profile's checks run by the suite runner, as one
 * CheckRecord (kind `suite`, one gate per check plus `cleanup`). `verdict smoke` calls it, and so
 * can a gate command that needs the smoke's verdict inside its own run.
 */
import { randomBytes } from 'node:crypto';
import type { AppProfile } from '../experiments/app-profile.ts';
import type { CheckRecord } from '../reports/run-record.ts';
import { runSuite, type SuiteRun } from '../lib/checks/suite.ts';
import { suiteCheckRecord } from './record.ts';

export interface SmokeRunOptions {
  app: AppProfile;
  url: string;
  /** null: only the checks that need no token run. */
  token: string | null;
  expectVersion?: string;
  readOnly?: boolean;
  retries?: number;
  /** Overrides every check's latency budget, ms. */
  budgetMs?: number;
  signal?: AbortSignal;
  say?: (line: string) => void;
  /** Names what this run creates (default: 6 random hex characters). */
  runId?: string;
}

export interface SmokeResult {
  run: SuiteRun;
  /** The suite as it goes into a run record (token redacted). */
  record: CheckRecord;
}

export async function runSmoke(o: SmokeRunOptions): Promise<SmokeResult> {
  const smoke = o.app.smoke;
  if (!smoke) throw new Error(`the ${o.app.name} profile has no smoke suite`);
  const runId = o.runId ?? randomBytes(3).toString('hex');
  const readOnly = o.readOnly ?? false;
  const checks = smoke.checks({
    url: o.url,
    token: o.token,
    expectVersion: o.expectVersion,
    readOnly,
    runId,
    budgetMs: o.budgetMs,
  });
  const run = await runSuite({
    name: 'smoke',
    url: o.url,
    checks,
    readOnly,
    retries: o.retries ?? 0,
    signal: o.signal,
    say: o.say,
    secrets: o.token ? [o.token] : [],
    recordHeaders: [o.app.identityHeaders.version, o.app.identityHeaders.backend],
    versionHeader: o.app.identityHeaders.version,
    description: `${o.app.name} smoke against ${o.url}${readOnly ? ' (read-only)' : ''}: ${checks.filter((c) => !c.skip && !(readOnly && c.writes)).length} checks, each request within its latency budget${o.retries ? `, up to ${o.retries} retries each (reported)` : ', no retries'}.`,
  });
  return { run, record: suiteCheckRecord(run, 'suite') };
}
