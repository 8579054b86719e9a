import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricGates } from '../../reports/metric-gates.ts';
import { GMP_SCOPE, gmpSource } from './gmp.ts';

// Google Managed Prometheus cannot run here, so both remote services it needs are wire-level fakes
// on loopback: an OAuth 2.0 token-exchange endpoint (RFC 8693, what google-auth-library calls for an
// `external_account` credential, the workload identity federation file ADC reads) and a server that
// answers the Prometheus HTTP API under GMP's path only to the bearer token the first one issued.
// The credential file and its subject token are generated here; nothing secret is committed.

const PROJECT = 'verdict-test-1';
const PATH = `/v1/projects/${PROJECT}/location/global/prometheus`;
let dir: string;
let credentials: string;
let subjectToken: string;
let issued: string;
let gmpToken: string;
let sts: Server;
let gmp: Server;
let stsUrl: string;
let gmpUrl: string;
const stsRequests: URLSearchParams[] = [];
const gmpRequests: Array<{ path: string; authorization: string | undefined; query: string }> = [];

const window = { from: new Date(Date.now() - 300_000), to: new Date() };

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<[Server, string]> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return [s, `http://127.0.0.1:${(s.address() as AddressInfo).port}`];
}

const read = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let b = '';
    req.on('data', (d) => {
      b += d;
    });
    req.on('end', () => resolve(b));
  });

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

/** Prometheus' answer to one query, by what it asks for: v1 1000 requests (2 of them 5xx), v2 1000 (40 5xx). */
function answer(query: string, start: number, end: number, step: number) {
  const at = (v: number) => [[end, String(v)]];
  const byVersion = (v1: number, v2: number) => [
    { metric: { version: 'v1' }, values: at(v1) },
    { metric: { version: 'v2' }, values: at(v2) },
  ];
  let result: unknown[];
  if (query.startsWith('sum(increase(')) {
    const values = [];
    for (let t = start; t <= end + 1e-9; t += step) values.push([t, query.includes('5..') ? '7' : '200']);
    result = [{ metric: {}, values }];
  } else if (query.includes('count_over_time')) result = [{ metric: {}, values: at(600) }];
  else if (query.includes('histogram_quantile') && query.includes('le, version')) result = byVersion(0.02, 0.021);
  else if (query.includes('histogram_quantile')) result = [{ metric: {}, values: at(0.025) }];
  else if (query.includes('5..')) result = byVersion(2, 40);
  else if (query.includes('4..')) result = [];
  else result = byVersion(1000, 1000);
  return { status: 'success', data: { resultType: 'matrix', result } };
}

// A safety net: should anything in google-auth-library look for the GCE metadata server, it finds
// a closed loopback port instead of sending a packet off this machine.
const savedEnv = {
  GCE_METADATA_HOST: process.env.GCE_METADATA_HOST,
  METADATA_SERVER_DETECTION: process.env.METADATA_SERVER_DETECTION,
};

beforeAll(async () => {
  process.env.GCE_METADATA_HOST = '127.0.0.1:9';
  process.env.METADATA_SERVER_DETECTION = 'none';
  dir = await mkdtemp(join(tmpdir(), 'verdict-gmp-'));
  subjectToken = randomBytes(24).toString('base64url');
  issued = `ya29.${randomBytes(24).toString('base64url')}`;
  gmpToken = issued;
  [sts, stsUrl] = await listen((req, res) => {
    void (async () => {
      const form = new URLSearchParams(await read(req));
      stsRequests.push(form);
      if (req.method !== 'POST' || req.url !== '/v1/token') return json(res, 404, { error: 'not_found' });
      if (
        form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange' ||
        form.get('subject_token') !== subjectToken
      ) {
        return json(res, 400, { error: 'invalid_grant', error_description: 'subject token rejected' });
      }
      json(res, 200, {
        access_token: issued,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: 3600,
      });
    })();
  });
  [gmp, gmpUrl] = await listen((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    gmpRequests.push({
      path: url.pathname,
      authorization: req.headers.authorization,
      query: url.searchParams.get('query') ?? '',
    });
    if (req.headers.authorization !== `Bearer ${gmpToken}`) {
      return json(res, 401, {
        error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' },
      });
    }
    if (url.pathname !== `${PATH}/api/v1/query_range`)
      return json(res, 404, { status: 'error', errorType: 'not_found', error: url.pathname });
    const p = (k: string) => Number(url.searchParams.get(k));
    json(res, 200, answer(url.searchParams.get('query') ?? '', p('start'), p('end'), p('step')));
  });
  await writeFile(join(dir, 'subject-token'), subjectToken);
  credentials = join(dir, 'external-account.json');
  await writeFile(
    credentials,
    JSON.stringify({
      type: 'external_account',
      audience: `//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/ci/providers/verdict`,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: `${stsUrl}/v1/token`,
      credential_source: { file: join(dir, 'subject-token') },
    }),
  );
});

afterAll(async () => {
  for (const [k, v] of Object.entries(savedEnv))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  for (const s of [sts, gmp])
    if (s) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** ADC as a deployment gets it: GOOGLE_APPLICATION_CREDENTIALS names the credential file (this file's worker only). */
async function withAdc<T>(file: string, f: () => Promise<T>): Promise<T> {
  const before = process.env.GOOGLE_APPLICATION_CREDENTIALS;
  process.env.GOOGLE_APPLICATION_CREDENTIALS = file;
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    else process.env.GOOGLE_APPLICATION_CREDENTIALS = before;
  }
}

const measure = (file = credentials) =>
  withAdc(file, () =>
    gmpSource({ project: PROJECT, baseUrl: gmpUrl + PATH, stepSeconds: 60, timeoutMs: 10_000 }).measure(window),
  );

describe('gmp source: the Prometheus API behind a Google access token', () => {
  it('gets a token through ADC (GOOGLE_APPLICATION_CREDENTIALS: an external-account file) and measures with it', async () => {
    gmpToken = issued;
    gmpRequests.length = 0;
    const m = await measure();
    if (m.status !== 'ok') throw new Error(m.message);
    expect(m).toMatchObject({ source: 'gmp', total: 2000, failed: 42, failed4xx: 0, p99Ms: 25 });
    expect(m.byVersion).toEqual({
      v1: { total: 1000, failed: 2, failed4xx: 0, p99Ms: 20 },
      v2: { total: 1000, failed: 40, failed4xx: 0, p99Ms: 21 },
    });
    expect(m.evidence.samples).toBe(600);
    expect(m.evidence.points.requests).toHaveLength(5);
    // Every query went to GMP's path with the token the exchange issued, and the exchange asked for read access to monitoring.
    expect(gmpRequests).toHaveLength(8);
    expect(gmpRequests.every((r) => r.path === `${PATH}/api/v1/query_range` && r.authorization === `Bearer ${issued}`)).toBe(
      true,
    );
    expect(stsRequests.at(-1)?.get('scope')).toContain(GMP_SCOPE);
    const { gates, verdict } = metricGates([m], {
      maxErrorRate: 0.05,
      minRequests: 100,
      p99Ms: 100,
      compare: { baseline: 'v1', candidate: 'v2', minRequestsPerVersion: 100 },
    });
    expect(gates.map((g) => `${g.name}=${g.verdict}`)).toEqual([
      'gmp: error rate=PASS',
      'gmp: p99 latency=PASS',
      'gmp: v2 vs v1 error rate=FAIL',
      'gmp: v2 vs v1 p99=PASS',
    ]);
    expect(verdict).toBe('FAIL');
  });

  it('a token GMP does not accept: error naming gmp, the query and what the credentials need; never PASS', async () => {
    gmpToken = 'another-token';
    try {
      const m = await measure();
      expect(m.status).toBe('error');
      expect(m.message).toMatch(
        new RegExp(
          `^gmp: HTTP 401 from ${gmpUrl}${PATH} for query \`.+\`: UNAUTHENTICATED: Request had invalid authentication credentials\\.; ` +
            `the Application Default Credentials need roles/monitoring\\.viewer on project ${PROJECT}$`,
        ),
      );
      expect(metricGates([m], { maxErrorRate: 0.05, minRequests: 100 }).verdict).toBe('ERROR');
    } finally {
      gmpToken = issued;
    }
  });

  it('credentials the token endpoint refuses: error before any query, naming gmp and the fix', async () => {
    const bad = join(dir, 'bad-subject-token');
    await writeFile(bad, 'not-the-subject-token');
    const file = join(dir, 'bad-external-account.json');
    await writeFile(
      file,
      JSON.stringify({
        type: 'external_account',
        audience: '//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/ci/providers/verdict',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${stsUrl}/v1/token`,
        credential_source: { file: bad },
      }),
    );
    gmpRequests.length = 0;
    const m = await measure(file);
    expect(m.status).toBe('error');
    expect(m.message).toMatch(
      /^gmp: cannot authenticate to http:\/\/127\.0\.0\.1:\d+\/v1\/projects\/verdict-test-1\/location\/global\/prometheus \(no access token from Application Default Credentials: .*invalid_grant.*run `gcloud auth application-default login`.*\); no query was sent/,
    );
    expect(gmpRequests).toHaveLength(0);
    expect(metricGates([m], { maxErrorRate: 0.05, minRequests: 100 }).verdict).toBe('ERROR');
  });
});
