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

/** A dependency (Postgres, Redis) failed or timed out: the client may retry later. */
export class DependencyError extends ApiError {
  constructor(dependency: string, cause?: unknown) {
    super(503, 'DEPENDENCY_UNAVAILABLE', `${dependency} is unavailable; retry later`, { 'Retry-After': '1' });
    this.cause = cause;
  }
}

export const errorBody = (code: string, message: string) => ({ error: { code, message } });
