/**
 * The run record of a suite command (`smoke`, `probes`): the same `verdict/v1` record every verdict
 * command writes, with the target a plain URL (or the cluster the checks ran on) and one
 * CheckRecord per suite.
 */
import { hostname } from 'node:os';
import { worst, type Verdict } from '../lib/verdict.ts';
import { RUN_RECORD_SCHEMA, type AppRecord, type CheckRecord, type RunRecord, type TargetRecord } from '../reports/run-record.ts';

const HARNESS_VERSION = '0.1.0';

/** A service known only by its URL. */
export function urlTarget(url: string): TargetRecord {
  return { kind: 'url', name: new URL(url).host, context: null, serverVersion: null, url, endpointLagMs: null };
}

export interface SuiteRunRecordInput {
  command: string;
  target: TargetRecord;
  app: AppRecord | null;
  checks: CheckRecord[];
  startedAt: number;
  endedAt: number;
  /** The run broke (or was interrupted) outside or across the checks. */
  error?: string | null;
}

export function suiteRunRecord(i: SuiteRunRecordInput): RunRecord {
  const error = i.error ?? null;
  const verdict: Verdict = error ? 'ERROR' : worst(i.checks.map((c) => c.verdict));
  return {
    schema: RUN_RECORD_SCHEMA, command: i.command, verdict, headline: headline(verdict, i.checks, error, i.target.url),
    startedAt: new Date(i.startedAt).toISOString(), endedAt: new Date(i.endedAt).toISOString(), durationMs: Math.max(0, i.endedAt - i.startedAt),
    target: i.target, app: i.app, harness: { version: HARNESS_VERSION, node: process.version, host: hostname() },
    checks: i.checks, error, files: { ledger: null },
  };
}

function headline(verdict: Verdict, checks: CheckRecord[], error: string | null, url: string | null): string {
  if (error) return `ERROR: ${error}`;
  const gates = checks.flatMap((c) => c.gates.map((g) => ({ check: c.name, ...g })));
  if (!gates.length) return `${verdict}: nothing was checked`;
  const bad = gates.filter((g) => g.verdict !== 'PASS');
  const where = url ? ` against ${url}` : '';
  if (!bad.length) return `${verdict}: all ${gates.length} checks passed${where}`;
  const names = bad.slice(0, 6).map((g) => `${g.check}/${g.name} ${g.verdict}`).join(', ');
  return `${verdict}: ${bad.length} of ${gates.length} checks did not pass${where} (${names}${bad.length > 6 ? ', …' : ''})`;
}
