import { createLocalJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { DependencyError } from './errors.ts';

const DEPENDENCY = 'the JWKS endpoint';

/** A key set answer larger than this is refused, as soon as that many bytes have come (a key set of dozens of keys is a few KB). */
export const JWKS_MAX_BYTES = 1024 * 1024;
/** How long one fetch of the key set may take. */
const FETCH_TIMEOUT_MS = 2000;
/** A token whose key is not in the set makes us refetch at most this often (a rotated-in key appears; a forged kid cannot make us hammer the endpoint). */
const UNKNOWN_KEY_COOLDOWN_MS = 30_000;
/** After a failed fetch, the next one waits this long at most (a failing endpoint is not asked on every request). */
const FAILED_FETCH_RETRY_MS = 5000;
/** Retry-After for a request refused because the key set could not be fetched. */
const RETRY_AFTER_SECONDS = 5;

export interface JwksOptions {
  url: string;
  /** The key set is refetched when it is older than this. */
  refreshMs: number;
  /**
   * While the endpoint fails, the last key set fetched keeps verifying tokens until it is this
   * old; after that every token whose key must come from the endpoint gets a 503.
   */
  staleMaxMs: number;
  /** The clock (tests move it). */
  now?: () => number;
  /**
   * Fault injection (FAULT_JWKS_FIRST_KEY_ONLY, for detector tests): keep only the first key of
   * each set fetched and verify every token against it, whatever its `kid`: a release that holds
   * one signing key at a time, which refuses the tokens of the other key while a rotation has both.
   */
  firstKeyOnly?: boolean;
}

type LocalSet = ReturnType<typeof createLocalJWKSet>;

/**
 * The verification keys from a JWKS endpoint, for jose's jwtVerify. What jose's createRemoteJWKSet
 * does not: a failure to get the keys is the endpoint's (503 `DEPENDENCY_UNAVAILABLE`, or
 * `DEPENDENCY_TIMEOUT`, with Retry-After), never the token's (401); the last good set keeps
 * verifying while the endpoint fails, up to `staleMaxMs`; an answer is read up to JWKS_MAX_BYTES
 * and no further. A set past `refreshMs` is refreshed in the background while it keeps serving.
 */
export class JwksKeys {
  private readonly opts: Required<JwksOptions>;
  private set: LocalSet | undefined;
  private fetchedAt = -Infinity;
  private failedAt = -Infinity;
  private lastError: DependencyError | undefined;
  private pending: Promise<void> | undefined;
  /** Fetches started (for tests). */
  fetches = 0;

  constructor(opts: JwksOptions) {
    this.opts = { now: Date.now, firstKeyOnly: false, ...opts };
  }

  /** The key for a token's header (jose's JWTVerifyGetKey). */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    const now = this.opts.now();
    const age = now - this.fetchedAt;
    if (!this.set || age >= this.opts.staleMaxMs) {
      // Nothing we may verify with: the answer depends on the endpoint.
      await this.refresh(now);
    } else if (age >= this.opts.refreshMs) {
      this.refresh(now).catch(() => {}); // keep serving the set meanwhile
    }
    const set = this.set!;
    try {
      return await set(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // A key we do not have may be a new one: ask the endpoint (a fetch under way, or a new one
      // if the set is older than the cooldown), and let a newer set answer.
      if (this.pending) await this.pending.catch(() => {});
      else if (this.opts.now() - this.fetchedAt >= UNKNOWN_KEY_COOLDOWN_MS) await this.refresh(this.opts.now()).catch(() => {});
      if (this.set !== set) return await this.set!(header, token);
      // The endpoint has failed since our set was fetched: it may know the key, we cannot tell.
      if (this.failedAt > this.fetchedAt) throw this.lastError ?? new DependencyError(DEPENDENCY);
      throw err;
    }
  };

  /** Fetches the set (one fetch at a time); throws the endpoint's failure as a DependencyError. */
  private refresh(now: number): Promise<void> {
    if (this.pending) return this.pending;
    // A fetch failed a moment ago: answer with that failure instead of asking again.
    if (now - this.failedAt < Math.min(FAILED_FETCH_RETRY_MS, this.opts.refreshMs) && this.lastError)
      return Promise.reject(this.lastError);
    this.fetches++;
    const p = this.fetchSet()
      .then(
        (set) => {
          this.set = set;
          this.fetchedAt = this.opts.now();
          this.lastError = undefined;
        },
        (err: DependencyError) => {
          this.failedAt = this.opts.now();
          this.lastError = err;
          throw err;
        },
      )
      .finally(() => {
        this.pending = undefined;
      });
    this.pending = p;
    return p;
  }

  private async fetchSet(): Promise<LocalSet> {
    const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS);
    const fail = (why: string, cause?: unknown) =>
      new DependencyError(DEPENDENCY, new Error(why, { cause }), { retryAfterSeconds: RETRY_AFTER_SECONDS });
    const timedOut = (cause: unknown) =>
      new DependencyError(DEPENDENCY, new Error(`no complete answer within ${FETCH_TIMEOUT_MS} ms`, { cause }), {
        timedOut: true,
        retryAfterSeconds: RETRY_AFTER_SECONDS,
      });
    let res: Response;
    try {
      res = await fetch(this.opts.url, {
        signal,
        redirect: 'manual',
        headers: { accept: 'application/json, application/jwk-set+json' },
      });
    } catch (err) {
      throw signal.aborted ? timedOut(err) : fail(`request failed: ${(err as Error).message}`, err);
    }
    try {
      if (res.status >= 300 && res.status < 400)
        throw fail(`answered ${res.status} (redirects are not followed: set JWT_JWKS_URL to the key set's own URL)`);
      if (res.status !== 200) throw fail(`answered ${res.status}`);
      const announced = Number(res.headers.get('content-length') ?? NaN);
      if (announced > JWKS_MAX_BYTES) throw fail(`answer of ${announced} bytes, more than ${JWKS_MAX_BYTES}`);
      const body = await readAtMost(res, JWKS_MAX_BYTES);
      if (body === undefined) throw fail(`answer larger than ${JWKS_MAX_BYTES} bytes`);
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch (err) {
        throw fail('answer is not JSON', err);
      }
      try {
        if (this.opts.firstKeyOnly) return firstKeyOnly(json as JSONWebKeySet);
        return createLocalJWKSet(json as JSONWebKeySet);
      } catch (err) {
        throw fail('answer is not a JSON Web Key Set', err);
      }
    } catch (err) {
      await res.body?.cancel().catch(() => {});
      if (err instanceof DependencyError) throw err;
      throw signal.aborted ? timedOut(err) : fail(`reading the answer failed: ${(err as Error).message}`, err);
    }
  }
}

/** The fault FAULT_JWKS_FIRST_KEY_ONLY: the set's first key, used for every token whatever its `kid`. */
function firstKeyOnly(set: JSONWebKeySet): LocalSet {
  const first = Array.isArray(set?.keys) ? set.keys[0] : undefined;
  const one = createLocalJWKSet({ keys: first ? [{ ...first, kid: undefined }] : [] });
  const verifyAll: (header?: JWSHeaderParameters, token?: FlattenedJWSInput) => ReturnType<LocalSet> = (header, token) =>
    one({ ...header, kid: undefined } as JWSHeaderParameters, token);
  return Object.assign(verifyAll, { jwks: () => one.jwks() });
}

/** The body as text, or undefined as soon as it passes `max` bytes (the rest is never read). */
async function readAtMost(res: Response, max: number): Promise<string | undefined> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  // A fetch body is a stream of bytes.
  const body: ReadableStream<Uint8Array> = res.body;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
