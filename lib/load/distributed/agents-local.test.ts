// The distributed path without a cluster: bundled agents as local processes against a loopback
// server, reporting to a loopback collector, merged into one result (the cluster test runs the same
// agents as a Kubernetes Indexed Job).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleLoadAgent } from '../bundle.ts';
import { runLoad } from '../engine.ts';
import { planExecutor, type ExecutorConfig } from '../executors.ts';
import { Ledger } from '../ledger.ts';
import { vetTarget } from '../target-guard.ts';
import { parseThresholds } from '../thresholds.ts';
import { ok, startTestServer, type TestServer } from '../testing/servers.ts';
import { startCollector } from './collector.ts';
import { mergeAgentResults, type MergeInput } from './merge.ts';
import { REPORT_TYPE, REPORT_VERSION, sendReport, type AgentReportHeader } from './report.ts';
import { agentShare } from './share.ts';

let dir: string;
let agentFile: string;
let server: TestServer;
const TOKEN = 'test-token-0123456789';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verdict-agents-'));
  server = await startTestServer(ok((n) => `pod-${n % 3}`, 'v1'));
  agentFile = (await bundleLoadAgent({ outfile: join(dir, 'load-agent.mjs') })).outfile;
}, 60_000);
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

function agent(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [agentFile, ...args], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const executor: ExecutorConfig = { executor: 'constant-arrival-rate', rate: 200, duration: '2s' };

async function mergeInput(
  agents: number,
  startAt: number,
  reports: MergeInput['reports'],
  missing = new Map<number, string>(),
): Promise<MergeInput> {
  const planned = Array.from({ length: agents }, (_, k) =>
    planExecutor(agentShare(executor, agents, k).executor, { timeoutMs: 10_000 }),
  ).reduce((n, p) => n + (p.model === 'open' ? p.arrivals.count : 0), 0);
  return {
    agents,
    reports,
    missing,
    plan: planExecutor(executor, { timeoutMs: 10_000 }),
    plannedArrivals: planned,
    target: await vetTarget(server.url),
    thresholds: parseThresholds({ http_req_failed: ['rate<0.01'] }),
    timeoutMs: 10_000,
    // A busy machine (other suites) can delay an agent's timers; lateness is not what these tests judge.
    minRequests: 100,
    maxStartLatenessMs: 1000,
    maxScheduleDelayMs: 1000,
    originEpochMs: startAt,
  };
}

describe('agents as local processes', () => {
  it('two agents share the load, start together, report, and merge into totals equal to the sum of their parts', async () => {
    await using collector = await startCollector({ host: '127.0.0.1', token: TOKEN, agents: 2 });
    const before = server.requests();
    // Far enough ahead for two Node processes to start on a busy machine.
    const startAt = Date.now() + 6000;
    const common = [
      '--url',
      server.url,
      '--executor-json',
      JSON.stringify(executor),
      '--agents',
      '2',
      '--start-at',
      String(startAt),
      '--report-to',
      collector.url,
      '--backend-header',
      'x-served-by',
      '--version-header',
      'x-app-version',
      '--quiet',
    ];
    const runs = await Promise.all(
      [0, 1].map((k) => agent([...common, '--agent-index', String(k)], { VERDICT_REPORT_TOKEN: TOKEN })),
    );
    for (const r of runs) expect(r, r.stderr).toMatchObject({ code: 0 });
    const reports = await collector.waitForAll();
    expect([...reports.keys()].sort((a, b) => a - b)).toEqual([0, 1]);

    const merged = mergeAgentResults(await mergeInput(2, startAt, reports));
    const parts = [0, 1].map((k) => reports.get(k)!.header);
    // Each agent ran half: 200 of the 400 arrivals; the totals are the sum of the parts, and what the server saw.
    expect(parts.map((p) => p.summary.counts.scheduled)).toEqual([200, 200]);
    expect(merged.ledger.length).toBe(parts[0].rows + parts[1].rows);
    expect(merged.summary.counts.succeeded).toBe(parts[0].summary.counts.succeeded + parts[1].summary.counts.succeeded);
    expect(merged.summary.metrics.http_reqs.count).toBe(
      parts[0].summary.metrics.http_reqs.count + parts[1].summary.metrics.http_reqs.count,
    );
    expect(merged.summary.metrics.http_reqs.count).toBe(server.requests() - before);
    expect(merged.summary.counts.iterations.started).toBe(400);
    expect(merged.summary.rates.planned).toBe(400);
    expect(merged.summary.servedBy).toEqual(
      Object.fromEntries(
        Object.entries(
          [parts[0].summary.servedBy, parts[1].summary.servedBy].reduce<Record<string, number>>((a, b) => {
            for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
            return a;
          }, {}),
        ).sort((a, b) => b[1] - a[1]),
      ),
    );
    expect(merged.assessment).toEqual({ verdict: 'PASS', reasons: [] });
    expect(merged.agents.map((a) => [a.index, a.reported, a.rows])).toEqual([
      [0, true, 200],
      [1, true, 200],
    ]);
    // Iteration numbers stay unique across agents (k, k + 2, ...), and the merged rows are in issue order.
    const iterations = new Set([...merged.ledger.rows()].map((r) => r.iteration));
    expect(iterations.size).toBe(400);
    for (let r = 1; r < merged.ledger.length; r++)
      expect(merged.ledger.issuedAt(r)).toBeGreaterThanOrEqual(merged.ledger.issuedAt(r - 1));
    // Both started at the shared instant (agent 1 half an arrival interval later: 5 ms per agent at 100/s each).
    expect(parts[0].startAt).toBe(startAt);
    expect(parts[1].startAt).toBe(startAt + 5);
    for (const p of parts) expect(p.startLateMs).toBeLessThan(500);
    // The merged schedule interleaves the agents' arrivals (on the shared origin, 2.5 ms apart in theory).
    const firstTen = [...merged.ledger.rows()].slice(0, 10).map((r) => r.scheduledAt);
    expect(firstTen[9] - firstTen[0]).toBeLessThan(45 + 500);
  }, 60_000);

  it('an agent posts its answers per version while it runs, and stops gracefully when the collector says so', async () => {
    await using collector = await startCollector({ host: '127.0.0.1', token: TOKEN, agents: 1 });
    const long: ExecutorConfig = { executor: 'constant-arrival-rate', rate: 100, duration: '30s' };
    const running = agent(
      [
        '--url',
        server.url,
        '--executor-json',
        JSON.stringify(long),
        '--agents',
        '1',
        '--agent-index',
        '0',
        '--start-at',
        String(Date.now() + 1500),
        '--report-to',
        collector.url,
        '--progress-to',
        collector.progressUrl,
        '--version-header',
        'x-app-version',
        '--quiet',
      ],
      { VERDICT_REPORT_TOKEN: TOKEN },
    );
    // Progress arrives while the run goes on: the answers grow.
    const deadline = Date.now() + 20_000;
    while (collector.answersFrom('v1') < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(collector.answersFrom('v1')).toBeGreaterThanOrEqual(100);
    expect(collector.answersFrom('v2')).toBe(0);
    expect(collector.reports.size).toBe(0);
    collector.requestStop('the experiment is over');
    const r = await running;
    expect(r.code, r.stderr).toBe(0);
    const report = collector.reports.get(0)!;
    // Stopped gracefully, long before its 30 s: every started iteration finished, none aborted.
    expect(report.header.summary.run.abortReason).toBeNull();
    expect(report.header.summary.run.stopReason).toMatch(/the experiment is over/);
    expect(report.header.summary.counts.scheduled).toBeLessThan(1500);
    expect(report.header.summary.counts.abortedByRun).toBe(0);
    expect(report.header.summary.counts.succeeded).toBe(report.header.rows);
    // After the report, the count is the report's own: every successful answer.
    expect(collector.answersFrom('v1')).toBe(report.header.rows);
  }, 60_000);

  it('an agent that never reports makes the merged run INCONCLUSIVE, naming it', async () => {
    await using collector = await startCollector({ host: '127.0.0.1', token: TOKEN, agents: 2 });
    const startAt = Date.now() + 6000;
    const r = await agent(
      [
        '--url',
        server.url,
        '--executor-json',
        JSON.stringify(executor),
        '--agents',
        '2',
        '--agent-index',
        '0',
        '--start-at',
        String(startAt),
        '--report-to',
        collector.url,
        '--quiet',
      ],
      { VERDICT_REPORT_TOKEN: TOKEN },
    );
    expect(r.code, r.stderr).toBe(0);
    const merged = mergeAgentResults(await mergeInput(2, startAt, collector.reports, new Map([[1, 'pod load-1 was deleted']])));
    expect(merged.assessment.verdict).toBe('INCONCLUSIVE');
    expect(merged.assessment.reasons[0]).toMatch(/^agent 1 did not report: pod load-1 was deleted/);
    expect(merged.assessment.reasons.join('\n')).toMatch(/achieved load below target: 200 of 400 planned arrivals/);
    expect(merged.agents[1]).toMatchObject({ reported: false, problem: 'pod load-1 was deleted' });
  }, 60_000);

  it('one agent through the collector gives the numbers the engine gave itself', async () => {
    const direct = await runLoad({
      url: server.url,
      executor: { executor: 'constant-arrival-rate', rate: 300, duration: '1s' },
      identityHeaders: { backend: 'x-served-by' },
      thresholds: { http_req_failed: ['rate<0.01'], 'http_req_duration{name:GET /}': ['p(99)<1000'] },
      minRequests: 10,
    });
    await using collector = await startCollector({ host: '127.0.0.1', token: TOKEN, agents: 1 });
    await sendReport(`${collector.url}/0`, TOKEN, header(0, 1, direct.ledger, direct.summary, direct.assessment), direct.ledger);
    const merged = mergeAgentResults({
      agents: 1,
      reports: collector.reports,
      missing: new Map(),
      plan: planExecutor({ executor: 'constant-arrival-rate', rate: 300, duration: '1s' }, { timeoutMs: 10_000 }),
      plannedArrivals: 300,
      target: await vetTarget(server.url),
      thresholds: parseThresholds({ http_req_failed: ['rate<0.01'], 'http_req_duration{name:GET /}': ['p(99)<1000'] }),
      timeoutMs: 10_000,
      minRequests: 10,
      maxStartLatenessMs: 1000,
      originEpochMs: direct.ledger.origin.epochMs,
    });
    const s = merged.summary,
      d = direct.summary;
    expect(s.counts).toEqual(d.counts);
    expect(s.statuses).toEqual(d.statuses);
    expect(s.servedBy).toEqual(d.servedBy);
    // Times travel as epoch µs; the summary's scheduling end is rounded to µs as well.
    expect(s.rates).toEqual({ ...d.rates, achieved: expect.closeTo(d.rates.achieved, 3) });
    expect(s.metrics.http_reqs.count).toBe(d.metrics.http_reqs.count);
    for (const k of ['http_req_duration', 'http_req_blocked', 'http_req_service_time', 'schedule_delay'] as const) {
      // Times travel rounded to µs, and the histogram keeps 3 significant digits: a bucket edge may
      // move one bucket (≤ 0.1 % of the value), never more.
      for (const [agg, v] of Object.entries(d.metrics[k]!)) {
        expect(
          Math.abs(s.metrics[k]![agg as 'med'] - v),
          `${k} ${agg}: ${s.metrics[k]![agg as 'med']} vs ${v}`,
        ).toBeLessThanOrEqual(Math.max(0.005, Math.abs(v) * 0.001));
      }
    }
    expect(s.series.map((x) => [x.second, x.scheduled, x.succeeded])).toEqual(
      d.series.map((x) => [x.second, x.scheduled, x.succeeded]),
    );
    expect(merged.thresholds.map((t) => [t.metric, t.ok, t.samples])).toEqual(
      direct.thresholds.map((t) => [t.metric, t.ok, t.samples]),
    );
    expect(merged.assessment).toEqual(direct.assessment);

    // The same report from an agent whose clock started 1.5 s after its instant: not together, not PASS.
    await using late = await startCollector({ host: '127.0.0.1', token: TOKEN, agents: 1 });
    await sendReport(
      `${late.url}/0`,
      TOKEN,
      { ...header(0, 1, direct.ledger, direct.summary, direct.assessment), startLateMs: 1500 },
      direct.ledger,
    );
    const lateMerge = mergeAgentResults({
      agents: 1,
      reports: late.reports,
      missing: new Map(),
      plan: planExecutor({ executor: 'constant-arrival-rate', rate: 300, duration: '1s' }, { timeoutMs: 10_000 }),
      plannedArrivals: 300,
      target: await vetTarget(server.url),
      thresholds: parseThresholds({ http_req_failed: ['rate<0.01'] }),
      timeoutMs: 10_000,
      minRequests: 10,
      maxStartLatenessMs: 1000,
      originEpochMs: direct.ledger.origin.epochMs,
    });
    expect(lateMerge.assessment.verdict).toBe('INCONCLUSIVE');
    expect(lateMerge.assessment.reasons[0]).toMatch(
      /^agent 0 \(test\) started 1500 ms after its start instant \(at most 1000 ms\)/,
    );
  }, 60_000);

  it('the collector takes only complete reports, with the token, once per agent', async () => {
    await using collector = await startCollector({ host: '127.0.0.1', token: TOKEN, agents: 2 });
    const direct = await runLoad({
      url: server.url,
      executor: { executor: 'constant-arrival-rate', rate: 50, duration: '200ms' },
      minRequests: 0,
    });
    const h = header(0, 2, direct.ledger, direct.summary, direct.assessment);
    await expect(sendReport(`${collector.url}/0`, 'wrong-token', h, direct.ledger)).rejects.toThrow(/401/);
    await expect(sendReport(`${collector.url}/5`, TOKEN, { ...h, index: 5 }, direct.ledger)).rejects.toThrow(
      /not one of this run's 0..1/,
    );
    // A header that announces more rows than arrive (a cut connection looks like this) is not a report.
    await expect(sendReport(`${collector.url}/0`, TOKEN, { ...h, rows: h.rows - 1 }, direct.ledger)).rejects.toThrow(
      /counts 10 rows, the header 9/,
    );
    const short = { ...h, rows: h.rows - 1, summary: { ...h.summary, counts: { ...h.summary.counts, scheduled: h.rows - 1 } } };
    const cut = new Ledger();
    for (let r = 0; r < h.rows - 2; r++) cut.append(direct.ledger.row(r));
    await expect(sendReport(`${collector.url}/0`, TOKEN, short, cut, { attempts: 1 })).rejects.toThrow();
    expect(collector.reports.size).toBe(0);
    await sendReport(`${collector.url}/0`, TOKEN, h, direct.ledger);
    await expect(sendReport(`${collector.url}/0`, TOKEN, h, direct.ledger)).rejects.toThrow(/409.*reported already/);
    expect(collector.reports.get(0)!.ledger.length).toBe(10);
  }, 30_000);
});

function header(
  index: number,
  agents: number,
  ledger: Ledger,
  summary: AgentReportHeader['summary'],
  assessment: AgentReportHeader['assessment'],
): AgentReportHeader {
  return {
    type: REPORT_TYPE,
    version: REPORT_VERSION,
    index,
    agents,
    host: 'test',
    startAt: null,
    startLateMs: 0,
    originEpochMs: ledger.origin.epochMs,
    rows: ledger.length,
    summary,
    thresholds: [],
    assessment,
  };
}
