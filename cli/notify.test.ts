import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assertValidRunRecord } from '../reports/render/json.ts';
import { notificationOf } from '../reports/notify/message.ts';
import { blockKitProblems, slackMessage, SLACK_LIMITS } from '../reports/notify/slack.ts';
import { parseNotifyTarget, secretsOf, sendNotifications } from '../reports/notify/index.ts';
import type { RunRecord } from '../reports/run-record.ts';
import { podKillRun, rolloutPassRun } from '../reports/testing/synthetic.ts';
import { commands } from './commands/index.ts';
import { NOTIFYING_COMMANDS, withNotify } from './notify.ts';
import { runCli } from './testing/run-cli.ts';

// A receiver on loopback standing in for Slack and for a generic webhook. Its Slack endpoint judges
// the body as Slack would (Block Kit's limits), answering 400 invalid_blocks otherwise.
interface Received {
  path: string;
  body: string;
  json: unknown;
}
let server: Server;
let base = '';
let received: Received[] = [];
let mode: 'ok' | 'slow' | 'error' = 'ok';
const hanging = new Set<ServerResponse>();

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      let json: unknown = null;
      try {
        json = JSON.parse(body);
      } catch {}
      received.push({ path: req.url ?? '', body, json });
      if (mode === 'slow') {
        hanging.add(res);
        return;
      }
      if (mode === 'error') return void res.writeHead(503).end('down for maintenance');
      if (req.url?.startsWith('/slack/') && blockKitProblems(json).length) return void res.writeHead(400).end('invalid_blocks');
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
beforeEach(() => {
  received = [];
  mode = 'ok';
});
afterAll(async () => {
  for (const r of hanging) r.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const SLACK_SECRET = 'T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzbW9rZSJ9.c2lnbmF0dXJlLXRoYXQtbXVzdC1ub3QtbGVhaw';

/** A gate run that failed on 5xx, was rolled back and verified; a token leaked into its evidence on purpose. */
function gateRecord(): RunRecord {
  const r = podKillRun().record;
  return {
    ...r,
    command: 'gate',
    target: { ...r.target, kind: 'existing', name: 'gke_acme_prod', context: 'gke_acme_prod', url: 'https://api.example.com' },
    app: { name: 'license-api', versions: { candidate: 'v1.0.43-abc1234', baseline: 'v1.0.42-def5678' }, faults: [] },
    checks: [
      ...r.checks.map((c) => ({ ...c, gates: c.gates.map((g) => ({ ...g, evidence: `${g.evidence} (Bearer ${TOKEN})` })) })),
      {
        ...r.checks[0],
        name: 'rollback',
        kind: 'gate' as const,
        verdict: 'PASS' as const,
        failures: [],
        requests: null,
        series: [],
        timeline: [],
        gates: [
          { name: 'rolled back', verdict: 'PASS' as const, evidence: 'rolled back to revision 4', observed: {} },
          { name: 'rollback rolled out', verdict: 'PASS' as const, evidence: 'rolled out in 21.0 s', observed: {} },
          { name: 'read-only smoke after the rollback', verdict: 'PASS' as const, evidence: 'PASS', observed: {} },
        ],
      },
    ],
    approvals: [{ what: 'deploy-window', by: 'octocat', reason: 'hotfix INC-42', at: r.startedAt, detail: null }],
  };
}

describe('the message', () => {
  it('carries the verdict, target, releases, failed gates with evidence, top causes with counts, the rollback and the link', () => {
    const n = notificationOf(gateRecord(), 'https://ci.example/runs/1');
    expect(n.verdict).toBe('FAIL');
    expect(n.releases).toEqual({ candidate: 'v1.0.43-abc1234', baseline: 'v1.0.42-def5678' });
    expect(n.target).toBe('existing gke_acme_prod https://api.example.com');
    expect(n.failedGates.length).toBeGreaterThan(0);
    expect(n.failedGates[0]).toMatchObject({
      check: 'pod-kill',
      verdict: 'FAIL',
      evidence: expect.stringMatching(/requests failed/),
    });
    expect(n.causes[0].count).toBeGreaterThan(0);
    expect(n.causes.map((c) => c.count)).toEqual(n.causes.map((c) => c.count).sort((a, b) => b - a));
    expect(n.rollback).toEqual({
      state: 'rolled-back',
      ran: true,
      verified: true,
      detail: expect.stringContaining('read-only smoke'),
    });
    const m = slackMessage(n);
    expect(blockKitProblems(m)).toEqual([]);
    const all = JSON.stringify(m);
    expect(all).toContain('FAIL · verdict gate');
    expect(all).toContain('candidate v1.0.43-abc1234');
    expect(all).toContain('ran, verified');
    expect(all).toContain('<https://ci.example/runs/1|Report and run directory>');
    expect(all).toMatch(/Top failure causes\*\\n• \w/);
    expect(all).toContain('Approved (deploy-window) by octocat: hotfix INC-42');
    expect(notificationOf(rolloutPassRun().record).rollback).toBeNull(); // not a gate: no rollback line
  });

  it("stays within Block Kit's limits however large the record, saying what it left out", () => {
    const r = gateRecord();
    const huge: RunRecord = {
      ...r,
      headline: `FAIL: ${'x'.repeat(10_000)}`,
      error: 'e'.repeat(9_000),
      checks: Array.from({ length: 60 }, (_, i) => ({
        ...r.checks[0],
        name: `check-${i}-${'n'.repeat(300)}`,
        gates: Array.from({ length: 30 }, (_, j) => ({
          name: `gate ${j}`,
          verdict: 'FAIL' as const,
          evidence: '<!channel> & '.repeat(500),
          observed: {},
        })),
      })),
      approvals: Array.from({ length: 30 }, () => ({
        what: 'plan-risk' as const,
        by: 'b'.repeat(5000),
        reason: null,
        at: r.startedAt,
      })),
    };
    const m = slackMessage(notificationOf(huge, 'https://ci.example/runs/1'));
    expect(blockKitProblems(m)).toEqual([]);
    expect(m.blocks.length).toBeLessThanOrEqual(SLACK_LIMITS.blocks);
    expect(JSON.stringify(m)).toMatch(/…and \d+ more in the report/);
    expect(JSON.stringify(m)).not.toContain('<!channel>'); // escaped: no broadcast from a record's text
  });

  it('the limits check finds what breaks them', () => {
    const header = { type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } };
    const section = { type: 'section', text: { type: 'mrkdwn', text: 's'.repeat(3001) } };
    const fields = { type: 'section', fields: Array.from({ length: 11 }, () => ({ type: 'mrkdwn', text: 'f' })) };
    expect(blockKitProblems({ text: 't', blocks: [header, section, fields] })).toEqual([
      'blocks[0] (header): 151 characters (at most 150)',
      'blocks[1] (section): 3001 characters (at most 3000)',
      'blocks[2] (section): 11 fields (at most 10)',
    ]);
    expect(blockKitProblems({ text: 't', blocks: Array.from({ length: 51 }, () => ({ type: 'divider' })) })).toEqual([
      '51 blocks (at most 50)',
    ]);
    expect(blockKitProblems({ blocks: [] })).toEqual(['text (the fallback) is missing']);
  });

  it('--notify names an environment variable, never a URL', () => {
    expect(parseNotifyTarget('slack:SLACK_WEBHOOK')).toEqual({ kind: 'slack', env: 'SLACK_WEBHOOK' });
    expect(parseNotifyTarget('webhook:HOOK_1')).toEqual({ kind: 'webhook', env: 'HOOK_1' });
    expect(() => parseNotifyTarget('slack:https://hooks.slack.com/services/x')).toThrow(/never the URL itself/);
    expect(() => parseNotifyTarget('teams:X')).toThrow(/slack:<ENV_VAR> or webhook:<ENV_VAR>/);
    expect(
      secretsOf({ A_TOKEN: 'abcdefgh', SHORT_TOKEN: 'abc', HOME: '/root', HOOK: 'http://x/y' }, [
        { kind: 'webhook', env: 'HOOK' },
      ]).sort(),
    ).toEqual(['abcdefgh', 'http://x/y']);
  });

  it('every command that writes a run directory takes --notify and --report-url', () => {
    const names = commands.map((make) => withNotify(make())).filter((c) => c.options.some((o) => o.long === '--notify'));
    expect(names.map((c) => c.name()).sort()).toEqual([...NOTIFYING_COMMANDS].sort());
    for (const c of names) expect(c.options.some((o) => o.long === '--report-url')).toBe(true);
  });
});

describe('sending, to a local receiver', () => {
  const env = () => ({ SLACK_URL: `${base}/slack/${SLACK_SECRET}`, HOOK_URL: `${base}/hook`, LICENSE_TOKEN: TOKEN });
  const targets = [parseNotifyTarget('slack:SLACK_URL'), parseNotifyTarget('webhook:HOOK_URL')];

  it('one message each: Block Kit to Slack, the verdict/v1 record (valid, trimmed) to the webhook; no secret in either', async () => {
    const results = await sendNotifications(gateRecord(), targets, { env: env(), reportUrl: 'https://ci.example/runs/1' });
    expect(results.map((r) => [r.target, r.ok, r.status])).toEqual([
      ['slack:SLACK_URL', true, 200],
      ['webhook:HOOK_URL', true, 200],
    ]);
    expect(received.map((r) => r.path).sort()).toEqual(['/hook', `/slack/${SLACK_SECRET}`]);
    const hook = received.find((r) => r.path === '/hook')!.json as {
      schema: string;
      summary: { reportUrl: string };
      record: RunRecord;
    };
    expect(hook.schema).toBe('verdict/notification-v1');
    expect(hook.summary.reportUrl).toBe('https://ci.example/runs/1');
    expect(() => assertValidRunRecord(hook.record)).not.toThrow();
    expect(hook.record.checks.every((c) => c.series.length === 0 && c.timeline.length === 0)).toBe(true);
    for (const r of received) {
      expect(r.body).not.toContain(TOKEN.split('.')[2]);
      expect(r.body).not.toContain(SLACK_SECRET);
      expect(r.body).toContain('[REDACTED]');
    }
  });

  it('a slow, failing or absent receiver is reported and nothing throws', async () => {
    mode = 'slow';
    const slow = await sendNotifications(gateRecord(), [targets[1]], { env: env(), timeoutMs: 500 });
    expect(slow[0]).toMatchObject({ ok: false, status: null, error: 'no answer within 0.5 s' });
    mode = 'error';
    const failing = await sendNotifications(gateRecord(), [targets[1]], { env: env() });
    expect(failing[0]).toMatchObject({ ok: false, status: 503, error: 'the receiver answered 503: down for maintenance' });
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const down = await sendNotifications(gateRecord(), [targets[1]], { env: { HOOK_URL: `http://127.0.0.1:${port}/x` } });
    expect(down[0]).toMatchObject({ ok: false, status: null, error: expect.stringMatching(/^ECONNREFUSED/) });
    const unset = await sendNotifications(gateRecord(), targets, { env: {} });
    expect(unset.map((r) => r.error)).toEqual([
      '$SLACK_URL is not set: nothing was sent',
      '$HOOK_URL is not set: nothing was sent',
    ]);
  });
});

describe('verdict <command> --notify (the CLI)', () => {
  const DATA = resolve(import.meta.dirname, '../lib/policy/testdata');
  let out = '';
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'verdict-notify-cli-'));
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('plan-risk FAIL posts its evidence to Slack and the webhook; the exit code is the verdict', async () => {
    const r = await runCli(
      [
        'plan-risk',
        join(DATA, 'sql-instance-replace.json'),
        '--out',
        out,
        '--notify',
        'slack:SLACK_URL',
        '--notify',
        'webhook:HOOK_URL',
        '--report-url',
        'https://ci.example/runs/7',
      ],
      { env: { SLACK_URL: `${base}/slack/${SLACK_SECRET}`, HOOK_URL: `${base}/hook` } },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^notify: slack:SLACK_URL: sent \(200, \d+ ms\)\nnotify: webhook:HOOK_URL: sent \(200, \d+ ms\)\n$/);
    const slack = received.find((x) => x.path.startsWith('/slack/'))!;
    expect(blockKitProblems(slack.json)).toEqual([]);
    expect(slack.body).toContain('module.database.google_sql_database_instance.main');
    expect(slack.body).toContain('Report and run directory');
    expect(
      (received.find((x) => x.path === '/hook')!.json as { summary: { failedGates: unknown[] } }).summary.failedGates,
    ).toHaveLength(1);
  });

  it('a receiver that hangs is reported after --notify-timeout and changes neither verdict nor exit code', async () => {
    mode = 'slow';
    const r = await runCli(
      ['plan-risk', join(DATA, 'labels-only.json'), '--out', out, '--notify', 'webhook:HOOK_URL', '--notify-timeout', '1'],
      {
        env: { HOOK_URL: `${base}/hook` },
      },
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'notify: webhook:HOOK_URL: NOT delivered: no answer within 1 s (the verdict and the exit code are unchanged)\n',
    );
  });

  it('bad --notify is bad usage (exit 64) before anything runs', async () => {
    const r = await runCli(['plan-risk', join(DATA, 'labels-only.json'), '--out', out, '--notify', `slack:${base}/slack`]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/never the URL itself/);
    const u = await runCli([
      'plan-risk',
      join(DATA, 'labels-only.json'),
      '--out',
      out,
      '--notify',
      'slack:X',
      '--report-url',
      'not a url',
    ]);
    expect(u.code).toBe(64);
    expect(u.stderr).toMatch(/--report-url must be an http\(s\) URL/);
    expect(received).toEqual([]);
  });
});
