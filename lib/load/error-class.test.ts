import { describe, expect, it } from 'vitest';
import { classifyError, errorCode, ErrorClass } from './error-class.ts';

// The code and class of an error come from it or its causes (undici wraps socket errors), at most 4 deep.
const coded = (code: unknown, cause?: unknown, message = 'x') => Object.assign(new Error(message, { cause }), { code });

describe('errorCode', () => {
  it("is the first non-empty string code of the error or its causes, else the error's name", () => {
    expect(errorCode(coded('UND_ERR_SOCKET', coded('ECONNRESET')))).toBe('UND_ERR_SOCKET');
    expect(errorCode(coded('', coded(7, coded('ECONNRESET'))))).toBe('ECONNRESET');
    expect(errorCode(coded(1, coded(2, coded(3, coded(4, coded('TOO_DEEP'))))))).toBe('Error');
    expect(errorCode(new TypeError('no code'))).toBe('TypeError');
  });
  it('takes anything thrown', () => {
    expect(errorCode(null)).toBe('Error');
    expect(errorCode(undefined)).toBe('Error');
    expect(errorCode('boom')).toBe('Error');
    expect(errorCode({ code: 'ECONNREFUSED' })).toBe('ECONNREFUSED');
  });
});

describe('classifyError', () => {
  it("classifies by the codes of the error and its causes, then by undici's message", () => {
    expect(classifyError(coded('UND_ERR_SOCKET', coded('ECONNREFUSED')))).toBe(ErrorClass.conn_refused);
    expect(classifyError(coded('UND_ERR_SOCKET', undefined, 'other side closed'))).toBe(ErrorClass.other_side_closed);
    expect(classifyError(coded('X', coded('ERR_TLS_CERT_ALTNAME_INVALID')))).toBe(ErrorClass.tls);
    expect(classifyError(coded(1, coded(2, coded(3, coded(4, coded('ECONNRESET'))))))).toBe(ErrorClass.other);
    expect(classifyError(undefined)).toBe(ErrorClass.other);
    expect(classifyError('boom')).toBe(ErrorClass.other);
  });
});
