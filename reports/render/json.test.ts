import { describe, expect, it } from 'vitest';
import { errorRun, everyCauseRun, noRequestsRun, podKillRun, rolloutPassRun } from '../testing/synthetic.ts';
import { readFileSync } from 'node:fs';
import { FAILURE_CAUSES } from '../run-record.ts';
import { InvalidRunRecordError, SCHEMA_PATH, assertValidRunRecord, renderJson, validateRunRecord } from './json.ts';

describe('verdict.json and its schema', () => {
  it('every synthetic record matches reports/schema/verdict-v1.schema.json', () => {
    for (const make of [podKillRun, rolloutPassRun, everyCauseRun, noRequestsRun, errorRun]) {
      const r = validateRunRecord(make().record);
      expect(r.ok ? [] : r.problems).toEqual([]);
    }
  });

  it("the schema's cause enum is the cause registry's list, in rule order (lib/evidence/causes.ts CAUSE_RULES)", () => {
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8'));
    expect(
      schema.$defs.cause.enum,
      `reports/schema/verdict-v1.schema.json $defs.cause.enum must be ${JSON.stringify(FAILURE_CAUSES)}`,
    ).toEqual(FAILURE_CAUSES);
  });

  it('renders pretty JSON that parses back to the same record', () => {
    const { record } = podKillRun();
    const text = renderJson(record);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).toContain('\n  "schema": "verdict/v1",\n');
    expect(JSON.parse(text)).toEqual(record);
  });

  it('names every problem with its JSON pointer', () => {
    const { record } = podKillRun();
    const bad = structuredClone(record) as unknown as Record<string, any>;
    bad.verdict = 'GREEN';
    bad.checks[0].gates[0].verdict = 'OK';
    bad.checks[0].failures[0].cause = 'gremlins';
    delete bad.checks[0].requests.dropped;
    bad.extra = 1;
    const r = validateRunRecord(bad);
    expect(r.ok).toBe(false);
    const paths = r.ok ? [] : r.problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['/verdict', '/checks/0/gates/0/verdict', '/checks/0/failures/0/cause', '/checks/0/requests', '']),
    );
    expect(() => assertValidRunRecord(bad)).toThrow(InvalidRunRecordError);
    expect(() => assertValidRunRecord(bad)).toThrow(
      /\/checks\/0\/gates\/0\/verdict: must be equal to one of the allowed values: "PASS", "FAIL", "INCONCLUSIVE", "ERROR"/,
    );
  });

  it('checks what will be written: a NaN (written as null) where a number is required is refused', () => {
    const { record } = podKillRun();
    record.checks[0].latency!.p99 = Number.NaN;
    const r = validateRunRecord(record);
    expect(r.ok ? [] : r.problems).toEqual([{ path: '/checks/0/latency/p99', message: 'must be number' }]);
  });
});
