import { Router, type Request } from 'express';
import { z } from 'zod';
import { grants, type Principal } from '../auth.ts';
import type { Deadline } from '../deadline.ts';
import { ApiError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { EndState, LicenseStore } from './store.ts';

const printable = /^[\x21-\x7e]+$/;
const acquireBody = z.strictObject({
  license_key: z.string().min(1).max(128).regex(printable, 'printable ASCII without spaces'),
  hardware_id: z.string().min(1).max(256).regex(printable, 'printable ASCII without spaces'),
});
const sessionBody = z.strictObject({ session_id: z.string().min(1).max(128) });
/** The FAULT_REQUIRE_CLIENT_VERSION release's heartbeat: an incompatible change (old clients send no client_version). */
const heartbeatBodyV2 = z.strictObject({ session_id: z.string().min(1).max(128), client_version: z.string().min(1).max(64) });

/** Detector faults of the license routes (config FAULT_*); none is on in a real release. */
export interface RouteFaults {
  requireClientVersion?: boolean;
  sessionsInProcess?: boolean;
}

function parse<T>(schema: z.ZodType<T>, req: Request): T {
  if (!req.is('application/json')) {
    throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as Content-Type: application/json');
  }
  const r = schema.safeParse(req.body);
  if (!r.success) {
    const detail = r.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || 'body'}: ${i.message}`)
      .join('; ');
    throw new ApiError(400, 'INVALID_REQUEST', detail);
  }
  return r.data;
}

function ended(state: Extract<EndState, { ok: false }>): ApiError {
  switch (state.reason) {
    case 'not_found':
      return new ApiError(404, 'SESSION_NOT_FOUND', 'no such session');
    case 'released':
      return new ApiError(410, 'SESSION_RELEASED', 'this session was released; acquire a new one');
    case 'expired':
      return new ApiError(410, 'SESSION_EXPIRED', 'this session missed its heartbeats and expired; acquire a new one');
  }
}

/** Routes carry their full paths (`prefix` included) so metrics and logs see the whole template. */
export function licenseRoutes(
  prefix: string,
  store: LicenseStore,
  limiter: RateLimiter,
  metrics: Metrics,
  heartbeatIntervalSeconds: number,
  licensesClaimOptional = false,
  faults: RouteFaults = {},
): Router {
  const r = Router();
  /** FAULT_SESSIONS_IN_PROCESS: the sessions this process created (state not shared with other pods or versions). */
  const own = faults.sessionsInProcess ? new Set<string>() : null;
  const unknownElsewhere = (id: string) => own !== null && !own.has(id);
  const principal = (res: { locals: Record<string, unknown> }) => res.locals.principal as Principal;
  const who = (res: { locals: Record<string, unknown> }) => principal(res).subject;
  const deadline = (res: { locals: Record<string, unknown> }) => res.locals.deadline as Deadline;
  const notPermitted = (p: Principal, what: string) =>
    new ApiError(
      403,
      'LICENSE_NOT_PERMITTED',
      p.licenses === undefined
        ? 'the token grants no license: it has no licenses claim (a list of the license keys it may use, or ["*"])'
        : `the token does not grant ${what}`,
    );
  /** A session may be heartbeaten or released only with a token that grants its license. */
  const checkSessionLicense = async (res: { locals: Record<string, unknown> }, sessionId: string) => {
    const p = principal(res);
    if (p.licenses === '*' || (p.licenses === undefined && licensesClaimOptional)) return;
    if (p.licenses === undefined) throw notPermitted(p, 'this license');
    const key = await store.sessionLicense(sessionId, p.subject, deadline(res));
    // An unknown session is answered as such by the store.
    if (key !== undefined && !p.licenses.has(key)) throw notPermitted(p, "this session's license");
  };

  r.post(`${prefix}/acquire`, async (req, res) => {
    const body = parse(acquireBody, req);
    try {
      // Before anything is looked up: a key the token does not grant gets the same answer whether it exists or not.
      if (!grants(principal(res), body.license_key, licensesClaimOptional)) throw notPermitted(principal(res), 'this license');
      if (limiter.enabled) {
        // Made-up keys are counted per subject (one Redis key), existing ones per subject and license.
        if (!(await store.licenseExists(body.license_key, deadline(res)))) {
          await limiter.checkUnknown(who(res), deadline(res));
          throw new ApiError(404, 'LICENSE_NOT_FOUND', 'no license with this key');
        }
        await limiter.check(who(res), body.license_key, deadline(res));
      }
      const grant = await store.acquire(body.license_key, body.hardware_id, who(res), deadline(res));
      metrics.acquires.inc({ result: grant.created ? 'granted' : 'reused' });
      // The deadline answered already (503): the client will retry and get this session back (200).
      if (res.headersSent) return;
      own?.add(grant.sessionId);
      res.status(grant.created ? 201 : 200).json({
        session_id: grant.sessionId,
        expires_at: grant.expiresAt.toISOString(),
        heartbeat_interval_seconds: heartbeatIntervalSeconds,
      });
    } catch (err) {
      metrics.acquires.inc({ result: err instanceof ApiError ? err.code.toLowerCase() : 'error' });
      throw err;
    }
  });

  r.post(`${prefix}/heartbeat`, async (req, res) => {
    const body = faults.requireClientVersion ? parse(heartbeatBodyV2, req) : parse(sessionBody, req);
    if (unknownElsewhere(body.session_id)) throw ended({ ok: false, reason: 'not_found' });
    await checkSessionLicense(res, body.session_id);
    const state = await store.heartbeat(body.session_id, who(res), deadline(res));
    metrics.heartbeats.inc({ result: state.ok ? 'ok' : state.reason });
    if (res.headersSent) return;
    if (!state.ok) throw ended(state);
    res.json({ success: true, expires_at: state.expiresAt.toISOString() });
  });

  r.post(`${prefix}/release`, async (req, res) => {
    const body = parse(sessionBody, req);
    if (unknownElsewhere(body.session_id)) throw ended({ ok: false, reason: 'not_found' });
    await checkSessionLicense(res, body.session_id);
    const state = await store.release(body.session_id, who(res), deadline(res));
    metrics.releases.inc({ result: state.ok ? 'ok' : state.reason });
    if (res.headersSent) return;
    if (!state.ok && state.reason !== 'released') throw ended(state);
    // Releasing twice is not an error: a client that retried its release must not be told it failed.
    res.json({ success: true });
  });

  return r;
}
