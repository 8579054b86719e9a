import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type pg from 'pg';
import type { Logger } from 'pino';
import { bearerAuth } from './auth.ts';
import type { Config } from './config.ts';
import { ApiError, errorBody } from './errors.ts';
import { healthRoutes } from './health.ts';
import type { Lifecycle } from './lifecycle.ts';
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
  const store = new LicenseStore(pool, config.SESSION_TTL_SECONDS);
  const metrics = new Metrics({ pod: config.POD_NAME, version: config.APP_VERSION }, () => store.countActive());
  const limiter = new RateLimiter(redis, config.RATE_LIMIT_PER_MINUTE, config.DEPENDENCY_TIMEOUT_MS);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const given = req.get('x-request-id');
    const id = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.locals.requestId = id;
    res.set({ 'X-Served-By': config.POD_NAME, 'X-App-Version': config.APP_VERSION, 'X-Request-Id': id });
    // From SIGTERM on, every response asks its client to reconnect (elsewhere): a kept-alive
    // connection stays pinned to this pod whatever the endpoints say, so it must be ended by us,
    // cleanly after a response, never under a request in flight. Decided when the headers are
    // written, not when the request arrived: a request that began before SIGTERM and ends after it
    // needs the header too.
    const writeHead = res.writeHead;
    res.writeHead = function (this: Response, ...args: unknown[]) {
      if (lifecycle.phase === 'draining' || lifecycle.phase === 'closing') this.setHeader('Connection', 'close');
      return (writeHead as (...a: unknown[]) => Response).apply(this, args);
    } as Response['writeHead'];
    const start = process.hrtime.bigint();
    res.once('finish', () => {
      if (!log.isLevelEnabled('info')) return;
      log.info({ reqId: id, method: req.method, route: req.route?.path,
        status: res.statusCode, ms: Number(process.hrtime.bigint() - start) / 1e6 }, 'request');
    });
    next();
  });
  app.use(metrics.middleware());

  app.use(healthRoutes(lifecycle, probePool, redis, config.DEPENDENCY_TIMEOUT_MS));
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  const notStarted = (_req: Request, _res: Response, next: NextFunction) => {
    if (lifecycle.phase === 'starting') throw new ApiError(503, 'NOT_STARTED', 'the service is starting; retry shortly', { 'Retry-After': '1' });
    next();
  };
  const injectedFault = (_req: Request, _res: Response, next: NextFunction) => {
    const since = lifecycle.servingSince;
    if (config.FAULT_ERRORS_AFTER_START_MS > 0 && since !== undefined && Date.now() - since < config.FAULT_ERRORS_AFTER_START_MS) {
      throw new ApiError(500, 'INJECTED_FAULT', 'fault injection: FAULT_ERRORS_AFTER_START_MS is set');
    }
    next();
  };
  const licenses = '/api/v1/licenses';
  app.use(licenses,
    notStarted,
    injectedFault,
    bearerAuth({ secret: config.JWT_SECRET, jwksUrl: config.JWT_JWKS_URL, issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE,
      maxLifetimeSeconds: config.JWT_MAX_LIFETIME_SECONDS }),
    express.json({ limit: config.BODY_LIMIT_BYTES, strict: true, type: 'application/json' }));
  app.use(licenseRoutes(licenses, store, limiter, metrics, config.HEARTBEAT_INTERVAL_SECONDS));

  app.use((req, _res) => {
    throw new ApiError(404, 'NOT_FOUND', `no route for ${req.method} ${req.path.slice(0, 200)}`);
  });
  app.use(errorHandler(log));
  return { express: app, metrics, store };
}

/** Every error becomes `{error: {code, message}}`: never a stack trace, never a 500 for bad input. */
function errorHandler(log: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; statusCode?: number; message?: string };
    let api: ApiError;
    if (err instanceof ApiError) api = err;
    else if (e.type === 'entity.parse.failed') api = new ApiError(400, 'MALFORMED_JSON', 'the request body is not valid JSON');
    else if (e.type === 'entity.too.large') api = new ApiError(413, 'PAYLOAD_TOO_LARGE', 'the request body is too large');
    else if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') api = new ApiError(415, 'UNSUPPORTED_ENCODING', 'unsupported content encoding or charset');
    else if (e.type === 'request.aborted' || e.type === 'request.size.invalid') api = new ApiError(400, 'BAD_REQUEST', 'the request body was incomplete');
    else {
      const status = e.status ?? e.statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) api = new ApiError(status, 'BAD_REQUEST', 'the request could not be understood');
      else {
        log.error({ err, reqId: res.locals.requestId }, 'unhandled error');
        api = new ApiError(500, 'INTERNAL', 'internal error');
      }
    }
    if (res.headersSent) { res.destroy(); return; }
    res.status(api.status).set(api.headers).json(errorBody(api.code, api.message));
  };
}
