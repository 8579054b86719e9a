import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { licenseApi } from './profile.ts';
import { SMOKE_HARDWARE_PREFIX } from './smoke.ts';
import { mintToken, spawnApi, startTestApi, type ApiProcess, type TestApi } from '../../license-api/test/harness.ts';
import { freshDatabase } from '../../test/databases.ts';
import { freePort } from '../../lib/net/free-port.ts';
import { runSmoke, type SmokeResult } from '../../suites/smoke.ts';
import { startFaultProxy, type FaultPlan } from '../../suites/testing/fault-proxy.ts';
import { assertValidRunRecord } from '../../reports/render/json.ts';

// The license API's smoke suite against the API started here: the shipped release PASSes, releases
// broken in one way each FAIL the check that looks at that, a server that is not the license API
// FAILs, an unreachable URL is ERROR, and the seats the smoke takes are always given back.
const SEED = 'TEST-KEY=3,SMOKE-KEY=5';
const CLI = fileURLToPath(new URL('../../cli/verdict.ts', import.meta.url));

async function openSessions(db: string): Promise<number> {
  const c = new pg.Client({ connectionString: db });
  await c.connect();
  try {
    const r = await c.query(`SELECT count(*)::int AS n FROM sessions WHERE ended_at IS NULL AND hardware_id LIKE $1`, [
      `${SMOKE_HARDWARE_PREFIX}%`,
    ]);
    return r.rows[0].n;
  } finally {
    await c.end();
  }
}
async function allSmokeSessions(db: string): Promise<number> {
  const c = new pg.Client({ connectionString: db });
  await c.connect();
  try {
    return (await c.query(`SELECT count(*)::int AS n FROM sessions WHERE hardware_id LIKE $1`, [`${SMOKE_HARDWARE_PREFIX}%`]))
      .rows[0].n;
  } finally {
    await c.end();
  }
}

const gates = (r: SmokeResult) => Object.fromEntries(r.record.gates.map((g) => [g.name, g.verdict]));
const gate = (r: SmokeResult, name: string) => r.record.gates.find((g) => g.name === name)!;

describe('smoke against the license API in this process', () => {
  let api: TestApi;
  let db: string;
  beforeAll(async () => {
    db = await freshDatabase('smoke');
    api = await startTestApi({ DATABASE_URL: db, LICENSE_SEED: SEED, APP_VERSION: 'v7' });
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
  });

  const smoke = (url: string, o: Partial<Parameters<typeof runSmoke>[0]> = {}) =>
    runSmoke({ app: licenseApi, url, token: api.token, ...o });

  it('the shipped release PASSes every check and leaves no seat open', async () => {
    const before = await openSessions(db);
    const r = await smoke(api.url, { expectVersion: 'v7' });
    expect(gates(r)).toEqual({
      ready: 'PASS',
      metrics: 'PASS',
      'no-token': 'PASS',
      'bad-token': 'PASS',
      'heartbeat-unknown': 'PASS',
      acquire: 'PASS',
      heartbeat: 'PASS',
      release: 'PASS',
      version: 'PASS',
      cleanup: 'PASS',
    });
    expect(r.record.verdict).toBe('PASS');
    expect(r.record.kind).toBe('suite');
    expect(r.record.requests!.total).toBeGreaterThanOrEqual(12);
    expect(r.record.requests!.byVersion).toEqual({ v7: r.record.requests!.total });
    expect(gate(r, 'metrics').observed.http_requests_total_series).toBeGreaterThan(0);
    expect(gate(r, 'acquire').observed).toMatchObject({ attempts: 1, passed_on_retry: null, writes: true, budget_ms: 2000 });
    expect(await openSessions(db)).toBe(before);
    expect(await allSmokeSessions(db)).toBeGreaterThan(0);
  });

  it('read-only writes nothing and needs no token: the write checks are listed as not run', async () => {
    const before = await allSmokeSessions(db);
    const r = await runSmoke({ app: licenseApi, url: api.url, token: null, readOnly: true });
    expect(r.record.verdict).toBe('PASS');
    expect(Object.keys(gates(r))).toEqual(['ready', 'metrics', 'no-token', 'bad-token', 'version']);
    expect(r.record.description).toMatch(/Not run: heartbeat-unknown \(no token.*acquire \(no token/);
    expect(await allSmokeSessions(db)).toBe(before);
    // With a token, read-only also checks the token is accepted, still writing nothing.
    const withToken = await smoke(api.url, { readOnly: true });
    expect(Object.keys(gates(withToken))).toContain('heartbeat-unknown');
    expect(withToken.record.description).toMatch(/acquire \(read-only\)/);
    expect(await allSmokeSessions(db)).toBe(before);
  });

  it('FAILs the version check when the service is not the expected version', async () => {
    const r = await smoke(api.url, { expectVersion: 'v8' });
    expect(r.record.verdict).toBe('FAIL');
    expect(gate(r, 'version').verdict).toBe('FAIL');
    expect(gate(r, 'version').evidence).toMatch(/expected X-App-Version v8; the answers said v7/);
    expect(
      Object.entries(gates(r))
        .filter(([, v]) => v !== 'PASS')
        .map(([k]) => k),
    ).toEqual(['version']);
  });

  it.each<[string, (req: { method: string; path: string; n: number }) => FaultPlan | undefined, string[]]>([
    [
      'a gateway that strips X-App-Version from /metrics',
      (q) => (q.path === '/metrics' ? { stripHeaders: ['x-app-version'] } : undefined),
      ['version'],
    ],
    [
      '/metrics answered with garbage',
      (q) => (q.path === '/metrics' ? { body: '<html><body>metrics moved</body></html>', contentType: 'text/html' } : undefined),
      ['metrics'],
    ],
    [
      '/metrics without http_requests_total',
      (q) => (q.path === '/metrics' ? { body: '# TYPE up gauge\nup 1\n', contentType: 'text/plain; version=0.0.4' } : undefined),
      ['metrics'],
    ],
    [
      'a gateway that lets requests without a token through (as the smoke user)',
      () => ({ addAuthorization: `Bearer ${tokenForProxy}` }),
      ['no-token'],
    ],
    [
      'readiness that says ready with 503',
      (q) =>
        q.path === '/health/ready'
          ? { answer: { status: 503, body: '{"status":"not_ready"}', headers: { 'x-app-version': 'v7' } } }
          : undefined,
      ['ready'],
    ],
    // Heartbeats, in order: no-token (1), bad-token (2, 3), heartbeat-unknown (4), heartbeat (5), after the release (6).
    [
      'a release that keeps the session alive after release',
      (q) =>
        q.path.endsWith('/heartbeat') && q.n === 6
          ? {
              answer: {
                status: 200,
                body: '{"success":true,"expires_at":"2030-01-01T00:00:00Z"}',
                headers: { 'content-type': 'application/json', 'x-app-version': 'v7' },
              },
            }
          : undefined,
      ['release'],
    ],
  ])('FAILs the right check behind %s', async (_name, plan, failing) => {
    tokenForProxy = api.token;
    await using proxy = await startFaultProxy(api.url, plan);
    const before = await openSessions(db);
    const r = await smoke(proxy.url);
    const notPassed = Object.entries(gates(r))
      .filter(([, v]) => v !== 'PASS')
      .map(([k]) => k);
    expect(notPassed).toEqual(failing);
    expect(r.record.verdict).toBe('FAIL');
    expect(await openSessions(db)).toBe(before);
  });

  it('a release that answers 500 (the errors-after-start fault) FAILs the license checks', async () => {
    const faultDb = await freshDatabase('smoke');
    await using broken = await startTestApi({ DATABASE_URL: faultDb, LICENSE_SEED: SEED, FAULT_ERRORS_AFTER_START_MS: '600000' });
    const r = await runSmoke({ app: licenseApi, url: broken.url, token: broken.token });
    expect(r.record.verdict).toBe('FAIL');
    for (const c of ['no-token', 'bad-token', 'heartbeat-unknown', 'acquire']) expect(gate(r, c).verdict).toBe('FAIL');
    expect(gate(r, 'acquire').evidence).toMatch(/answered 500/);
    expect(gate(r, 'heartbeat').verdict).toBe('INCONCLUSIVE');
    expect(gate(r, 'heartbeat').evidence).toMatch(/needs acquire/);
    expect(gate(r, 'ready').verdict).toBe('PASS');
    expect(await openSessions(faultDb)).toBe(0);
  });

  it('a slow step FAILs its latency budget (and only that)', async () => {
    await using proxy = await startFaultProxy(api.url, (q) => (q.path === '/health/ready' ? { holdMs: 400 } : undefined));
    const r = await smoke(proxy.url, { budgetMs: 250 });
    expect(gate(r, 'ready').verdict).toBe('FAIL');
    expect(gate(r, 'ready').evidence).toMatch(/GET \/health\/ready took \d+ ms \(budget 250 ms\)/);
  });

  it('--retries re-runs a check that failed and reports the retry', async () => {
    const flaky = (q: { path: string; n: number }) =>
      q.path === '/health/ready' && q.n === 1
        ? { answer: { status: 503, body: '{"status":"starting"}', headers: { 'x-app-version': 'v7' } } }
        : undefined;
    {
      await using proxy = await startFaultProxy(api.url, flaky);
      const r = await smoke(proxy.url, { retries: 2 });
      const g = gate(r, 'ready');
      expect(g.verdict).toBe('PASS');
      expect(g.evidence).toMatch(/^passed on retry 1 \(of 2 allowed\).*attempt 1: FAIL GET \/health\/ready answered 503/);
      expect(g.observed).toMatchObject({ attempts: 2, passed_on_retry: 1 });
      expect(r.record.verdict).toBe('PASS');
    }
    {
      await using proxy = await startFaultProxy(api.url, flaky);
      const r = await smoke(proxy.url);
      expect(gate(r, 'ready').verdict).toBe('FAIL');
      expect(gate(r, 'ready').observed).toMatchObject({ attempts: 1, passed_on_retry: null });
    }
  });
});

let tokenForProxy = '';

describe('smoke against what is not the license API', () => {
  let other: Server;
  let url: string;
  beforeAll(async () => {
    other = createServer((req, res) => {
      // A plain web server: 200 for everything, HTML, no version header.
      req.resume();
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>hello</body></html>');
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => other.close(() => r())));

  it('a server that is not the license API FAILs, never PASSes', async () => {
    const r = await runSmoke({ app: licenseApi, url, token: await mintToken() });
    expect(r.record.verdict).toBe('FAIL');
    for (const c of ['ready', 'metrics', 'no-token', 'bad-token', 'heartbeat-unknown', 'acquire', 'version'])
      expect(gate(r, c).verdict).toBe('FAIL');
    // Its acquire "answered 200" without a session: the cleanup tried to find the seat by hardware id, could not, and says so.
    expect(gate(r, 'acquire').evidence).toMatch(/without a session_id/);
    expect(gate(r, 'cleanup').verdict).toBe('FAIL');
    expect(gate(r, 'cleanup').evidence).toMatch(/acquire by hardware id answered 200 without a session_id/);
    expect(gate(r, 'heartbeat').verdict).toBe('INCONCLUSIVE');
  });

  it('an unreachable URL is ERROR, naming the URL and the connection error; the other checks are not run', async () => {
    const port = await freePort();
    const r = await runSmoke({ app: licenseApi, url: `http://127.0.0.1:${port}`, token: await mintToken() });
    expect(r.record.verdict).toBe('ERROR');
    expect(r.run.error).toMatch(new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/health/ready: ECONNREFUSED`));
    expect(gate(r, 'ready').verdict).toBe('ERROR');
    expect(gate(r, 'metrics').evidence).toMatch(/^not run: cannot reach/);
    expect(r.record.gates.every((g) => g.verdict !== 'PASS')).toBe(true);
  });
});

// ----------------------------------------------------------------------------------- the command

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}
function cli(
  args: string[],
  env: Record<string, string> = {},
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', CI: 'true', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
    });
    child.stderr!.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

describe('verdict smoke (the command, against the API as its own process)', () => {
  let api: ApiProcess;
  let db: string;
  let token: string;
  let out: string;
  beforeAll(async () => {
    db = await freshDatabase('smokecli');
    api = await spawnApi({ DATABASE_URL: db, LICENSE_SEED: SEED, APP_VERSION: 'v3', LOG_LEVEL: 'debug' });
    token = await mintToken('smoke-cli');
    out = await mkdtemp(join(tmpdir(), 'verdict-smoke-'));
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('PASSes with exit 0, writes the run directory, and the token appears in no output, report or log', async () => {
    const r = await cli(['smoke', '--url', api.url, '--token', token, '--expect-version', 'v3', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^PASS {2}all 10 checks passed against http:\/\/127\.0\.0\.1:\d+/);
    // The same run with the token from the environment, and with --json.
    const j = await cli(['smoke', '--url', api.url, '--json', '--out', out], { TEST_TOKEN: token });
    expect(j.code).toBe(0);
    const rec = assertValidRunRecord(JSON.parse(j.stdout));
    expect(rec).toMatchObject({
      command: 'smoke',
      verdict: 'PASS',
      target: { kind: 'url', url: api.url },
      app: { name: 'license-api' },
    });
    expect(rec.checks.map((c) => [c.name, c.kind])).toEqual([['smoke', 'suite']]);
    const files = await filesUnder(out);
    expect(files.map((f) => f.split('/').pop()!).sort()).toEqual(
      expect.arrayContaining(['verdict.json', 'junit.xml', 'summary.md', 'report.html']),
    );
    const texts = [
      r.stdout,
      r.stderr,
      j.stdout,
      j.stderr,
      api.output(),
      ...(await Promise.all(files.map((f) => readFile(f, 'utf8')))),
    ];
    expect(api.output()).toMatch(/"route":"\/api\/v1\/licenses\/acquire"/); // the API's log saw the requests
    const signature = token.split('.')[2];
    for (const t of texts) {
      expect(t).not.toContain(token);
      expect(t).not.toContain(signature);
    }
  });

  it('bad usage exits 64 naming the fix', async () => {
    const noUrl = await cli(['smoke']);
    expect(noUrl.code).toBe(64);
    expect(noUrl.stderr).toMatch(/--url is required/);
    const noToken = await cli(['smoke', '--url', api.url, '--out', out]);
    expect(noToken.code).toBe(64);
    expect(noToken.stderr).toMatch(/pass --token <jwt> or set TEST_TOKEN or LICENSE_TOKEN \(or run --read-only/);
    const badUrl = await cli(['smoke', '--url', 'ftp://x', '--read-only']);
    expect(badUrl.code).toBe(64);
    const readOnly = await cli(['smoke', '--url', api.url, '--read-only', '--out', out]);
    expect(readOnly.code).toBe(0);
  });

  it('an unreachable URL exits 3 with the URL and the connection error', async () => {
    const port = await freePort();
    const r = await cli(['smoke', '--url', `http://127.0.0.1:${port}`, '--read-only', '--out', out]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(new RegExp(`ERROR {2}cannot reach http://127\\.0\\.0\\.1:${port}/health/ready: ECONNREFUSED`));
  });

  it.each([
    ['holding a seat (SIGINT during the heartbeat)', '/api/v1/licenses/heartbeat', 'SIGINT'],
    ['with the acquire granted but not yet answered (SIGTERM)', '/api/v1/licenses/acquire', 'SIGTERM'],
  ] as const)('interrupted %s, it releases every seat it took and exits 3', async (_name, path, signal) => {
    // The proxy forwards at once (the API acts) but holds the answer back: the run is interrupted with the request in flight.
    // Acquires: the unauthenticated one of no-token (1), then the seat (2). Heartbeats before the seat's are of sessions that do not exist.
    let acquires = 0;
    let sent = false;
    await using proxy = await startFaultProxy(api.url, (q) => {
      if (q.path.endsWith('/acquire')) acquires = q.n;
      if (sent || q.path !== path || acquires < 2) return undefined;
      sent = true;
      setTimeout(() => child?.kill(signal), 300);
      return { holdMs: 4000 };
    });
    let child: ReturnType<typeof spawn> | undefined;
    const before = await openSessions(db);
    const started = Date.now();
    const r = await cli(
      ['smoke', '--url', proxy.url, '--token', token, '--latency-budget', '10000', '--out', out],
      {},
      (_t, c) => {
        child = c;
      },
    );
    expect(sent).toBe(true);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`${signal}: stopping; cleaning up`));
    expect(r.stderr).toMatch(/cleanup seat verdict-smoke-\w+-1: ok released session/);
    expect(r.stdout).toMatch(new RegExp(`ERROR {2}interrupted by ${signal}`));
    expect(await openSessions(db)).toBe(before);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
