import type { NextFunction, Request, Response } from 'express';
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { ApiError, DependencyError } from './errors.ts';

export interface AuthOptions {
  secret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
}

export interface Principal { subject: string }

/**
 * Bearer JWT authentication. The accepted algorithms are pinned by key type (HS256 for a shared
 * secret, asymmetric ones for a JWKS), so a token cannot choose its own algorithm ("none",
 * or HS256 signed with a public key).
 */
export function bearerAuth(opts: AuthOptions) {
  const verifyOpts: JWTVerifyOptions = { issuer: opts.issuer, audience: opts.audience, clockTolerance: 5 };
  let key: Uint8Array | JWTVerifyGetKey;
  if (opts.secret) {
    key = new TextEncoder().encode(opts.secret);
    verifyOpts.algorithms = ['HS256'];
  } else if (opts.jwksUrl) {
    key = createRemoteJWKSet(new URL(opts.jwksUrl), { timeoutDuration: 2000, cooldownDuration: 30_000 });
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
      const { payload } = typeof key === 'function'
        ? await jwtVerify(match[1], key, verifyOpts)
        : await jwtVerify(match[1], key, verifyOpts);
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 256) {
        throw unauthorized('INVALID_TOKEN', 'token has no usable subject (sub) claim');
      }
      const principal: Principal = { subject: payload.sub };
      cache.set(match[1], principal, typeof payload.exp === 'number' ? payload.exp * 1000 : undefined);
      res.locals.principal = principal;
      next();
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (err instanceof errors.JWKSTimeout || !(err instanceof errors.JOSEError)) throw new DependencyError('the JWKS endpoint', err);
      const expired = err instanceof errors.JWTExpired;
      throw unauthorized(expired ? 'TOKEN_EXPIRED' : 'INVALID_TOKEN', expired ? 'token has expired' : 'token is not valid');
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
    if (e.until <= Date.now()) { this.entries.delete(token); return undefined; }
    return e.principal;
  }

  set(token: string, principal: Principal, expiresAt: number | undefined): void {
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(token, { principal, until: Math.min(expiresAt ?? Infinity, Date.now() + this.ttlMs) });
  }
}
