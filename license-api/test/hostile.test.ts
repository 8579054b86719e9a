import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';

/** A request as raw bytes, so the corpus can hold what fetch refuses to send. */
interface RawCase {
  name: string;
  bytes: Buffer;
}
interface Reply {
  status: number;
  headers: string;
  body: string;
}

function rawRequest(port: number, bytes: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no reply within 5 s'));
    }, 5000);
    s.on('data', (d) => {
      chunks.push(d);
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = /content-length: (\d+)/i.exec(text.slice(0, end));
      if (len && text.length >= end + 4 + Number(len[1])) s.end();
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, headers: text.slice(0, end), body: end >= 0 ? text.slice(end + 4) : '' });
    });
    s.write(bytes);
  });
}

function post(path: string, body: string | Buffer, headers: Record<string, string>): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const h = { host: 'localhost', 'content-length': String(b.length), connection: 'close', ...headers };
  const head = `POST ${path} HTTP/1.1\r\n${Object.entries(h)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

function buildCorpus(token: string): RawCase[] {
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const corpus: RawCase[] = [];
  const paths = ['/api/v1/licenses/acquire', '/api/v1/licenses/heartbeat', '/api/v1/licenses/release'];
  const badBodies = [
    '',
    '{',
    '}',
    '{"license_key":',
    '{"a":1,}',
    "{'license_key':'x'}",
    'null',
    'true',
    '0',
    '"str"',
    '[]',
    '[1,2,3]',
    'NaN',
    '{"license_key": NaN}',
    '{"session_id": undefined}',
    '\uFEFF{"session_id":"x"}',
    '{"session_id":"x"}garbage',
    '['.repeat(5000) + ']'.repeat(5000),
    '{"a":'.repeat(3000) + '1' + '}'.repeat(3000),
    '{"session_id":"\\ud800"}',
  ];
  const badValues: unknown[] = [
    null,
    1,
    -1,
    1e308,
    true,
    [],
    {},
    [1],
    { $gt: '' },
    '',
    ' ',
    'x'.repeat(300),
    'a\u0000b',
    'tab\there',
    'ünïcødé',
    "' OR 1=1 --",
    '"; DROP TABLE licenses; --',
    '../../etc/passwd',
    '<script>alert(1)</script>',
    '${jndi:ldap://x}',
  ];
  for (const p of paths) {
    for (const b of badBodies) corpus.push({ name: `${p} body ${JSON.stringify(b.slice(0, 30))}`, bytes: post(p, b, auth) });
    for (const v of badValues) {
      const body = p.endsWith('acquire') ? { license_key: v, hardware_id: v } : { session_id: v };
      corpus.push({ name: `${p} value ${JSON.stringify(v)?.slice(0, 30)}`, bytes: post(p, JSON.stringify(body), auth) });
    }
    corpus.push({ name: `${p} missing fields`, bytes: post(p, '{}', auth) });
    corpus.push({
      name: `${p} extra field`,
      bytes: post(p, JSON.stringify({ license_key: 'TEST-KEY', hardware_id: 'h', session_id: 's', admin: true }), auth),
    });
    corpus.push({ name: `${p} __proto__`, bytes: post(p, '{"__proto__":{"admin":true},"session_id":"x"}', auth) });
    corpus.push({
      name: `${p} constructor`,
      bytes: post(p, '{"constructor":{"prototype":{"x":1}},"license_key":"k","hardware_id":"h"}', auth),
    });
    corpus.push({ name: `${p} oversized`, bytes: post(p, JSON.stringify({ session_id: 'x'.repeat(40_000) }), auth) });
    for (const ct of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'application/json; charset=latin-99',
    ]) {
      corpus.push({ name: `${p} content-type ${ct}`, bytes: post(p, '{"session_id":"x"}', { ...auth, 'content-type': ct }) });
    }
    corpus.push({ name: `${p} gzip garbage`, bytes: post(p, Buffer.from('not gzip'), { ...auth, 'content-encoding': 'gzip' }) });
    corpus.push({
      name: `${p} gzip bomb-ish`,
      bytes: post(p, gzipSync(Buffer.alloc(2_000_000, 32)), { ...auth, 'content-encoding': 'gzip' }),
    });
    corpus.push({ name: `${p} br encoding`, bytes: post(p, '{}', { ...auth, 'content-encoding': 'br' }) });
    corpus.push({ name: `${p} unknown encoding`, bytes: post(p, '{}', { ...auth, 'content-encoding': 'x-evil' }) });
    for (const a of [
      'Bearer',
      'Bearer  two-spaces',
      `Bearer ${'a'.repeat(9000)}`,
      'Bearer a.b.c',
      'bearer lower',
      'Bearer \u00ff\u00fe',
      `Bearer ${token}x`,
    ]) {
      corpus.push({ name: `${p} auth ${a.slice(0, 20)}`, bytes: post(p, '{"session_id":"x"}', { ...auth, authorization: a }) });
    }
    for (const m of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'FOO']) {
      corpus.push({
        name: `${m} ${p}`,
        bytes: Buffer.from(`${m} ${p} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\nconnection: close\r\n\r\n`),
      });
    }
  }
  const rawLines = [
    'GARBAGE\r\n\r\n',
    'GET / HTTP/9.9\r\n\r\n',
    'GET /health/live HTTP/1.1\r\nbad header line\r\n\r\n',
    'GET /%E0%A4%A HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET /% HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET /../../etc/passwd HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET /health/%2e%2e/metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET /api/v1/licenses/acquire%00 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
    `GET /health/live HTTP/1.1\r\nhost: x\r\nx-big: ${'b'.repeat(20_000)}\r\nconnection: close\r\n\r\n`,
    'POST /api/v1/licenses/acquire HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\nconnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
    'POST /api/v1/licenses/acquire HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 7\r\nconnection: close\r\n\r\n{}{}{}',
    'POST /api/v1/licenses/acquire HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\nconnection: close\r\n\r\n',
    'POST /api/v1/licenses/acquire HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\nconnection: close\r\n\r\n0\r\n\r\n',
    'GET /health/ready?x=1&x=2&x[a]=3 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET /metrics?format=../../ HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET http://evil.example/health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET /health/live HTTP/1.1\r\nhost: x\r\nx-request-id: ../../\u0001\r\nconnection: close\r\n\r\n',
  ];
  rawLines.forEach((l, i) =>
    corpus.push({ name: `raw ${i} ${JSON.stringify(l.slice(0, 40))}`, bytes: Buffer.from(l, 'latin1') }),
  );
  return corpus;
}

describe('hostile and malformed requests', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
  });

  it('answers at least 200 hostile requests without a single 5xx, in JSON, and stays healthy', async () => {
    const corpus = buildCorpus(api.token);
    expect(corpus.length).toBeGreaterThanOrEqual(200);
    const port = Number(new URL(api.url).port);
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    for (const c of corpus) {
      const r = await rawRequest(port, c.bytes);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status === 0 || r.status >= 500) {
        problems.push(`${c.name}: status ${r.status}`);
        continue;
      }
      if (r.status >= 400 && r.status !== 405) {
        let code: unknown;
        try {
          code = JSON.parse(r.body).error?.code;
        } catch {
          /* not JSON */
        }
        if (typeof code !== 'string') problems.push(`${c.name}: ${r.status} without a JSON error body: ${r.body.slice(0, 80)}`);
      }
      if (/at .*\.(ts|js):\d+/.test(r.body)) problems.push(`${c.name}: stack trace in body`);
    }
    expect(problems).toEqual([]);
    // The corpus is mostly bad input: most answers must be 4xx, not accidental successes.
    const fourxx = [...statuses].filter(([s]) => s >= 400 && s < 500).reduce((n, [, c]) => n + c, 0);
    expect(fourxx).toBeGreaterThan(corpus.length * 0.9);
    expect((await fetch(`${api.url}/health/live`)).status).toBe(200);
    expect((await fetch(`${api.url}/health/ready`)).status).toBe(200);
    const ok = await api.post('/api/v1/licenses/acquire', { license_key: 'TEST-KEY', hardware_id: 'after-corpus' });
    expect(ok.status).toBe(201);
  });
});

describe('a request without Host (issue 19, item 7)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
  });

  it('HTTP/1.1 without Host gets 400 with the JSON error body (not the bare 400 of Node), and the connection is closed', async () => {
    const port = Number(new URL(api.url).port);
    for (const raw of [
      'GET /health/live HTTP/1.1\r\n\r\n',
      'GET /metrics HTTP/1.1\r\nConnection: keep-alive\r\n\r\n',
      `POST /api/v1/licenses/acquire HTTP/1.1\r\nauthorization: Bearer ${api.token}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}`,
    ]) {
      const r = await rawRequest(port, Buffer.from(raw, 'latin1'));
      expect([raw.slice(0, 20), r.status, JSON.parse(r.body || 'null')?.error?.code]).toEqual([
        raw.slice(0, 20),
        400,
        'BAD_REQUEST',
      ]);
      expect(JSON.parse(r.body).error.message).toMatch(/Host/);
      expect(r.headers).toMatch(/\r\nconnection: close/i);
      expect(r.headers).toMatch(/\r\ncontent-type: application\/json/i);
    }
    // HTTP/1.0 needs no Host.
    expect((await rawRequest(port, Buffer.from('GET /health/live HTTP/1.0\r\n\r\n', 'latin1'))).status).toBe(200);
  });
});

describe('request header timeout', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ HEADERS_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await api?.[Symbol.asyncDispose]();
  });

  it('a client that does not finish its headers in time gets 408 REQUEST_TIMEOUT (not 400) and is closed', async () => {
    const port = Number(new URL(api.url).port);
    const t0 = Date.now();
    // Partial headers, then silence: rawRequest waits up to 5 s for the answer.
    const r = await rawRequest(port, Buffer.from('POST /api/v1/licenses/heartbeat HTTP/1.1\r\nhost: x\r\ncontent-ty', 'latin1'));
    expect(r.status).toBe(408);
    expect(JSON.parse(r.body).error.code).toBe('REQUEST_TIMEOUT');
    expect(r.headers).toMatch(/\r\nconnection: close/i);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });
});
