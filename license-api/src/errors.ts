/** An error with an HTTP status and a stable machine-readable code, rendered as `{error: {code, message}}`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/**
 * A dependency (Postgres, Redis, the JWKS endpoint) failed (`DEPENDENCY_UNAVAILABLE`) or did not
 * answer before the request's deadline (`DEPENDENCY_TIMEOUT`): 503 with `Retry-After`, the client
 * may retry. `cause` is kept for the log line (never sent to the client).
 */
export class DependencyError extends ApiError {
  readonly dependency: string;
  readonly timedOut: boolean;
  constructor(dependency: string, cause?: unknown, opts: { timedOut?: boolean; retryAfterSeconds?: number } = {}) {
    const timedOut = opts.timedOut ?? false;
    super(
      503,
      timedOut ? 'DEPENDENCY_TIMEOUT' : 'DEPENDENCY_UNAVAILABLE',
      timedOut ? `${dependency} did not answer in time; retry later` : `${dependency} is unavailable; retry later`,
      { 'Retry-After': String(opts.retryAfterSeconds ?? 1) },
    );
    this.dependency = dependency;
    this.timedOut = timedOut;
    this.cause = cause;
  }
}

export const errorBody = (code: string, message: string) => ({ error: { code, message } });
