/**
 * Notifications of a verdict: `slack:<ENV>` (a Slack incoming webhook, Block Kit) and `webhook:<ENV>`
 * (any HTTP endpoint, JSON), the URL read from the environment variable named, never from a flag, so
 * it stays out of `ps`, shell history and logs. One POST per verdict and target, bounded in time.
 *
 * The generic webhook's body (`verdict/notification-v1`):
 *
 *   { "schema": "verdict/notification-v1",
 *     "summary": <Notification: verdict, headline, target, releases, failedGates, causes,
 *                 requests, rollback, approvals, reportUrl, ...> (message.ts),
 *     "record":  <the verdict/v1 record, still valid against reports/schema/verdict-v1.schema.json,
 *                 with the per-second series, the timelines and the failure examples emptied:
 *                 they are in the run directory, at reportUrl> }
 *
 * Never a secret: the whole body goes through the project's redaction (lib/checks/suite.ts) with
 * every notify URL, the license token and JWT secret, and the value of every environment variable
 * whose name says token, secret, password, webhook or key. A receiver that is down, slow (past the
 * timeout) or answers an error is reported to the caller: it never changes the verdict or the exit code.
 */
import { redactDeep, redactor } from '../../lib/checks/suite.ts';
import type { RunRecord } from '../run-record.ts';
import { notificationOf, type Notification } from './message.ts';
import { blockKitProblems, slackMessage } from './slack.ts';

export const NOTIFY_KINDS = ['slack', 'webhook'] as const;
export type NotifyKind = (typeof NOTIFY_KINDS)[number];

export interface NotifyTarget {
  kind: NotifyKind;
  /** The environment variable that holds the URL. */
  env: string;
}

/** `slack:SLACK_WEBHOOK` → {kind, env}; throws an Error that says the expected form. */
export function parseNotifyTarget(spec: string): NotifyTarget {
  const m = /^(slack|webhook):([A-Za-z_][A-Za-z0-9_]*)$/.exec(spec.trim());
  if (!m)
    throw new Error(
      `--notify ${JSON.stringify(spec)}: use slack:<ENV_VAR> or webhook:<ENV_VAR>, naming the environment variable that holds the URL (e.g. slack:SLACK_WEBHOOK), never the URL itself`,
    );
  return { kind: m[1] as NotifyKind, env: m[2] };
}

const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|WEBHOOK|API_?KEY|PRIVATE_?KEY|CREDENTIAL/i;

/** Values that must never leave in a notification: the URLs and the secret-looking environment values. */
export function secretsOf(env: NodeJS.ProcessEnv, targets: NotifyTarget[]): string[] {
  const out = new Set<string>();
  for (const t of targets) if (env[t.env]) out.add(env[t.env]!);
  for (const [k, v] of Object.entries(env)) if (v && v.length >= 8 && SECRET_NAME.test(k)) out.add(v);
  return [...out];
}

/** The verdict/v1 record without its bulk (series, timelines, failure examples): still schema-valid. */
export function trimmedRecord(r: RunRecord): RunRecord {
  return {
    ...r,
    checks: r.checks.map((c) => ({
      ...c,
      series: [],
      timeline: [],
      failures: c.failures.map((f) => ({ ...f, examples: [] })),
    })),
  };
}

export function webhookBody(record: RunRecord, n: Notification): unknown {
  return { schema: 'verdict/notification-v1', summary: n, record: trimmedRecord(record) };
}

export interface NotifyResult {
  target: string;
  ok: boolean;
  /** HTTP status, when an answer came. */
  status: number | null;
  ms: number;
  /** Why it was not delivered (redacted). */
  error: string | null;
}

/** POSTs JSON; never throws. */
async function post(url: string, body: unknown, timeoutMs: number): Promise<Omit<NotifyResult, 'target'>> {
  const t0 = performance.now();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'verdict-notify/1' },
      body: JSON.stringify(body),
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text().catch(() => '');
    const ms = Math.round(performance.now() - t0);
    if (res.ok) return { ok: true, status: res.status, ms, error: null };
    return {
      ok: false,
      status: res.status,
      ms,
      error: `the receiver answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`,
    };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const ms = Math.round(performance.now() - t0);
    const why =
      e.name === 'TimeoutError' || e.name === 'AbortError'
        ? `no answer within ${timeoutMs / 1000} s`
        : `${e.cause?.code ?? e.name}: ${e.cause?.message ?? e.message}`;
    return { ok: false, status: null, ms, error: why };
  }
}

export interface SendOptions {
  reportUrl?: string | null;
  /** Per receiver (default 10 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Sends the run's notification to every target, in parallel; one result each. Never throws. */
export async function sendNotifications(
  record: RunRecord,
  targets: NotifyTarget[],
  o: SendOptions = {},
): Promise<NotifyResult[]> {
  const env = o.env ?? process.env;
  const redact = redactor(secretsOf(env, targets));
  const safe = redactDeep(record, redact);
  const n = redactDeep(notificationOf(safe, o.reportUrl ?? null), redact);
  return Promise.all(
    targets.map(async (t): Promise<NotifyResult> => {
      const name = `${t.kind}:${t.env}`;
      const url = env[t.env];
      if (!url) return { target: name, ok: false, status: null, ms: 0, error: `$${t.env} is not set: nothing was sent` };
      if (!/^https?:\/\//i.test(url))
        return { target: name, ok: false, status: null, ms: 0, error: `$${t.env} is not an http(s) URL: nothing was sent` };
      let body: unknown;
      if (t.kind === 'slack') {
        body = slackMessage(n);
        const problems = blockKitProblems(body);
        if (problems.length)
          return {
            target: name,
            ok: false,
            status: null,
            ms: 0,
            error: `the Slack message breaks Block Kit's limits: ${problems.join('; ')}`,
          };
      } else body = webhookBody(safe, n);
      const r = await post(url, body, o.timeoutMs ?? 10_000);
      return { target: name, ...r, error: r.error === null ? null : redact(r.error) };
    }),
  );
}
