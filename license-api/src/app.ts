import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';
import { bearerAuth } from './auth.ts';
import type { Config } from './config.ts';
import { Deadline } from './deadline.ts';
import { ApiError, DependencyError, errorBody } from './errors.ts';
import { healthRoutes } from './health.ts';
import type { Lifecycle } from './lifecycle.ts';
import { ThrottledLog } from './logger.ts';
import { RateLimiter } from './licenses/rate-limit.ts';
import { licenseRoutes } from './licenses/routes.ts';
import { LicenseStore } from './licenses/store.ts';
import { Metrics } from './metrics.ts';
import type { RedisClient } from './redis.ts';

export interface AppDeps {
  config: Config;
  pool: pg.Pool;
  /** A one-connection pool used only by /health/ready. */
  probePool: pg.Pool;
  redis: RedisClient;
  log: Logger;
  lifecycle: Lifecycle;
}

export interface App {
  express: express.Express;
  metrics: Metrics;
  store: LicenseStore;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function createApp({ config, pool, probePool, redis, log, lifecycle }: AppDeps): App {
  const store = new LicenseStore(pool, config.SESSION_TTL_SECONDS, config.DB_STATEMENT_TIMEOUT_MS);
  const metrics = new Metrics({ pod: config.POD_NAME, version: config.APP_VERSION });
  const dependencyLog = new ThrottledLog(log);
  const limiter = new RateLimiter(redis, config.RATE_LIMIT_PER_MINUTE, config.DEPENDENCY_TIMEOUT_MS);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const given = req.get('x-request-id');
    const id = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.locals.requestId = id;
    res.set({ 'X-Served-By': config.POD_NAME, 'X-App-Version': config.APP_VERSION, 'X-Request-Id': id });
    const start = process.hrtime.bigint();
    res.once('finish', () => {
      if (!log.isLevelEnabled('info')) return;
      log.info(
        {
          reqId: id,
          method: req.method,
          route: req.route?.path,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - start) / 1e6,
        },
        'request',
      );
    });
    next();
  });
  app.use(metrics.middleware());
  // HTTP/1.1 requires Host (RFC 9112, 3.2); HTTP/1.0 does not.
  app.use((req, _res, next) => {
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.host === undefined)
      throw new ApiError(400, 'BAD_REQUEST', 'an HTTP/1.1 request needs a Host header', { Connection: 'close' });
    next();
  });

  app.use(
    healthRoutes(lifecycle, probePool, redis, config.DEPENDENCY_TIMEOUT_MS, {
      livenessChecksDependencies: config.FAULT_LIVENESS_CHECKS_DEPENDENCIES,
    }),
  );
  // Rendering the registry costs CPU on the event loop that serves license requests: a scrape
  // flood must not starve them. Scrapes within METRICS_RENDER_MIN_INTERVAL_MS of a rendering share
  // it (Prometheus scrapes every 15-60 s; a snapshot under a second old changes nothing for it).
  // They share its bytes too: one Buffer written by every response, where a string would be
  // joined with each response's headers and encoded again for each (a client pipelining scrapes
  // it does not read made every one of them a copy of its own).
  let rendered: { at: number; body: Promise<Buffer> } | undefined;
  app.get('/metrics', async (_req, res) => {
    if (!rendered || Date.now() - rendered.at >= METRICS_RENDER_MIN_INTERVAL_MS) {
      const r = { at: Date.now(), body: metrics.registry.metrics().then((text) => Buffer.from(text, 'utf8')) };
      rendered = r;
      r.body.catch(() => {
        if (rendered === r) rendered = undefined;
      });
    }
    res.set('Content-Type', metrics.registry.contentType).send(await rendered.body);
  });

  const notStarted = (_req: Request, _res: Response, next: NextFunction) => {
    if (lifecycle.phase === 'starting')
      throw new ApiError(503, 'NOT_STARTED', 'the service is starting; retry shortly', { 'Retry-After': '1' });
    next();
  };
  const injectedFault = (_req: Request, _res: Response, next: NextFunction) => {
    const since = lifecycle.servingSince;
    if (
      config.FAULT_ERRORS_AFTER_START_MS > 0 &&
      since !== undefined &&
      Date.now() - since < config.FAULT_ERRORS_AFTER_START_MS
    ) {
      throw new ApiError(500, 'INJECTED_FAULT', 'fault injection: FAULT_ERRORS_AFTER_START_MS is set');
    }
    if (config.FAULT_ERROR_RATE > 0 && Math.random() < config.FAULT_ERROR_RATE) {
      throw new ApiError(500, 'INJECTED_FAULT', 'fault injection: FAULT_ERROR_RATE is set');
    }
    if (config.FAULT_EXTRA_LATENCY_MS > 0) {
      setTimeout(next, config.FAULT_EXTRA_LATENCY_MS);
      return;
    }
    next();
  };
  // Every license request is answered by its deadline: the dependency calls give up by then (see
  // Deadline), and this answers for them if anything still waits. A body still on its way is the
  // client's delay (408, and the connection is closed); anything else waited on a dependency (503).
  const deadline = (req: Request, res: Response, next: NextFunction) => {
    res.locals.deadline = new Deadline(config.REQUEST_DEADLINE_MS);
    const timer = setTimeout(() => {
      if (res.headersSent) return;
      const api = req.complete
        ? new DependencyError('a dependency', new Error('request deadline passed'), { timedOut: true })
        : new ApiError(408, 'REQUEST_TIMEOUT', 'the request body did not arrive in time', { Connection: 'close' });
      if (req.complete) logDependencyError(api as DependencyError, res.locals.requestId as string);
      res.status(api.status).set(api.headers).json(errorBody(api.code, api.message));
    }, config.REQUEST_DEADLINE_MS + BACKSTOP_GRACE_MS);
    res.once('close', () => clearTimeout(timer));
    next();
  };
  const logDependencyError = (err: DependencyError, reqId: string) => {
    const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
    const causeCode = typeof cause?.code === 'string' ? cause.code : undefined;
    const causeMessage = typeof cause?.message === 'string' ? cause.message.slice(0, 300) : undefined;
    dependencyLog.warn(
      `${err.dependency}\n${err.code}\n${causeCode}\n${causeMessage}`,
      { reqId, dependency: err.dependency, code: err.code, causeCode, cause: causeMessage },
      'dependency error',
    );
  };

  const licenses = '/api/v1/licenses';
  app.use(
    licenses,
    deadline,
    notStarted,
    injectedFault,
    bearerAuth({
      secret: config.JWT_SECRET,
      jwksUrl: config.JWT_JWKS_URL,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      maxLifetimeSeconds: config.JWT_MAX_LIFETIME_SECONDS,
      jwksRefreshSeconds: config.JWT_JWKS_REFRESH_SECONDS,
      jwksStaleMaxSeconds: config.JWT_JWKS_STALE_MAX_SECONDS,
      jwksFirstKeyOnly: config.FAULT_JWKS_FIRST_KEY_ONLY,
    }),
    express.json({ limit: config.BODY_LIMIT_BYTES, strict: true, type: 'application/json' }),
  );
  app.use(
    licenseRoutes(
      licenses,
      store,
      limiter,
      metrics,
      config.HEARTBEAT_INTERVAL_SECONDS,
      config.JWT_LICENSES_CLAIM === 'optional',
      {
        requireClientVersion: config.FAULT_REQUIRE_CLIENT_VERSION,
        sessionsInProcess: config.FAULT_SESSIONS_IN_PROCESS,
      },
    ),
  );

  app.use((req, _res) => {
    throw new ApiError(404, 'NOT_FOUND', `no route for ${req.method} ${req.path.slice(0, 200)}`);
  });
  app.use(errorHandler(log, logDependencyError));
  return { express: app, metrics, store };
}

/** At most one rendering of /metrics per this long (see the route). */
const METRICS_RENDER_MIN_INTERVAL_MS = 1000;

/** The deadline's own answer comes this much later than the dependency calls' timeouts, which name the dependency. */
const BACKSTOP_GRACE_MS = 50;

/** Every error becomes `{error: {code, message}}`: never a stack trace, never a 500 for bad input. */
function errorHandler(log: Logger, logDependencyError: (err: DependencyError, reqId: string) => void) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; statusCode?: number; message?: string };
    let api: ApiError;
    if (err instanceof ApiError) api = err;
    else if (e.type === 'entity.parse.failed') api = new ApiError(400, 'MALFORMED_JSON', 'the request body is not valid JSON');
    else if (e.type === 'entity.too.large') api = new ApiError(413, 'PAYLOAD_TOO_LARGE', 'the request body is too large');
    else if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported')
      api = new ApiError(415, 'UNSUPPORTED_ENCODING', 'unsupported content encoding or charset');
    else if (e.type === 'request.aborted' || e.type === 'request.size.invalid')
      api = new ApiError(400, 'BAD_REQUEST', 'the request body was incomplete');
    else {
      const status = e.status ?? e.statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500)
        api = new ApiError(status, 'BAD_REQUEST', 'the request could not be understood');
      else {
        log.error({ err, reqId: res.locals.requestId }, 'unhandled error');
        api = new ApiError(500, 'INTERNAL', 'internal error');
      }
    }
    // Answered already (by the deadline): nothing more to say. Half a response: cut it.
    if (res.headersSent) {
      if (!res.writableEnded) res.destroy();
      return;
    }
    if (api instanceof DependencyError) logDependencyError(api, res.locals.requestId as string);
    res.status(api.status).set(api.headers).json(errorBody(api.code, api.message));
  };
}
