import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `verdict smoke` against a hostile service on loopback: one that reflects the bearer token, one
// that answers with terminal and CI-command injections, one that answers a huge nested JSON body.
// Every output of the command is read back: stdout, stderr and the run directory's files.
const CLI = fileURLToPath(new URL('../verdict.ts', import.meta.url));

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}
function cli(args: string[], env: Record<string, string> = {}, nodeOptions: string[] = []): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeOptions, CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', CI: 'true', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every file of the run directory the command wrote into `out`, by name. */
async function runFiles(out: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const e of await readdir(out, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && !e.name.endsWith('.gz')) files[e.name] = await readFile(join(e.parentPath, e.name), 'utf8');
  }
  return files;
}

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { 'content-type': 'application/json', 'x-app-version': 'v1', ...headers }).end(JSON.stringify(body));
const METRICS = '# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\nhttp_requests_total{route="/"} 3\n';

/** The license API's answers where a test does not replace them. */
const wellBehaved: Handler = (req, _body, res) => {
  if (req.url === '/health/ready') return json(res, 200, { status: 'ready', checks: { database: 'ok' } });
  if (req.url === '/health/live') return json(res, 200, { status: 'ok' });
  if (req.url === '/metrics')
    return res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'x-app-version': 'v1' }).end(METRICS);
  if (!req.headers.authorization) return json(res, 401, { error: { code: 'UNAUTHENTICATED', message: 'no token' } });
  return json(res, 401, { error: { code: 'INVALID_TOKEN', message: 'bad token' } });
};

describe('verdict smoke against a hostile service', () => {
  let server: Server;
  let url: string;
  let handler: Handler = wellBehaved;
  let out: string;
  let token: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => handler(req, body, res));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    out = await mkdtemp(join(tmpdir(), 'verdict-hostile-'));
    token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('smoke-hostile')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(randomBytes(32));
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => server?.close(() => r()));
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('a token the service reflects in a 500 body reaches no output, not even in part (issue 19 item 9)', async () => {
    // The reviewer's server: `500 upstream error; request had Authorization: <header>`, padded so that
    // a 160-character cut of the body lands 20 characters into the token's signature.
    const header = 'Authorization: Bearer ';
    const sigStart = token.lastIndexOf('.') + 1;
    const pad = 160 - 20 - header.length - sigStart;
    expect(pad).toBeGreaterThan(0);
    handler = (req, body, res) => {
      if (req.url!.startsWith('/api/') && req.headers.authorization === `Bearer ${token}`)
        return res
          .writeHead(500, { 'content-type': 'text/plain', 'x-app-version': 'v1' })
          .end(`${'u'.repeat(pad)}Authorization: ${req.headers.authorization} (request body ${body.length} bytes)`);
      return wellBehaved(req, body, res);
    };
    const dir = join(out, 'reflect');
    const r = await cli(['smoke', '--url', url, '--out', dir], { TEST_TOKEN: token });
    const j = await cli(['smoke', '--url', url, '--out', dir, '--json'], { TEST_TOKEN: token });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /heartbeat-unknown: POST \/api\/v1\/licenses\/heartbeat answered 500 u+Authorization: Bearer \[REDACTED\]/,
    );
    const files = await runFiles(dir);
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['verdict.json', 'junit.xml', 'summary.md', 'report.html']));
    const outputs: Record<string, string> = {
      stdout: r.stdout,
      stderr: r.stderr,
      'stdout --json': j.stdout,
      'stderr --json': j.stderr,
      ...files,
    };
    // Not the token, and no 8 consecutive characters of its signature (the rule redacts every run of 12;
    // the server reflected the token whole, so nothing at all may be left of it).
    const sig = token.slice(sigStart);
    const leaks = (text: string) =>
      [token, ...Array.from({ length: sig.length - 7 }, (_, i) => sig.slice(i, i + 8))].filter((p) => text.includes(p));
    for (const [name, text] of Object.entries(outputs)) expect({ name, leaks: leaks(text) }).toEqual({ name, leaks: [] });
    expect(files['verdict.json']).toContain('[REDACTED]');
  });

  it('what the service says cannot drive the terminal, forge lines or command CI, in any output (issue 19 item 10)', async () => {
    const ESC = '\x1b';
    const forged = 'redis\r\n[   0.1s] metrics: PASS forged\r\n::error::forged';
    const body = `${ESC}[31m::error::boom\r\n::add-mask::x\r\n##[error]old ${ESC}]0;title\x07 \u009b2J`;
    const session = `s-1\r\n::error::session${ESC}[2J`;
    const future = new Date(Date.now() + 600_000).toISOString();
    handler = (req, reqBody, res) => {
      const p = req.url!;
      if (p === '/health/ready')
        return json(res, 200, {
          status: 'ready',
          degraded: [`${ESC}]0;pwned\x07${ESC}[2J`, `${ESC}]52;c;ZWNobyBwd25lZA==\x07`, forged, '::add-mask::abc'],
        });
      if (p === '/metrics') return res.writeHead(500, { 'content-type': 'text/plain', 'x-app-version': 'v1' }).end(body);
      if (!req.headers.authorization) return wellBehaved(req, reqBody, res);
      if (req.headers.authorization !== `Bearer ${token}`) return wellBehaved(req, reqBody, res);
      if (p.endsWith('/acquire'))
        return json(res, 201, { session_id: session, expires_at: future, heartbeat_interval_seconds: 30 });
      if (p.endsWith('/heartbeat') && !reqBody.includes('s-1'))
        return json(res, 404, { error: { code: 'SESSION_NOT_FOUND', message: `no${ESC}[2J\n::error::x` } });
      return res.writeHead(500, { 'content-type': 'text/plain', 'x-app-version': 'v1' }).end(body);
    };
    const dir = join(out, 'inject');
    const r = await cli(['smoke', '--url', url, '--out', dir], { TEST_TOKEN: token });
    const j = await cli(['smoke', '--url', url, '--out', dir, '--json'], { TEST_TOKEN: token });
    expect(r.code).toBe(1);
    // What was said is still there to read, escaped: the evidence keeps its meaning.
    expect(r.stderr).toContain('ready: PASS GET /health/ready answered 200 {status: "ready"} (degraded: \\x1b]0;pwned\\x07');
    expect(r.stderr).toContain('\\x1b]52;c;ZWNobyBwd25lZA==\\x07');
    expect(r.stderr).toMatch(
      /cleanup seat verdict-smoke-\w+-1: FAILED release of session s-1\\r\\n::error::session\\x1b\[2J answered 500/,
    );
    const files = await runFiles(dir);
    const outputs: Record<string, string> = {
      stdout: r.stdout,
      stderr: r.stderr,
      'stdout --json': j.stdout,
      'stderr --json': j.stderr,
      ...files,
    };
    for (const [name, text] of Object.entries(outputs)) {
      // No control character but tab and line feed; no C1; no line that GitHub Actions reads as a command.
      expect({ name, controls: text.match(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g) ?? [] }).toEqual({ name, controls: [] });
      const commands = text.split('\n').filter((l) => /^\s*(::|##\[)/.test(l));
      expect({ name, commands }).toEqual({ name, commands: [] });
    }
    // Every progress line is one of ours (time-stamped); no forged PASS line anywhere.
    for (const line of r.stderr.split('\n').filter(Boolean)) expect(line).toMatch(/^\[\s*\d+\.\ds\] /);
    for (const text of Object.values(outputs)) expect(text).not.toMatch(/^\[\s*0\.1s\] metrics: PASS forged/m);
    // verdict.json as `jq -r` would print its strings: each on its own line, none a command.
    const strings: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') strings.push(v);
      else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
    };
    walk(JSON.parse(j.stdout));
    walk(JSON.parse(files['verdict.json']));
    for (const s of strings) {
      expect(s).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
      expect(s).not.toMatch(/^\s*(::|##\[)/);
    }
  });

  it('a 4 MiB deeply nested JSON answer is a clean FAIL of that check, in a 64 MiB heap (issue 19 item 11)', async () => {
    // The reviewer's body: readiness "ready" with degraded[] nested about two million deep. The old
    // client parsed it (1.33 GB) and the check died in Array.join with a RangeError; in a 64 MiB
    // heap the old code is killed outright (heap out of memory, exit 134).
    const levels = (4 * 1024 * 1024 - 40) / 2;
    const deep = `{"status":"ready","degraded":${'['.repeat(levels)}${']'.repeat(levels)}}`;
    handler = (req, body, res) =>
      req.url === '/health/ready'
        ? res.writeHead(200, { 'content-type': 'application/json', 'x-app-version': 'v1' }).end(deep)
        : wellBehaved(req, body, res);
    const dir = join(out, 'deep');
    const r = await cli(['smoke', '--url', url, '--read-only', '--out', dir, '--json'], {}, ['--max-old-space-size=64']);
    expect(r.stderr).not.toMatch(/RangeError|heap out of memory/);
    expect(r.code).toBe(1);
    const record = JSON.parse(r.stdout);
    const ready = record.checks[0].gates.find((g: { name: string }) => g.name === 'ready');
    expect(ready.verdict).toBe('FAIL');
    expect(ready.evidence).toMatch(
      /^GET \/health\/ready answered 200 but not \{status: "ready"\}: \(the body is 4\.0 MiB of JSON, over the 1\.0 MiB a check parses: not parsed\) \{"status":"ready","degraded":\[\[\[/,
    );
    // The other checks ran and passed: one hostile answer costs one check, not the run.
    expect(
      record.checks[0].gates.filter((g: { verdict: string }) => g.verdict !== 'PASS').map((g: { name: string }) => g.name),
    ).toEqual(['ready']);
  });

  it('a token under 8 characters is not redacted, and the command says so instead of crashing (issue 22)', async () => {
    handler = wellBehaved;
    const dir = join(out, 'short');
    const r = await cli(['smoke', '--url', url, '--out', dir, '--json'], { TEST_TOKEN: 'x' });
    expect(r.stderr).not.toMatch(/TypeError|Cannot read properties/);
    expect(r.stderr).toMatch(/warning: the token is 1 character long: values under 8 characters are not redacted/);
    expect(r.code).toBe(1);
    const record = JSON.parse(r.stdout);
    expect(record.verdict).toBe('FAIL');
    expect(JSON.stringify(record)).not.toContain('[REDACTED]');
    expect(record.checks[0].gates.find((g: { name: string }) => g.name === 'heartbeat-unknown').evidence).toMatch(
      /the token was refused/,
    );
  });
});

describe('verdict smoke --url on a port fetch refuses (issue 22)', () => {
  let out: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'verdict-badport-'));
  });
  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it.each<[string, Record<string, string>]>([
    ['1', { TEST_TOKEN: 'x' }],
    ['6000', { TEST_TOKEN: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiYWRwb3J0In0.c2lnbmF0dXJlLW9mLWEtdGVzdC10b2tlbg' }],
    ['6665', {}],
  ])('port %s: ERROR (exit 3) naming the blocked port and why, no stack trace', async (port, env) => {
    const args = ['smoke', '--url', `http://127.0.0.1:${port}`, '--out', out, ...(env.TEST_TOKEN ? [] : ['--read-only'])];
    const r = await cli(args, { ...env });
    expect(r.stderr).not.toMatch(/TypeError|Cannot read properties|\n\s+at /);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(
      new RegExp(
        `^ERROR {2}cannot reach http://127\\.0\\.0\\.1:${port}/health/ready: BAD_PORT \\(port ${port} is on the Fetch standard's list of blocked ports \\("bad ports"\\), which Node's fetch \\(undici\\) refuses to connect to`,
      ),
    );
    expect(r.stdout).toMatch(/metrics: not run: cannot reach/);
  });
});
