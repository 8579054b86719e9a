import type { NextFunction, Request, Response } from 'express';
import { errors, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { ApiError, DependencyError } from './errors.ts';
import { JwksKeys } from './jwks.ts';

export interface AuthOptions {
  secret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** A token's `exp` may be at most this far in the future (default 24 h). */
  maxLifetimeSeconds?: number;
  /** The JWKS is refetched when older than this (default 600). */
  jwksRefreshSeconds?: number;
  /** While the JWKS endpoint fails, the last key set fetched keeps verifying until it is this old (default 21,600). */
  jwksStaleMaxSeconds?: number;
  /** Fault injection (FAULT_JWKS_FIRST_KEY_ONLY): verify against the first key of the set only, whatever the token's `kid`. */
  jwksFirstKeyOnly?: boolean;
}

export interface Principal {
  subject: string;
  /**
   * The licenses the token grants (its `licenses` claim): every one (`'*'`), the keys named, or
   * none said (no claim: see JWT_LICENSES_CLAIM).
   */
  licenses: '*' | ReadonlySet<string> | undefined;
}

/** Whether `principal` may use the license `key`; `claimOptional`: a token without the claim may use every license. */
export function grants(principal: Principal, key: string, claimOptional: boolean): boolean {
  if (principal.licenses === undefined) return claimOptional;
  return principal.licenses === '*' || principal.licenses.has(key);
}

const MAX_LICENSES_IN_CLAIM = 1000;
const LICENSE_KEY = /^[\x21-\x7e]{1,128}$/;

/**
 * The `licenses` claim: a list of license keys (printable ASCII, at most 128 characters each, at
 * most 1,000), or `["*"]` for every license. Returns why it is unusable, or the licenses granted.
 */
export function parseLicensesClaim(claim: unknown): { problem: string } | { licenses: Principal['licenses'] } {
  if (claim === undefined) return { licenses: undefined };
  const problem = `token licenses claim must be a list of 1 to ${MAX_LICENSES_IN_CLAIM} license keys, or ["*"]`;
  if (!Array.isArray(claim) || claim.length === 0 || claim.length > MAX_LICENSES_IN_CLAIM) return { problem };
  if (!claim.every((k) => typeof k === 'string' && LICENSE_KEY.test(k))) return { problem };
  return { licenses: claim.includes('*') ? '*' : new Set(claim as string[]) };
}

const CLOCK_TOLERANCE_SECONDS = 5;
const MAX_SUBJECT_LENGTH = 256;

/**
 * Why `sub` cannot be a subject, or undefined when it can. The subject is stored and compared in
 * Postgres, so it must be text Postgres takes as it is: no control characters (NUL is refused by
 * Postgres outright), no lone surrogates and no U+FFFD (what invalid UTF-8 in the token decodes
 * to, so two different byte strings would become the same subject), at most 256 characters.
 */
export function subjectProblem(sub: unknown): string | undefined {
  if (typeof sub !== 'string' || sub.length === 0) return 'token has no usable subject (sub) claim';
  if (sub.length > MAX_SUBJECT_LENGTH) return `token subject (sub) is longer than ${MAX_SUBJECT_LENGTH} characters`;
  if (/[\u0000-\u001f\u007f-\u009f]/.test(sub)) return 'token subject (sub) contains control characters';
  if (!sub.isWellFormed() || sub.includes('\ufffd')) return 'token subject (sub) is not valid UTF-8 text';
  return undefined;
}

/**
 * Bearer JWT authentication. The accepted algorithms are pinned by key type (HS256 for a shared
 * secret, asymmetric ones for a JWKS), so a token cannot choose its own algorithm ("none",
 * or HS256 signed with a public key). Every token must expire (`exp` is required), and no later
 * than `maxLifetimeSeconds` from now: a token that never expires would be a permanent credential.
 * Its `licenses` claim, when present, must be well-formed (see parseLicensesClaim); which licenses
 * it grants is checked by the routes (see grants).
 */
export function bearerAuth(opts: AuthOptions) {
  const maxLifetime = opts.maxLifetimeSeconds ?? 86_400;
  const verifyOpts: JWTVerifyOptions = {
    issuer: opts.issuer,
    audience: opts.audience,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['exp'],
  };
  let key: Uint8Array | JWTVerifyGetKey;
  if (opts.secret) {
    key = new TextEncoder().encode(opts.secret);
    verifyOpts.algorithms = ['HS256'];
  } else if (opts.jwksUrl) {
    key = new JwksKeys({
      url: opts.jwksUrl,
      refreshMs: (opts.jwksRefreshSeconds ?? 600) * 1000,
      staleMaxMs: (opts.jwksStaleMaxSeconds ?? 21_600) * 1000,
      firstKeyOnly: opts.jwksFirstKeyOnly,
    }).getKey;
    verifyOpts.algorithms = ['RS256', 'PS256', 'ES256', 'EdDSA'];
  } else {
    throw new Error('bearerAuth needs a secret or a JWKS URL');
  }
  const cache = new VerifiedTokenCache(10_000, 60_000);
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization');
    const match = header ? /^Bearer ([A-Za-z0-9_.-]{1,8192})$/.exec(header) : null;
    if (!match) throw unauthorized('UNAUTHENTICATED', 'missing or malformed Authorization: Bearer <token> header');
    const cached = cache.get(match[1]);
    if (cached) {
      res.locals.principal = cached;
      next();
      return;
    }
    try {
      const { payload } =
        typeof key === 'function' ? await jwtVerify(match[1], key, verifyOpts) : await jwtVerify(match[1], key, verifyOpts);
      const problem = subjectProblem(payload.sub);
      if (problem) throw unauthorized('INVALID_TOKEN', problem);
      // jose checks iat's type, and its age only with maxTokenAge (which would make iat required).
      if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + CLOCK_TOLERANCE_SECONDS) {
        throw unauthorized('INVALID_TOKEN', "token is issued in the future (iat); check the issuer's clock");
      }
      // jose has checked that exp is present and not past.
      const exp = payload.exp as number;
      if (exp - Date.now() / 1000 > maxLifetime + CLOCK_TOLERANCE_SECONDS) {
        throw unauthorized('INVALID_TOKEN', `token expires more than ${maxLifetime} s from now; tokens must be short-lived`);
      }
      const claim = parseLicensesClaim(payload.licenses);
      if ('problem' in claim) throw unauthorized('INVALID_TOKEN', claim.problem);
      const principal: Principal = { subject: payload.sub as string, licenses: claim.licenses };
      cache.set(match[1], principal, exp * 1000);
      res.locals.principal = principal;
      next();
    } catch (err) {
      // A failure to get the keys (DependencyError, 503) is the endpoint's, never the token's.
      if (err instanceof ApiError) throw err;
      if (!(err instanceof errors.JOSEError)) throw new DependencyError('token verification', err);
      if (err instanceof errors.JWTExpired) throw unauthorized('TOKEN_EXPIRED', 'token has expired');
      if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'exp' && err.reason === 'missing') {
        throw unauthorized('INVALID_TOKEN', 'token has no expiry (exp) claim; every token must expire');
      }
      throw unauthorized('INVALID_TOKEN', 'token is not valid');
    }
  };
}

function unauthorized(code: string, message: string): ApiError {
  const challenge = code === 'UNAUTHENTICATED' ? 'Bearer' : 'Bearer error="invalid_token"';
  return new ApiError(401, code, message, { 'WWW-Authenticate': challenge });
}

/**
 * Tokens that verified recently, so that a client's every heartbeat does not pay for signature
 * verification. An entry lives until the token expires or `ttlMs` passes, whichever is first; only
 * successful verifications are cached, keyed by the exact token string.
 */
class VerifiedTokenCache {
  private readonly entries = new Map<string, { principal: Principal; until: number }>();
  private readonly max: number;
  private readonly ttlMs: number;
  constructor(max: number, ttlMs: number) {
    this.max = max;
    this.ttlMs = ttlMs;
  }

  get(token: string): Principal | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    if (e.until <= Date.now()) {
      this.entries.delete(token);
      return undefined;
    }
    return e.principal;
  }

  set(token: string, principal: Principal, expiresAt: number): void {
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(token, { principal, until: Math.min(expiresAt, Date.now() + this.ttlMs) });
  }
}
