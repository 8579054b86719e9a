import { describe, expect, it } from 'vitest';
import { ErrorClass } from './error-class.ts';
import { Interner, Ledger, LEDGER_BYTES_PER_ROW, Outcome } from './ledger.ts';

describe('Ledger', () => {
  it('stores rows column-wise across chunks and reads them back', () => {
    const l = new Ledger(0);
    const name = l.names.id('acquire');
    const n = 40_000; // crosses chunk boundaries
    for (let i = 0; i < n; i++) {
      if (i % 10 === 9) {
        l.addDropped(i / 2, i / 2 + 0.1, name, i);
        continue;
      }
      const row = l.add(i / 2, i / 2 + 0.1, name, i);
      l.markStarted(row, i / 2 + 0.2, i % 32);
      const ok = i % 7 !== 0;
      l.finish(
        row,
        i / 2 + 3,
        ok ? Outcome.succeeded : Outcome.failed,
        ok ? 200 : 503,
        ok ? 0 : ErrorClass.http_5xx,
        0,
        l.servedBy.id(`pod-${i % 3}`),
        l.appVersions.id('1.2.0'),
      );
    }
    expect(l.length).toBe(n);
    const t = l.tally();
    expect(t.pending).toBe(0);
    expect(t.succeeded + t.failed + t.dropped).toBe(n);
    expect(t.dropped).toBe(n / 10);
    expect(l.row(35_001)).toMatchObject({
      row: 35_001,
      name: 'acquire',
      outcome: 'succeeded',
      scheduledAt: 17_500.5,
      startedAt: 17_500.7,
      endedAt: 17_503.5,
      status: 200,
      error: null,
      servedBy: 'pod-0',
      appVersion: '1.2.0',
      connection: 35_001 % 32,
    });
    expect(l.row(19)).toMatchObject({ outcome: 'dropped', startedAt: null, endedAt: null, status: 0, connection: null });
    expect(l.row(14)).toMatchObject({ outcome: 'failed', status: 503, error: 'http_5xx' });
    expect(l.servedBy.size).toBe(3);
  });

  it('stays under 200 bytes per request', () => {
    expect(LEDGER_BYTES_PER_ROW).toBeLessThanOrEqual(200);
    const l = new Ledger(0);
    for (let i = 0; i < 100_000; i++) l.add(i, i, 1, i);
    expect(l.memory().bytesPerRequest).toBeLessThan(200);
  });

  it('writes NDJSON with wall-clock times', () => {
    const l = new Ledger(1000);
    const row = l.add(1, 2, l.names.id('GET /'), 0);
    l.markStarted(row, 3, 0);
    l.finish(row, 4, Outcome.failed, 0, ErrorClass.other_side_closed, l.errorCodes.id('UND_ERR_SOCKET'), 0, 0);
    const line = JSON.parse(l.toNdjsonLine(row));
    expect(line).toMatchObject({
      name: 'GET /',
      outcome: 'failed',
      error: 'other_side_closed',
      error_code: 'UND_ERR_SOCKET',
      served_by: null,
    });
    expect(line.ended_at - line.scheduled_at).toBeCloseTo(3, 3);
    expect(line.scheduled_at).toBeCloseTo(l.epochMs(1), 3);
    expect(l.epochMs(0)).toBe(l.origin.epochMs);
  });
});

describe('Interner', () => {
  it('maps strings to small ids, 0 meaning absent', () => {
    const i = new Interner(5);
    expect(i.id(undefined)).toBe(0);
    expect(i.id('a')).toBe(1);
    expect(i.id('b')).toBe(2);
    expect(i.id('a')).toBe(1);
    expect(i.value(2)).toBe('b');
    expect(i.id('c')).toBe(3);
    // Full: every further value shares one overflow id instead of growing without bound.
    expect(i.value(i.id('d'))).toBe('(too many distinct values)');
  });
});

describe('ledger rows across processes', () => {
  it('an NDJSON line read back on another origin is the same row', async () => {
    const { Ledger, rowFromNdjson } = await import('./ledger.ts');
    const a = new Ledger();
    const name = a.names.id('acquire');
    const ok = a.add(1.5, 1.75, name, 7);
    a.markStarted(ok, 2.25, 3);
    a.finish(ok, 9.125, 1, 201, 0, 0, a.servedBy.id('pod-a'), a.appVersions.id('v2'), 40123);
    a.describe(
      ok,
      a.kinds.id('POST /api/v1/licenses/heartbeat {session_id:string}'),
      a.creatorId({ version: 'v1', pod: 'pod-b' }),
    );
    a.markConnection(ok, 2, 1234.5);
    expect(a.row(ok)).toMatchObject({
      kind: 'POST /api/v1/licenses/heartbeat {session_id:string}',
      createdBy: { version: 'v1', pod: 'pod-b' },
      connectionUse: 'reused',
      connectionAgeMs: 1234.5,
    });
    const failed = a.add(3, 3, name, 8);
    a.finish(failed, 10_003, 2, 0, 4, a.errorCodes.id('VERDICT_REQUEST_TIMEOUT'), 0, 0);
    a.addDropped(4, 4.5, name, 9);
    const b = new Ledger(a.origin.perfMs - 1000);
    for (let r = 0; r < a.length; r++) b.append(rowFromNdjson(JSON.parse(a.toNdjsonLine(r)), b.origin.epochMs));
    for (let r = 0; r < a.length; r++) {
      const x = a.row(r),
        y = b.row(r);
      for (const k of ['scheduledAt', 'issuedAt', 'startedAt', 'endedAt'] as const) {
        if (x[k] === null) expect(y[k]).toBeNull();
        // NDJSON carries wall-clock ms rounded to the microsecond; at epoch magnitude (~1.8e12 ms)
        // a double's own step is 0.00024 ms: a row read back is within 2 µs (rounding plus those steps).
        else expect(Math.abs(y[k]! - 1000 - x[k]!)).toBeLessThanOrEqual(0.002);
      }
      expect({ ...y, scheduledAt: 0, issuedAt: 0, startedAt: 0, endedAt: 0 }).toEqual({
        ...x,
        scheduledAt: 0,
        issuedAt: 0,
        startedAt: 0,
        endedAt: 0,
      });
    }
    expect(() => rowFromNdjson({ outcome: 'maybe' }, 0)).toThrow(/outcome/);
  });
});
