import { describe, expect, it } from 'vitest';
import { runLoad, type LoadOptions } from './engine.ts';
import { closeKeepAliveUnderRequest, neverRespond, ok, refusingUrl, reset, startTestServer, status } from './testing/servers.ts';

// Each case drives a real local server that misbehaves in one way and checks that every failed
// request lands in the ledger with the right class, and that nothing was retried behind our back.

const closed = (extra: Partial<LoadOptions> = {}): Omit<LoadOptions, 'url'> => ({
  executor: { executor: 'constant-vus', vus: 2, duration: '300ms' },
  connections: 2,
  maxRequests: 40,
  timeout: 250,
  ...extra,
});

function classes(r: Awaited<ReturnType<typeof runLoad>>) {
  return r.summary.errors;
}

describe('error classes', () => {
  it('connection refused', async () => {
    const r = await runLoad({ url: await refusingUrl(), ...closed() });
    expect(r.summary.counts.failed).toBe(r.summary.counts.scheduled);
    expect(classes(r)).toEqual({ conn_refused: r.summary.counts.scheduled });
    expect(r.ledger.row(0)).toMatchObject({ outcome: 'failed', error: 'conn_refused', errorCode: 'ECONNREFUSED', status: 0 });
  });

  it('connection reset', async () => {
    await using server = await startTestServer(reset());
    const r = await runLoad({ url: server.url, ...closed() });
    expect(classes(r)).toEqual({ conn_reset: r.summary.counts.scheduled });
    expect(server.requests()).toBe(r.summary.counts.scheduled); // no silent retry
  });

  it('"other side closed": a keep-alive socket closed under a request, never retried', async () => {
    await using server = await startTestServer(closeKeepAliveUnderRequest());
    const r = await runLoad({
      url: server.url,
      ...closed({ executor: { executor: 'constant-vus', vus: 1, duration: '2s' }, connections: 1, maxRequests: 20 }),
    });
    // Each socket serves one request and is closed under the next: ok, fail, ok, fail, ...
    expect(r.summary.counts.scheduled).toBe(20);
    expect(r.summary.counts.succeeded).toBe(10);
    expect(classes(r)).toEqual({ other_side_closed: 10 });
    expect(r.ledger.row(1)).toMatchObject({ error: 'other_side_closed', errorCode: 'UND_ERR_SOCKET' });
    expect(server.requests()).toBe(20); // the server saw exactly what the ledger says was sent
  });

  it('timeout, counted from issue, for a request on the wire and for those waiting for a connection', async () => {
    await using server = await startTestServer(neverRespond());
    // Four VUs share one connection: one request is sent, three wait for the connection. The timeout
    // is far longer than the run, so each VU's one iteration ends after the run's duration even when
    // a busy machine fires the duration's timer late (at 200 ms, a late timer let VUs go round again).
    const r = await runLoad({
      url: server.url,
      executor: { executor: 'constant-vus', vus: 4, duration: '100ms' },
      connections: 1,
      timeout: 1000,
    });
    expect(r.summary.counts.scheduled).toBe(4);
    expect(classes(r)).toEqual({ timeout: 4 });
    const rows = [...r.ledger.rows()];
    for (const row of rows) {
      expect(row.endedAt! - row.issuedAt).toBeGreaterThanOrEqual(1000);
      expect(row.endedAt! - row.issuedAt).toBeLessThan(3000);
    }
    // The waiting ones timed out before a connection was free: never sent, and the ledger knows it.
    expect(rows.filter((row) => row.startedAt !== null)).toHaveLength(1);
    expect(server.requests()).toBe(1);
  });

  it('HTTP 5xx and 4xx, with the serving pod kept when its header is named', async () => {
    await using s503 = await startTestServer(status(503));
    const r5 = await runLoad({ url: s503.url, ...closed(), identityHeaders: { backend: 'x-served-by' } });
    expect(classes(r5)).toEqual({ http_5xx: r5.summary.counts.scheduled });
    expect(r5.summary.statuses).toEqual({ 503: r5.summary.counts.scheduled });
    expect(r5.summary.servedBy).toEqual({ 'pod-err': r5.summary.counts.scheduled });
    await using s404 = await startTestServer(status(404));
    const r4 = await runLoad({ url: s404.url, ...closed() });
    expect(classes(r4)).toEqual({ http_4xx: r4.summary.counts.scheduled });
    // The engine knows no app: without identity headers it records no backend.
    expect(r4.summary.servedBy).toEqual({});
  });

  it('an expected 4xx is a success', async () => {
    await using s = await startTestServer(status(409));
    const r = await runLoad({
      url: s.url,
      ...closed(),
      scenario: { flows: [{ name: 'acquire', steps: [{ name: 'acquire', path: '/', expectStatus: [201, 409] }] }] },
    });
    expect(r.summary.counts.failed).toBe(0);
    expect(r.summary.statuses).toEqual({ 409: r.summary.counts.scheduled });
  });

  it('TLS failure', async () => {
    await using server = await startTestServer(ok());
    const r = await runLoad({ url: server.url.replace('http:', 'https:'), ...closed() });
    expect(classes(r)).toEqual({ tls: r.summary.counts.scheduled });
    expect(r.ledger.row(0).errorCode).toMatch(/SSL|TLS|EPROTO/);
  });

  it('a status the step did not expect', async () => {
    await using s = await startTestServer(status(204));
    const r = await runLoad({
      url: s.url,
      ...closed(),
      scenario: { flows: [{ name: 'f', steps: [{ name: 'get', path: '/', expectStatus: [200] }] }] },
    });
    expect(classes(r)).toEqual({ unexpected_status: r.summary.counts.scheduled });
  });

  it('a failing check', async () => {
    await using server = await startTestServer(ok());
    const r = await runLoad({
      url: server.url,
      ...closed(),
      scenario: { flows: [{ name: 'f', steps: [{ name: 'get', path: '/', check: (res) => res.text() === 'nope' }] }] },
    });
    expect(classes(r)).toEqual({ check_failed: r.summary.counts.scheduled });
  });
});

describe('scenario mistakes', () => {
  it('a step that throws, or builds an invalid request, fails its rows without stalling the run', async () => {
    await using server = await startTestServer(ok());
    const throwing = await runLoad({
      url: server.url,
      executor: { executor: 'constant-vus', vus: 2, duration: '300ms' },
      maxRequests: 1000,
      scenario: {
        flows: [
          {
            name: 'f',
            steps: [
              {
                name: 'bad',
                path: () => {
                  throw new Error('scenario bug');
                },
              },
            ],
          },
        ],
      },
    });
    expect(throwing.summary.counts.failed).toBe(throwing.summary.counts.scheduled);
    expect(throwing.ledger.row(0)).toMatchObject({ error: 'other', errorCode: 'SCENARIO_ERROR' });
    expect(throwing.summary.run.elapsedMs).toBeLessThan(5000);
    const invalid = await runLoad({
      url: server.url,
      executor: { executor: 'constant-vus', vus: 2, duration: '300ms' },
      maxRequests: 1000,
      scenario: { flows: [{ name: 'f', steps: [{ name: 'bad', path: '/', headers: { 'x-bad': 'line\nbreak' } }] }] },
    });
    expect(invalid.summary.counts.failed).toBe(invalid.summary.counts.scheduled);
    expect(invalid.ledger.row(0).errorCode).toBe('UND_ERR_INVALID_ARG');
    expect(server.requests()).toBe(0);
  });
});
