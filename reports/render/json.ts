/**
 * verdict.json: the run record as pretty JSON, and the schema check every writer and reader goes
 * through (reports/schema/verdict-v1.schema.json, JSON Schema 2020-12, checked with ajv).
 *
 * What is checked is the record *as it will be read back*: `JSON.parse(JSON.stringify(record))`.
 * A NaN or an Infinity in memory is still a `number` to a validator but becomes `null` in the file,
 * so checking the object itself would let a file the schema rejects be written.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { RunRecord } from '../run-record.ts';
import type { ReportRenderer } from './renderer.ts';
import { safeDeep } from '../../lib/safe-text.ts';

export const SCHEMA_PATH = new URL('../schema/verdict-v1.schema.json', import.meta.url);

let compiled: ValidateFunction | undefined;
function validator(): ValidateFunction {
  if (!compiled) {
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as object;
    compiled = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);
  }
  return compiled;
}

export interface SchemaProblem {
  /** JSON pointer into the record, e.g. `/checks/0/gates/1/verdict` (empty for the root). */
  path: string;
  message: string;
}

export type ValidationResult = { ok: true; record: RunRecord } | { ok: false; problems: SchemaProblem[] };

function problems(errors: ErrorObject[] | null | undefined): SchemaProblem[] {
  return (errors ?? []).map((e) => {
    let message = e.message ?? e.keyword;
    if (e.keyword === 'additionalProperties') message += `: ${(e.params as { additionalProperty: string }).additionalProperty}`;
    if (e.keyword === 'enum')
      message += `: ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    return { path: e.instancePath, message };
  });
}

/** Checks a value (a record in memory, or parsed verdict.json) against the verdict/v1 schema. */
export function validateRunRecord(value: unknown): ValidationResult {
  let roundTripped: unknown;
  try {
    roundTripped = JSON.parse(JSON.stringify(value));
  } catch (err) {
    return { ok: false, problems: [{ path: '', message: `not serialisable as JSON: ${(err as Error).message}` }] };
  }
  const validate = validator();
  if (validate(roundTripped)) return { ok: true, record: roundTripped as RunRecord };
  return { ok: false, problems: problems(validate.errors) };
}

/** A record that does not match the schema: a bug in whoever built it, never a verdict. */
export class InvalidRunRecordError extends Error {
  readonly problems: SchemaProblem[];
  constructor(problems: SchemaProblem[], what = 'run record') {
    const shown = problems
      .slice(0, 20)
      .map((p) => `  ${p.path || '(root)'}: ${p.message}`)
      .join('\n');
    const more = problems.length > 20 ? `\n  ... and ${problems.length - 20} more` : '';
    super(`${what} does not match the verdict/v1 schema (reports/schema/verdict-v1.schema.json):\n${shown}${more}`);
    this.name = 'InvalidRunRecordError';
    this.problems = problems;
  }
}

/** The record as it will be written (round-tripped through JSON), or throws InvalidRunRecordError. */
export function assertValidRunRecord(value: unknown, what?: string): RunRecord {
  const r = validateRunRecord(value);
  if (!r.ok) throw new InvalidRunRecordError(r.problems, what);
  return r.record;
}

/**
 * verdict.json's text: two-space indentation, a final newline. Validates first. Every string passes
 * the output sanitiser (lib/safe-text.ts): `jq -r .headline` in a CI step prints it raw.
 */
export function renderJson(record: RunRecord): string {
  return JSON.stringify(assertValidRunRecord(safeDeep(record)), null, 2) + '\n';
}

/** verdict.json in the run directory (the record comes validated and sanitised: written as it is). */
export const jsonReport: ReportRenderer<'json'> = {
  format: 'json',
  file: 'verdict.json',
  render: (record) => JSON.stringify(record, null, 2) + '\n',
};
