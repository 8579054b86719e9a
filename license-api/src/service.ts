import { createServer, type Server } from 'node:http';
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApp, type App } from './app.ts';
import { parseLicenseSeed, type Config } from './config.ts';
import { createPool, migrate } from './db.ts';
import { Lifecycle } from './lifecycle.ts';
import { createLogger } from './logger.ts';
import { createRedis } from './redis.ts';

export interface Service {
  readonly app: App;
  readonly server: Server;
  readonly lifecycle: Lifecycle;
  /** `http://host:port` the server listens on. */
  readonly url: string;
  /**
   * The SIGTERM sequence. Graceful: readiness 503 at once; keep serving for SHUTDOWN_DELAY_MS
   * with `Connection: close` on every response; stop accepting; let in-flight requests finish;
   * close Postgres and Redis. Naive: drop every connection at once (for experiments only).
   */
  shutdown(reason: string): Promise<void>;
}

/** net.Server#close: stops accepting without http.Server's immediate close of idle sockets. */
const netClose = NetServer.prototype.close;
const CLOSE_LINGER_MS = 250;

const CLIENT_ERROR_BODY = (status: number, code: string, message: string) => {
  const body = JSON.stringify({ error: { code, message } });
  return `HTTP/1.1 ${status} ${code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
};

export async function startService(config: Config): Promise<Service> {
  const log = createLogger(config.LOG_LEVEL, { pod: config.POD_NAME, version: config.APP_VERSION });
  const lifecycle = new Lifecycle();
  const pool = createPool(config.DATABASE_URL, config.DB_POOL_MAX, config.DB_POOL_WAIT_MS, config.DB_STATEMENT_TIMEOUT_MS);
  // Readiness gets a connection of its own: a busy request pool must not make a healthy pod unready.
  const probePool = createPool(config.DATABASE_URL, 1, config.DEPENDENCY_TIMEOUT_MS, config.DEPENDENCY_TIMEOUT_MS);
  const redis = createRedis(config.REDIS_URL, config.DEPENDENCY_TIMEOUT_MS);
  const app = createApp({ config, pool, probePool, redis, log, lifecycle });

  const server = createServer({
    keepAliveTimeout: config.KEEPALIVE_TIMEOUT_MS, headersTimeout: config.HEADERS_TIMEOUT_MS, requestTimeout: 60_000,
    // How often Node checks the two timeouts above (its default, 30 s, would let a header timeout run 30 s late).
    connectionsCheckingInterval: Math.min(1000, config.HEADERS_TIMEOUT_MS),
  }, app.express);
  // Malformed HTTP never reaches Express: answer it in the same JSON shape instead of a bare reset.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') { socket.destroy(); return; }
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.end(CLIENT_ERROR_BODY(408, 'REQUEST_TIMEOUT', 'the request did not arrive in time'));
      return;
    }
    const tooBig = err.code === 'HPE_HEADER_OVERFLOW';
    socket.end(tooBig
      ? CLIENT_ERROR_BODY(431, 'HEADERS_TOO_LARGE', 'request headers are too large')
      : CLIENT_ERROR_BODY(400, 'BAD_REQUEST', 'malformed HTTP request'));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
  log.info({ address: addr.address, port: addr.port, shutdownMode: config.SHUTDOWN_MODE }, 'listening');

  // Start-up: the probes answer from now on; /health/startup turns 200 once this is done.
  const init = async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        await redis.connect().catch((err) => { if (!redis.isOpen) throw err; });
        if (config.MIGRATE_ON_START) await migrate(config.DATABASE_URL, log);
        await app.store.ensureLicenses(parseLicenseSeed(config.LICENSE_SEED));
        return;
      } catch (err) {
        log.warn({ attempt, err: (err as Error).message }, 'start-up step failed; retrying');
        if (lifecycle.phase !== 'starting') return;
        await sleep(Math.min(250 * attempt, 2000));
      }
    }
  };
  await init();
  if (lifecycle.phase === 'starting') lifecycle.phase = 'serving';
  log.info('serving');

  let shutdownPromise: Promise<void> | undefined;
  const closeDeps = async () => {
    await Promise.allSettled([pool.end(), probePool.end(), redis.isOpen ? redis.close() : Promise.resolve()]);
  };
  const shutdown = (reason: string) => {
    shutdownPromise ??= (async () => {
      log.info({ reason, mode: config.SHUTDOWN_MODE, delayMs: config.SHUTDOWN_DELAY_MS }, 'shutdown started');
      if (config.SHUTDOWN_MODE === 'naive') {
        lifecycle.phase = 'closing';
        server.close();
        server.closeAllConnections();
        await closeDeps();
        log.info('shutdown complete (naive)');
        return;
      }
      lifecycle.phase = 'draining';
      await sleep(config.SHUTDOWN_DELAY_MS);
      lifecycle.phase = 'closing';
      const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
      // Stop accepting, but do not yet close "idle" sockets as http.Server#close() would: a socket
      // accepted a moment ago may carry a request that is still on its way. Give those a moment to
      // arrive (they are answered with Connection: close), then close idle sockets until none is left.
      // Busy sockets end by themselves after their response.
      netClose.call(server);
      await sleep(CLOSE_LINGER_MS);
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      await closed;
      clearInterval(sweep);
      await closeDeps();
      log.info('shutdown complete');
    })();
    return shutdownPromise;
  };

  return { app, server, lifecycle, url, shutdown };
}
