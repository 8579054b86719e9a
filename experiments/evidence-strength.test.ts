import { describe, expect, it } from 'vitest';
import { evidenceStrength } from './evidence-strength.ts';
import type { CheckResult } from './runner.ts';

const check = (loads: Array<{ total: number; failed: number; control?: boolean }>): CheckResult => ({
  name: 'x',
  description: '',
  verdict: 'PASS',
  gates: [],
  error: null,
  startedAt: 0,
  endedAt: 1,
  evidence: {
    data: null,
    timeline: null as never,
    outages: [],
    startedAt: 0,
    endedAt: 1,
    loads: loads.map((l, i) => ({
      label: `l${i}`,
      control: l.control ?? false,
      result: null as never,
      joined: { total: l.total, failed: l.failed } as never,
    })),
  },
});

describe('evidence strength (verify-local)', () => {
  it('PASSes only when zero failures over enough requests bound the rate at 0.01 %', () => {
    const strong = evidenceStrength([check([{ total: 20_000, failed: 0 }]), check([{ total: 20_000, failed: 0 }])], 0.0001);
    expect(strong.verdict).toBe('PASS');
    expect(strong.gates[0].observed).toMatchObject({ total: 40_000, requests_needed: 38_411 });
    const weak = evidenceStrength([check([{ total: 2_466, failed: 0 }])], 0.0001);
    expect(weak.verdict).toBe('INCONCLUSIVE');
    expect(weak.gates[0].evidence).toMatch(/below 0\.16% .* short of the goal of 0\.010%, which needs 38411 requests/);
  });

  it('a control load of a broken release does not count, its failures neither', () => {
    const r = evidenceStrength(
      [
        check([
          { total: 30_000, failed: 0 },
          { total: 30_000, failed: 400, control: true },
        ]),
      ],
      0.0001,
    );
    expect(r.gates[0].observed).toMatchObject({ total: 30_000, failed: 0 });
    expect(r.verdict).toBe('INCONCLUSIVE');
    expect(evidenceStrength([check([{ total: 50_000, failed: 1 }])], 0.0001).verdict).toBe('FAIL');
    expect(evidenceStrength([], 0.0001).verdict).toBe('INCONCLUSIVE');
  });
});
