import { describe, expect, it } from 'vitest';
import { Ledger, Outcome } from './ledger.ts';
import { perSecondSeries } from './series.ts';

describe('perSecondSeries', () => {
  it('counts a request re-based a fraction of a µs before the origin (a merged agent ledger) in second 0', () => {
    const l = new Ledger(0);
    const name = l.names.id('GET /');
    const early = l.add(-0.0004, 0, name, 0);
    l.markStarted(early, 0.1, 0);
    l.finish(early, 2.5, Outcome.succeeded, 200, 0, 0, 0, 0);
    const later = l.add(1500, 1500, name, 1);
    l.markStarted(later, 1500.1, 0);
    l.finish(later, 2100, Outcome.failed, 503, 0, 0, 0, 0);
    const s = perSecondSeries(l);
    expect(s.map((x) => [x.second, x.scheduled, x.succeeded, x.failed])).toEqual([
      [0, 1, 1, 0],
      [1, 1, 0, 0],
      [2, 0, 0, 1],
    ]);
  });
});
