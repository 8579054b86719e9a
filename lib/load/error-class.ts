/**
 * What went wrong with one request, as a small integer for the ledger. The classes are the ones an
 * SRE reads a rollout failure in: the socket was refused, reset, closed under a request ("other side
 * closed"), the request timed out, TLS failed, or the server answered with an error status.
 */
export const ErrorClass = {
  none: 0,
  /** ECONNREFUSED: nothing listens (pod gone, port closed). */
  conn_refused: 1,
  /** ECONNRESET / EPIPE: the peer reset the connection. */
  conn_reset: 2,
  /** The server closed a keep-alive socket while a request was on it (undici "other side closed"). */
  other_side_closed: 3,
  /** No complete response within the request timeout (counted from when the request was issued). */
  timeout: 4,
  /** The TCP connection could not be established within the connect timeout. */
  connect_timeout: 5,
  /** TLS handshake or certificate failure. */
  tls: 6,
  /** An unexpected 5xx answer. */
  http_5xx: 7,
  /** An unexpected 4xx answer. */
  http_4xx: 8,
  /** An unexpected status outside 4xx/5xx (e.g. 3xx when only 200 was expected). */
  unexpected_status: 9,
  /** The status was expected but the scenario's check of the response returned false or threw. */
  check_failed: 10,
  /** The run was aborted (by the caller, a threshold, or the graceful-stop deadline) while in flight. */
  aborted: 11,
  /** Anything else (the error code is kept in the ledger's errorCode column). Names never fail here:
   * the target guard resolves the name once before the run and connections dial the address. */
  other: 12,
} as const;
export type ErrorClassName = keyof typeof ErrorClass;
export type ErrorClassId = (typeof ErrorClass)[ErrorClassName];

export const errorClassNames: readonly ErrorClassName[] = Object.keys(ErrorClass) as ErrorClassName[];

export function errorClassName(id: number): ErrorClassName {
  return errorClassNames[id] ?? 'other';
}

const TLS_CODES = new Set([
  'EPROTO',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
]);

type Caused = { code?: unknown; cause?: unknown } | null | undefined;

/** The string codes of the error and its causes, outermost first, at most 4 deep (undici wraps some socket errors). */
function codesOf(err: unknown): string[] {
  const codes: string[] = [];
  for (let e = err as Caused, depth = 0; e && depth < 4; e = e.cause as Caused, depth++)
    if (typeof e.code === 'string') codes.push(e.code);
  return codes;
}

/** The error's code, walking `cause` (undici wraps some socket errors). */
export function errorCode(err: unknown): string {
  return codesOf(err).find((c) => c !== '') ?? (err as Error)?.name ?? 'Error';
}

/** Classifies an error raised by undici or the socket layer. */
export function classifyError(err: unknown): ErrorClassId {
  const e = err as { code?: string; message?: string; cause?: unknown } | undefined;
  const codes = codesOf(e);
  const message = String(e?.message ?? '');
  for (const code of codes) {
    switch (code) {
      case 'ECONNREFUSED':
        return ErrorClass.conn_refused;
      case 'ECONNRESET':
      case 'EPIPE':
        return ErrorClass.conn_reset;
      case 'UND_ERR_CONNECT_TIMEOUT':
        return ErrorClass.connect_timeout;
      case 'UND_ERR_HEADERS_TIMEOUT':
      case 'UND_ERR_BODY_TIMEOUT':
      case 'ETIMEDOUT':
        return ErrorClass.timeout;
      case 'UND_ERR_ABORTED':
        return ErrorClass.aborted;
    }
    if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || TLS_CODES.has(code)) return ErrorClass.tls;
  }
  if (codes.includes('UND_ERR_SOCKET')) {
    if (/other side closed/i.test(message)) return ErrorClass.other_side_closed;
    if (/ECONNRESET|reset/i.test(message)) return ErrorClass.conn_reset;
  }
  if (/other side closed/i.test(message)) return ErrorClass.other_side_closed;
  return ErrorClass.other;
}

/** The class of an HTTP status the scenario did not expect. */
export function classifyStatus(status: number): ErrorClassId {
  if (status >= 500) return ErrorClass.http_5xx;
  if (status >= 400) return ErrorClass.http_4xx;
  return ErrorClass.unexpected_status;
}
