import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../lib/net/free-port.ts';
import { writeRun, createRunDirectory } from '../reports/run-directory.ts';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CheckFailed,
  CleanupRegistry,
  fail,
  pass,
  redactDeep,
  redactor,
  runSuite,
  type SuiteCheck,
} from '../lib/checks/suite.ts';
import { suiteCheckRecord, suiteRunRecord, urlTarget } from './record.ts';

// The generic suite runner, against a plain HTTP server of the test's own: verdicts from returns
// and throws, latency budgets, reported retries, needs, read-only, the cleanup on abort, redaction.
let server: Server;
let url: string;
let hits = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    hits++;
    req.resume();
    const wait = Number(new URL(req.url!, 'http://x').searchParams.get('wait') ?? 0);
    setTimeout(
      () =>
        res
          .writeHead(200, { 'content-type': 'application/json', 'x-app-version': 'v1' })
          .end(JSON.stringify({ path: req.url, auth: req.headers.authorization ?? null })),
      wait,
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(
  () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
);

const check = (name: string, run: SuiteCheck['run'], extra: Partial<SuiteCheck> = {}): SuiteCheck => ({
  name,
  verifies: name,
  budgetMs: 1000,
  run,
  ...extra,
});

describe('runSuite', () => {
  it('takes verdicts from what checks return or throw; a bug is ERROR, never PASS', async () => {
    const run = await runSuite({
      name: 's',
      description: 'd',
      url,
      checks: [
        check('ok', async ({ http }) => {
          await http.request('/a');
          return pass('fine');
        }),
        check('said-fail', async () => fail('wrong')),
        check('threw-fail', async () => {
          throw new CheckFailed('bad answer', { status: 500 });
        }),
        check('bug', async () => {
          throw new TypeError('x is undefined');
        }),
        check('needs', async () => pass('never'), { needs: ['said-fail'] }),
      ],
    });
    expect(run.checks.map((c) => [c.name, c.verdict])).toEqual([
      ['ok', 'PASS'],
      ['said-fail', 'FAIL'],
      ['threw-fail', 'FAIL'],
      ['bug', 'ERROR'],
      ['needs', 'INCONCLUSIVE'],
    ]);
    expect(run.checks[2].observed).toEqual({ status: 500 });
    expect(run.checks[3].evidence).toMatch(/the check broke: TypeError: x is undefined/);
    expect(run.checks[4].evidence).toBe('not run: it needs said-fail to pass first');
    expect(run.verdict).toBe('ERROR');
  });

  it("a request over the check's budget FAILs it with the slowest request as evidence", async () => {
    const run = await runSuite({
      name: 's',
      description: 'd',
      url,
      checks: [
        check(
          'slow',
          async ({ http }) => {
            await http.request('/?wait=300');
            return pass('answered');
          },
          { budgetMs: 100 },
        ),
      ],
    });
    expect(run.checks[0].verdict).toBe('FAIL');
    expect(run.checks[0].evidence).toMatch(/^answered, but GET \/\?wait=300 took \d+ ms \(budget 100 ms\)$/);
  });

  it('retries a check that did not pass, and says which retry passed', async () => {
    let n = 0;
    const flaky = check('flaky', async () => (++n < 3 ? fail(`not yet (${n})`) : pass('now')));
    const run = await runSuite({ name: 's', description: 'd', url, checks: [flaky], retries: 3, retryDelayMs: 10 });
    const r = run.checks[0];
    expect([r.verdict, r.attempts, r.passedOnRetry]).toEqual(['PASS', 3, 2]);
    expect(r.evidence).toBe(
      'passed on retry 2 (of 3 allowed): now; earlier: attempt 1: FAIL not yet (1); attempt 2: FAIL not yet (2)',
    );
    const rec = suiteCheckRecord(run);
    expect(rec.gates[0].observed).toMatchObject({ attempts: 3, passed_on_retry: 2 });
    n = -10;
    const never = await runSuite({ name: 's', description: 'd', url, checks: [flaky], retries: 1, retryDelayMs: 10 });
    expect([never.checks[0].verdict, never.checks[0].attempts, never.checks[0].passedOnRetry]).toEqual(['FAIL', 2, null]);
  });

  it('read-only leaves out the checks that write, and checks with a skip reason, naming them', async () => {
    const run = await runSuite({
      name: 's',
      description: 'd',
      url,
      readOnly: true,
      checks: [
        check('r', async () => pass('read')),
        check('w', async () => pass('wrote'), { writes: true }),
        check('t', async () => pass('x'), { skip: 'no token' }),
      ],
    });
    expect(run.checks.map((c) => c.name)).toEqual(['r']);
    expect(run.leftOut).toEqual([
      { name: 'w', why: 'read-only' },
      { name: 't', why: 'no token' },
    ]);
    expect(suiteCheckRecord(run).description).toBe('d Not run: w (read-only), t (no token).');
  });

  it('an unreachable URL: ERROR naming it and the connection error, the rest not run', async () => {
    const port = await freePort();
    const before = hits;
    const run = await runSuite({
      name: 's',
      description: 'd',
      url: `http://127.0.0.1:${port}`,
      checks: [
        check('a', async ({ http }) => {
          await http.request('/x');
          return pass('no');
        }),
        check('b', async ({ http }) => {
          await http.request('/y');
          return pass('no');
        }),
      ],
    });
    expect(run.verdict).toBe('ERROR');
    expect(run.error).toBe(`cannot reach http://127.0.0.1:${port}/x: ECONNREFUSED (connect ECONNREFUSED 127.0.0.1:${port})`);
    expect(run.checks[1]).toMatchObject({ verdict: 'ERROR', attempts: 0 });
    expect(hits).toBe(before);
  });

  it('on abort the check in flight is ERROR, later checks do not run, and every cleanup step still runs', async () => {
    const abort = new AbortController();
    const undone: string[] = [];
    const run = await runSuite({
      name: 's',
      description: 'd',
      url,
      signal: abort.signal,
      checks: [
        check(
          'take',
          async ({ cleanup }) => {
            cleanup.add('give back 1', async () => {
              undone.push('1');
              return 'given back';
            });
            return pass('took');
          },
          { writes: true },
        ),
        check(
          'hang',
          async ({ http, cleanup }) => {
            cleanup.add('give back 2', async (signal) => {
              expect(signal.aborted).toBe(false);
              undone.push('2');
            });
            setTimeout(() => abort.abort(new Error('interrupted by SIGINT')), 50);
            await http.request('/?wait=5000');
            return pass('no');
          },
          { budgetMs: 10_000 },
        ),
        check('later', async () => pass('no')),
      ],
    });
    expect(run.checks.map((c) => [c.name, c.verdict])).toEqual([
      ['take', 'PASS'],
      ['hang', 'ERROR'],
      ['later', 'ERROR'],
    ]);
    expect(run.error).toBe('interrupted by SIGINT');
    expect(undone).toEqual(['2', '1']);
    const rec = suiteCheckRecord(run);
    expect(rec.gates.at(-1)).toMatchObject({ name: 'cleanup', verdict: 'PASS' });
    expect(rec.verdict).toBe('ERROR');
  });

  it('a cleanup step that fails or hangs is reported and bounded; the suite FAILs', async () => {
    const c = new CleanupRegistry();
    c.add('ok', async () => 'fine');
    c.add('throws', async () => {
      throw new Error('release answered 500');
    });
    c.add('hangs', () => new Promise(() => {}));
    const remove = c.add('removed', async () => 'never');
    remove();
    const out = await c.runAll(100);
    expect(out.map((x) => [x.label, x.ok, x.detail])).toEqual([
      ['hangs', false, 'did not finish within 100 ms'],
      ['throws', false, 'release answered 500'],
      ['ok', true, 'fine'],
    ]);
    const run = await runSuite({
      name: 's',
      description: 'd',
      url,
      cleanupStepTimeoutMs: 100,
      checks: [
        check(
          'w',
          async ({ cleanup }) => {
            cleanup.add('leak', async () => {
              throw new Error('no');
            });
            return pass('ok');
          },
          { writes: true },
        ),
      ],
    });
    expect(run.verdict).toBe('FAIL');
    expect(suiteCheckRecord(run).gates.at(-1)).toMatchObject({ name: 'cleanup', verdict: 'FAIL' });
  });

  it('never returns a secret: not in evidence, observed values, errors or the written run directory', async () => {
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtc3ViamVjdC0xMjM0NSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU';
    const run = await runSuite({
      name: 's',
      description: `d ${token}`,
      url,
      secrets: [token],
      checks: [
        check('echo', async ({ http }) => {
          const r = await http.request('/echo', { headers: { authorization: `Bearer ${token}` } });
          return pass(`server said ${r.text}`, { auth: (r.json as { auth: string }).auth });
        }),
        check('sig', async () => fail(`only the signature ${token.split('.')[2]}`)),
      ],
    });
    const rec = suiteRunRecord({
      command: 'smoke',
      target: urlTarget(url),
      app: null,
      checks: [suiteCheckRecord(run)],
      startedAt: run.startedAt,
      endedAt: run.endedAt,
    });
    const text = JSON.stringify(rec);
    expect(text).toContain('[REDACTED]');
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.split('.')[2]);
    const out = await mkdtemp(join(tmpdir(), 'verdict-suite-'));
    try {
      const { dir } = await createRunDirectory(out, 'smoke');
      const files = await writeRun(dir, rec, null, { env: {} });
      for (const f of [files.reports.json, files.reports.junit, files.reports.markdown, files.reports.html])
        expect(await readFile(f, 'utf8')).not.toContain(token.split('.')[2]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    expect(redactDeep({ a: [`x${token}y`] }, redactor([token]))).toEqual({ a: ['x[REDACTED]y'] });
  });
});
