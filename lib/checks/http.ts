/**
 * The suites' HTTP client: one request at a time, each bounded in time and in the size of what it
 * reads, each recorded (method, path, status, duration, the app-version header) for the run record.
 * It never retries (a retry is the suite runner's decision, and it is reported) and never records
 * request headers, so a bearer token cannot reach a report through it.
 *
 * What it reads from a service under test is bounded: at most `maxBodyBytes` (4 MiB) of a body, and
 * only a body of at most {@link MAX_JSON_CHARS} characters nested at most {@link MAX_JSON_DEPTH}
 * deep is parsed as JSON (`jsonProblem` says why another was not), so a hostile answer costs the
 * run a few MiB, not gigabytes, and no check meets a structure too deep to walk.
 *
 * A request that gets no answer because the server cannot be reached (refused, unresolvable name,
 * unreachable network, TLS failure) throws {@link UnreachableError}: the suite reports ERROR (we
 * could not look), never PASS and never FAIL. A server that accepts the connection but does not
 * answer in time is reachable and slow: that is {@link RequestTimeoutError}, a FAIL of the check.
 */
import { errorCode } from '../load/error-class.ts';

export interface HttpExchange {
  /** Epoch ms when the request was sent. */
  at: number;
  method: string;
  /** Path and query (never the origin's credentials: URLs with credentials are refused). */
  path: string;
  /** HTTP status, 0 when no answer arrived. */
  status: number;
  durationMs: number;
  /** The value of each response header the client was asked to keep (e.g. x-app-version), lower-case names. */
  headers: Record<string, string | null>;
  /** Why there was no answer (`ECONNREFUSED`, `timeout`, ...), or null. */
  error: string | null;
  /** The check that sent it (set by the suite runner). */
  check: string | null;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  /** The body as text (cut at the client's size limit; `truncated` says so). */
  text: string;
  truncated: boolean;
  durationMs: number;
  /** JSON.parse(text), or undefined when the body is not JSON or was not parsed (see `jsonProblem`). */
  json: unknown;
  /** Why a body that looks like JSON was not parsed (too large, too deep, cut), or null. */
  jsonProblem: string | null;
}

/** Bodies longer than this many characters are not parsed as JSON (a service's JSON answers are a few hundred). */
export const MAX_JSON_CHARS = 1024 * 1024;
/** JSON nested deeper than this is not parsed: nothing the checks read is more than a few levels deep. */
export const MAX_JSON_DEPTH = 64;

const mib = (n: number) => (n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

/**
 * How deep `text` nests arrays and objects (outside strings), counting only up to `limit + 1`: the
 * scan stops as soon as the limit is passed, so it costs one pass over the text at most.
 */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max && (max = depth) > limit) return max;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/**
 * The body parsed as JSON within the bounds, or why not: `{json: undefined, problem}` for a body
 * that looks like JSON but is cut, too large or too deep; `{json: undefined, problem: null}` for one
 * that is not JSON at all.
 */
export function boundedJson(
  text: string,
  truncated: boolean,
  limits: { maxChars?: number; maxDepth?: number } = {},
): { json: unknown; problem: string | null } {
  const maxChars = limits.maxChars ?? MAX_JSON_CHARS;
  const maxDepth = limits.maxDepth ?? MAX_JSON_DEPTH;
  const start = /^\s*[[{]/.test(text.slice(0, 64));
  if (start && truncated)
    return { json: undefined, problem: `the body was cut at ${mib(text.length)} (the most a check reads): not parsed as JSON` };
  if (start && text.length > maxChars)
    return {
      json: undefined,
      problem: `the body is ${mib(text.length)} of JSON, over the ${mib(maxChars)} a check parses: not parsed`,
    };
  if (start) {
    const depth = jsonDepth(text, maxDepth);
    if (depth > maxDepth)
      return {
        json: undefined,
        problem: `the body is JSON nested more than ${maxDepth} levels deep (${mib(text.length)}): not parsed`,
      };
  }
  try {
    return { json: JSON.parse(text), problem: null };
  } catch (err) {
    return { json: undefined, problem: start ? `the body is not valid JSON: ${(err as Error).message.slice(0, 120)}` : null };
  }
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as JSON (content-type application/json). */
  body?: unknown;
  /** Default: the client's timeout. */
  timeoutMs?: number;
}

/** The server could not be reached at all: no verdict about it is possible. */
export class UnreachableError extends Error {
  override name = 'UnreachableError';
  readonly url: string;
  readonly code: string;
  constructor(url: string, code: string, detail: string) {
    super(`cannot reach ${url}: ${code}${detail && detail !== code ? ` (${detail})` : ''}`);
    this.url = url;
    this.code = code;
  }
}

/** The server was reached but broke the exchange (reset, closed mid-answer): a failure of what answered. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
  readonly url: string;
  readonly code: string;
  constructor(url: string, code: string, detail: string) {
    super(`${url}: the connection failed mid-exchange: ${code}${detail && detail !== code ? ` (${detail})` : ''}`);
    this.url = url;
    this.code = code;
  }
}

/** The server accepted the request but did not answer within the time allowed. */
export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError';
  readonly url: string;
  readonly timeoutMs: number;
  constructor(url: string, timeoutMs: number) {
    super(`no answer from ${url} within ${timeoutMs} ms`);
    this.url = url;
    this.timeoutMs = timeoutMs;
  }
}

/** Connection-level failures that mean "we could not reach the server" (not "it answered badly"). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'EPROTO',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export interface HttpClientOptions {
  /** Base URL of the service (http or https, no credentials). */
  baseUrl: string;
  /** Per-request timeout. Default 10 s. */
  timeoutMs?: number;
  /** Most bytes of a body read. Default 4 MiB. */
  maxBodyBytes?: number;
  /** Response headers recorded per exchange (lower-case). */
  recordHeaders?: string[];
  /** The run's signal: aborts a request in flight. */
  signal?: AbortSignal;
  /** Called with every exchange as it ends. */
  onExchange?: (e: HttpExchange) => void;
  /**
   * Applied to every body (before it is parsed, cut or quoted) and every recorded header value as
   * they are read: a service that reflects the bearer token hands back `[REDACTED]` (see `./redact.ts`).
   */
  redact?: (s: string) => string;
}

/** Parses and checks a base URL; throws a message naming the fix (a usage error for the CLI). */
export function parseBaseUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`"${raw}" is not a URL (example: https://api.example.com or http://127.0.0.1:30080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new Error(`${u.protocol} is not supported: use an http:// or https:// URL`);
  if (u.username || u.password) throw new Error('put no credentials in the URL: pass the token with --token or TEST_TOKEN');
  if (u.search || u.hash)
    throw new Error(
      `give the service's base URL without a query or fragment (e.g. ${u.origin}${u.pathname === '/' ? '' : u.pathname})`,
    );
  return u;
}

export class HttpClient {
  readonly baseUrl: string;
  readonly exchanges: HttpExchange[] = [];
  readonly #timeoutMs: number;
  readonly #maxBody: number;
  readonly #keep: string[];
  readonly #signal?: AbortSignal;
  readonly #onExchange?: (e: HttpExchange) => void;
  readonly #redact: (s: string) => string;
  /** The check whose requests these are (set by the runner). */
  check: string | null = null;

  constructor(o: HttpClientOptions) {
    this.baseUrl = parseBaseUrl(o.baseUrl).toString().replace(/\/$/, '');
    this.#timeoutMs = o.timeoutMs ?? 10_000;
    this.#maxBody = o.maxBodyBytes ?? 4 * 1024 * 1024;
    this.#keep = (o.recordHeaders ?? []).map((h) => h.toLowerCase());
    this.#signal = o.signal;
    this.#onExchange = o.onExchange;
    this.#redact = o.redact ?? ((s) => s);
  }

  /** A client for another base URL (e.g. a pod address) sharing this one's record and settings. */
  withBase(baseUrl: string): HttpClient {
    const c = new HttpClient({
      baseUrl,
      timeoutMs: this.#timeoutMs,
      maxBodyBytes: this.#maxBody,
      recordHeaders: this.#keep,
      signal: this.#signal,
      redact: this.#redact,
      onExchange: (e) => {
        this.exchanges.push(e);
        this.#onExchange?.(e);
      },
    });
    c.check = this.check;
    return c;
  }

  /**
   * Sends one request to `path` (relative to the base URL) and reads the answer. Throws
   * UnreachableError when nothing answered, RequestTimeoutError when the answer took too long,
   * and the signal's reason when the run was aborted.
   */
  async request(path: string, o: RequestOptions = {}): Promise<HttpResponse> {
    const method = o.method ?? (o.body === undefined ? 'GET' : 'POST');
    const url = this.baseUrl + path;
    const timeoutMs = o.timeoutMs ?? this.#timeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), timeoutMs);
    const signal = this.#signal ? AbortSignal.any([this.#signal, timeout.signal]) : timeout.signal;
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) headers['content-type'] ??= 'application/json';
    const at = Date.now();
    const t0 = performance.now();
    const record = (status: number, h: Headers | null, error: string | null) => {
      const e: HttpExchange = {
        at,
        method,
        path,
        status,
        durationMs: performance.now() - t0,
        error,
        check: this.check,
        headers: Object.fromEntries(
          this.#keep.map((k) => {
            const v = h?.get(k);
            return [k, v == null ? null : this.#redact(v)];
          }),
        ),
      };
      this.exchanges.push(e);
      this.#onExchange?.(e);
      return e;
    };
    try {
      const res = await fetch(url, {
        method,
        headers,
        signal,
        redirect: 'manual',
        body: o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body),
      });
      const read = await readLimited(res, this.#maxBody);
      const text = this.#redact(read.text);
      const truncated = read.truncated;
      const e = record(res.status, res.headers, null);
      const { json, problem } = boundedJson(text, truncated);
      return { status: res.status, headers: res.headers, text, truncated, durationMs: e.durationMs, json, jsonProblem: problem };
    } catch (err) {
      if (this.#signal?.aborted) {
        record(0, null, 'aborted');
        throw this.#signal.reason ?? err;
      }
      if (timeout.signal.aborted) {
        record(0, null, 'timeout');
        throw new RequestTimeoutError(url, timeoutMs);
      }
      const blocked = blockedPort(err, url);
      if (blocked) {
        record(0, null, 'BAD_PORT');
        throw new UnreachableError(url, 'BAD_PORT', blocked);
      }
      const code = errorCode(err);
      record(0, null, code);
      const detail = String((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message ?? err);
      if (UNREACHABLE.has(code)) throw new UnreachableError(url, code, detail);
      throw new ConnectionError(url, code, detail);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Node's fetch (undici) refuses, without trying, the ports the Fetch standard blocks ("bad ports":
 * 1, 7, 9, ..., 6000, 6665-6669, ...), with a bare `TypeError: fetch failed` caused by "bad port".
 * Nothing can be reached there by fetch, whatever listens: the user must be told that, not that a
 * connection failed.
 */
function blockedPort(err: unknown, url: string): string | null {
  const cause = (err as { cause?: unknown })?.cause;
  const said = cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : '';
  if (!(err instanceof TypeError) || !/^bad port$/i.test(said)) return null;
  const u = new URL(url);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return (
    `port ${port} is on the Fetch standard's list of blocked ports ("bad ports"), which Node's fetch (undici) ` +
    `refuses to connect to whatever listens there: serve or port-forward the service on another port`
  );
}

async function readLimited(res: Response, max: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: '', truncated: false };
  // A fetch body is a stream of bytes.
  const reader: ReadableStreamDefaultReader<Uint8Array> = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.byteLength > max) {
      chunks.push(value.subarray(0, max - n));
      n = max;
      truncated = true;
      await reader.cancel().catch(() => {});
      break;
    }
    chunks.push(value);
    n += value.byteLength;
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated };
}
