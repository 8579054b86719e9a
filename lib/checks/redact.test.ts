import { describe, expect, it } from 'vitest';
import { MIN_SECRET_LENGTH, redactDeep, redactor, SECRET_RUN, shortSecretWarning } from './redact.ts';

const JWT =
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzbW9rZS1ob3N0aWxlIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8';
const SIG = JWT.split('.')[2];

describe('redactor', () => {
  const redact = redactor([JWT]);

  it('redacts the whole token, and every run of 12 or more of its characters wherever it stands', () => {
    expect(redact(`Bearer ${JWT}.`)).toBe('Bearer [REDACTED].');
    // The reviewer's case: a body cut at 160 characters before redaction left the signature's first 16 characters.
    expect(redact(`...; request had Authorization: Bearer ${JWT.slice(0, JWT.indexOf(SIG) + 16)}`)).toBe(
      '...; request had Authorization: Bearer [REDACTED]',
    );
    expect(redact(`sig ${SIG.slice(7, 7 + SECRET_RUN)} end`)).toBe('sig [REDACTED] end');
    expect(redact(`middle of the payload: ${JWT.slice(40, 70)}!`)).toBe('middle of the payload: [REDACTED]!');
    // Two separate pieces stay two; pieces that touch become one.
    expect(redact(`${SIG.slice(0, 14)} and ${SIG.slice(20, 40)}`)).toBe('[REDACTED] and [REDACTED]');
    expect(redact(`${SIG.slice(0, 14)}${SIG.slice(14, 30)}`)).toBe('[REDACTED]');
  });

  it('leaves fewer than 12 consecutive characters of it, and text that only looks like it, alone', () => {
    expect(redact(`x${SIG.slice(0, SECRET_RUN - 1)}y`)).toBe(`x${SIG.slice(0, SECRET_RUN - 1)}y`);
    const other = 'eyJhbGciOiJSUzI1NiJ9 is another header; the connection failed mid-exchange: ECONNRESET';
    expect(redact(other)).toBe(other);
  });

  it('secrets of 8 to 11 characters: the whole value only; under 8: not at all, and said so', () => {
    expect(redactor(['s3cr3t-8'])('token=s3cr3t-8; s3cr3t-')).toBe('token=[REDACTED]; s3cr3t-');
    const short = redactor(['x']);
    expect(short('the connection failed mid-exchange')).toBe('the connection failed mid-exchange');
    // The run record keeps its field names (the old redactor renamed `exchanges` and crashed the smoke).
    expect(redactDeep({ exchanges: [{ text: 'x' }] }, short)).toEqual({ exchanges: [{ text: 'x' }] });
    expect(shortSecretWarning(['x'])).toMatch(
      new RegExp(`^the token is 1 character long: values under ${MIN_SECRET_LENGTH} characters are not redacted`),
    );
    expect(shortSecretWarning(['1234567'])).toMatch(/is 7 characters long/);
    expect(shortSecretWarning([JWT])).toBeNull();
    expect(shortSecretWarning([])).toBeNull();
  });

  it('redacts keys and values of a deep copy', () => {
    expect(redactDeep({ [JWT]: [`x${JWT}y`, 3, null] }, redact)).toEqual({ '[REDACTED]': ['x[REDACTED]y', 3, null] });
  });

  it('a body of several MiB is redacted in one pass (no quadratic blow-up)', () => {
    const body = `${'lorem ipsum dolor sit amet '.repeat(100_000)}${JWT}${'0123456789abcdef'.repeat(100_000)}`;
    const out = redact(body);
    expect(out).not.toContain(SIG.slice(0, SECRET_RUN));
    expect(out.length).toBe(body.length - JWT.length + '[REDACTED]'.length);
  });
});
