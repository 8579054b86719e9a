import { createServer, type Server } from 'node:http';
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApp, type App } from './app.ts';
import { Connections } from './connections.ts';
import { startBackground, type Background } from './background.ts';
import { parseLicenseSeed, type Config } from './config.ts';
import { createPool, migrate } from './db.ts';
import { Lifecycle } from './lifecycle.ts';
import { createLogger, ThrottledLog } from './logger.ts';
import { createRedis } from './redis.ts';

export interface Service {
  readonly app: App;
  readonly server: Server;
  readonly connections: Connections;
  readonly lifecycle: Lifecycle;
  /** `http://host:port` the server listens on (once start() has bound it). */
  readonly url: string;
  /**
   * Listens (the probes answer from then on), then initialises: migrations, seed licenses,
   * retried until Postgres answers. Rejects with StartAborted when shutdown() comes first.
   */
  start(): Promise<void>;
  /**
   * Stops the service, from any phase. During start-up: stop the retries, close what is open.
   * Graceful: readiness 503 at once; keep serving for SHUTDOWN_DELAY_MS with `Connection: close`
   * on the last response in flight on each connection; stop accepting; close every connection that carries no request; let
   * in-flight requests finish (each within its deadline); close Postgres and Redis. Naive: drop
   * every connection at once (for experiments only).
   */
  shutdown(reason: string): Promise<void>;
}

/** start() was cut short by shutdown(). */
export class StartAborted extends Error {
  constructor() {
    super('start-up was stopped by a shutdown');
  }
}

/** net.Server#close: stops accepting without http.Server's immediate close of idle sockets. */
const netClose = NetServer.prototype.close;
const CLOSE_LINGER_MS = 250;
/** After the drain delay, a connection whose client has not read an answer for this long is closed. */
const NOT_READING_DURING_DRAIN_MS = 500;
/** Closing Postgres and Redis connections waits at most this (a frozen server never answers a goodbye). */
const CLOSE_DEPS_TIMEOUT_MS = 2000;

const CLIENT_ERROR_BODY = (status: number, code: string, message: string) => {
  const body = JSON.stringify({ error: { code, message } });
  return `HTTP/1.1 ${status} ${code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
};

/** Creates the service and starts it (see Service.start). */
export async function startService(config: Config): Promise<Service> {
  const service = createService(config);
  await service.start();
  return service;
}

/** The service with nothing started yet: no socket, no connection, no timer. */
export function createService(config: Config): Service {
  const log = createLogger(config.LOG_LEVEL, { pod: config.POD_NAME, version: config.APP_VERSION });
  const lifecycle = new Lifecycle();
  const pool = createPool(config.DATABASE_URL, config.DB_POOL_MAX, config.DB_POOL_WAIT_MS, config.DB_STATEMENT_TIMEOUT_MS);
  // Readiness gets a connection of its own: a busy request pool must not make a healthy pod unready.
  const probePool = createPool(config.DATABASE_URL, 1, config.DEPENDENCY_TIMEOUT_MS, config.DEPENDENCY_TIMEOUT_MS);
  const redis = createRedis(config.REDIS_URL, config.DEPENDENCY_TIMEOUT_MS);
  const app = createApp({ config, pool, probePool, redis, log, lifecycle });
  const aborted = new AbortController();
  let background: Background | undefined;
  let url: string | undefined;

  // Every open connection and the requests each has in flight (see Connections). From SIGTERM on,
  // every connection is ended after the requests it has in flight: a kept-alive connection stays
  // pinned to this pod whatever the endpoints say, so it must be ended by us, cleanly after a
  // response, never under a request in flight (nor under one pipelined behind it).
  const protectLog = new ThrottledLog(log, 10_000);
  const protect = (reason: string) => {
    app.metrics.connectionsClosed.inc({ reason });
    protectLog.warn(reason, { reason }, 'connection refused or closed to protect the process');
  };
  const connections = new Connections(app.express, {
    // (FAULT_KEEPALIVE_DRAIN, for detector tests: drain without Connection: close, keeping the connections alive.)
    closing: () => (lifecycle.phase === 'draining' || lifecycle.phase === 'closing') && !config.FAULT_KEEPALIVE_DRAIN,
    onProtect: protect,
  });
  const server = createServer(
    {
      keepAliveTimeout: config.KEEPALIVE_TIMEOUT_MS,
      headersTimeout: config.HEADERS_TIMEOUT_MS,
      requestTimeout: 60_000,
      // How often Node checks the two timeouts above (its default, 30 s, would let a header timeout run 30 s late).
      connectionsCheckingInterval: Math.min(1000, config.HEADERS_TIMEOUT_MS),
      // Node answers an HTTP/1.1 request without Host with a bare 400; the app answers it in JSON.
      requireHostHeader: false,
    },
    connections.handle,
  );
  connections.attach(server);
  // Each connection costs memory (about 10 KB idle, more with requests in flight): past
  // MAX_CONNECTIONS Node closes a new one at once instead of letting the pod run out of memory.
  server.maxConnections = config.MAX_CONNECTIONS;
  server.on('drop', () => protect('max_connections'));
  // Malformed HTTP never reaches Express: answer it in the same JSON shape instead of a bare reset.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.end(CLIENT_ERROR_BODY(408, 'REQUEST_TIMEOUT', 'the request did not arrive in time'));
      return;
    }
    const tooBig = err.code === 'HPE_HEADER_OVERFLOW';
    socket.end(
      tooBig
        ? CLIENT_ERROR_BODY(431, 'HEADERS_TOO_LARGE', 'request headers are too large')
        : CLIENT_ERROR_BODY(400, 'BAD_REQUEST', 'malformed HTTP request'),
    );
  });

  const closeDeps = async () => {
    await Promise.race([
      Promise.allSettled([pool.end(), probePool.end(), redis.isReady ? redis.close() : Promise.resolve(redis.destroy())]),
      sleep(CLOSE_DEPS_TIMEOUT_MS, undefined, { ref: false }),
    ]);
  };

  const start = async () => {
    if (aborted.signal.aborted) throw new StartAborted();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT, config.HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
    if (aborted.signal.aborted) {
      server.close();
      throw new StartAborted();
    }
    log.info({ address: addr.address, port: addr.port, shutdownMode: config.SHUTDOWN_MODE }, 'listening');

    // Redis connects (and reconnects) in the background: nothing needs it to start, and with the
    // rate limiter off nothing needs it at all (see health.ts).
    const redisUp = redis.connect().then(
      () => true,
      () => false,
    );
    // Start-up: the probes answer from now on; /health/startup turns 200 once this is done.
    for (let attempt = 1; ; attempt++) {
      try {
        if (config.MIGRATE_ON_START) await migrate(config.DATABASE_URL, log);
        await app.store.ensureLicenses(parseLicenseSeed(config.LICENSE_SEED));
        break;
      } catch (err) {
        if (aborted.signal.aborted) throw new StartAborted();
        log.warn({ attempt, err: (err as Error).message }, 'start-up step failed; retrying');
        await sleep(Math.min(250 * attempt, 2000), undefined, { signal: aborted.signal }).catch(() => {});
      }
      if (aborted.signal.aborted) throw new StartAborted();
    }
    // With the rate limiter on, give Redis a moment so that the first acquires need not answer 503.
    if (config.RATE_LIMIT_PER_MINUTE > 0)
      await Promise.race([redisUp, sleep(config.DEPENDENCY_TIMEOUT_MS, undefined, { ref: false })]);
    if (aborted.signal.aborted) throw new StartAborted();
    lifecycle.phase = 'serving';
    background = startBackground(config, app.store, app.metrics, log);
    log.info('serving');
  };

  let shutdownPromise: Promise<void> | undefined;
  const shutdown = (reason: string) => {
    shutdownPromise ??= (async () => {
      if (lifecycle.phase === 'starting') {
        // Nothing is served yet (license requests answer 503 NOT_STARTED): stop the start-up
        // retries and close what is open, at once.
        log.info({ reason }, 'shutdown during start-up');
        aborted.abort();
        lifecycle.phase = 'closing';
        if (server.listening) {
          server.close();
          server.closeAllConnections();
        }
        await closeDeps();
        log.info('shutdown complete (during start-up)');
        return;
      }
      log.info({ reason, mode: config.SHUTDOWN_MODE, delayMs: config.SHUTDOWN_DELAY_MS }, 'shutdown started');
      const stopBackground = background?.stop();
      if (config.SHUTDOWN_MODE === 'naive') {
        lifecycle.phase = 'closing';
        server.close();
        server.closeAllConnections();
        await stopBackground;
        await closeDeps();
        log.info('shutdown complete (naive)');
        return;
      }
      lifecycle.phase = 'draining';
      await sleep(config.SHUTDOWN_DELAY_MS);
      lifecycle.phase = 'closing';
      const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
      // Stop accepting, but do not yet close sockets without a request: one accepted a moment ago
      // may carry a request that is still on its way. Give those a moment to arrive (they are
      // answered with Connection: close), then close every socket that carries no request, until
      // none is left. Busy sockets end by themselves after their response, and every license
      // request has its deadline (a body that never comes is answered 408 then).
      netClose.call(server);
      await sleep(CLOSE_LINGER_MS);
      // Node's closeIdleConnections() would leave the last two open (for Node they are busy), which
      // kept a drain waiting for its deadline. A connection whose client does not read its answers
      // would hold the drain until the deadline too: it is closed as soon as it has not read for
      // NOT_READING_DURING_DRAIN_MS (its answers cannot be delivered; the requests behind them in
      // flight are lost to a client that would never have read them).
      const closeDone = () => {
        connections.closeIdle();
        connections.closeNotReading(NOT_READING_DURING_DRAIN_MS);
      };
      closeDone();
      const sweep = setInterval(closeDone, 100);
      await closed;
      clearInterval(sweep);
      await stopBackground;
      await closeDeps();
      log.info('shutdown complete');
    })();
    return shutdownPromise;
  };

  return {
    app,
    server,
    connections,
    lifecycle,
    start,
    shutdown,
    get url() {
      if (!url) throw new Error('the service is not listening yet');
      return url;
    },
  };
}
