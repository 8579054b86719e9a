/**
 * Local HTTP servers that misbehave on purpose, for the engine's tests: they refuse, reset, close
 * keep-alive sockets under a request, stall, never answer, or answer with an error status. All listen
 * on 127.0.0.1 on a free port and close every socket on close().
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../../net/free-port.ts';

export interface TestServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /** Requests the server has seen. */
  readonly requests: () => number;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

export async function startTestServer(handler: Handler, opts: { keepAliveTimeoutMs?: number } = {}): Promise<TestServer> {
  let n = 0;
  const server: Server = createServer((req, res) => {
    n++;
    req.resume();
    handler(req, res, n);
  });
  server.keepAliveTimeout = opts.keepAliveTimeoutMs ?? 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  const close = () =>
    (closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  return { url: `http://127.0.0.1:${port}`, port, requests: () => n, close, [Symbol.asyncDispose]: close };
}

/** 200 "ok" with X-Served-By / X-App-Version, like the license API. */
export function ok(servedBy: string | ((n: number) => string) = 'pod-a', version = '1.0.0'): Handler {
  return (_req, res, n) => {
    res.writeHead(200, {
      'content-type': 'text/plain',
      'x-served-by': typeof servedBy === 'function' ? servedBy(n) : servedBy,
      'x-app-version': version,
    });
    res.end('ok\n');
  };
}

export function status(code: number): Handler {
  return (_req, res) => {
    res.writeHead(code, { 'x-served-by': 'pod-err' });
    res.end();
  };
}

/** Resets the TCP connection (RST) on every request. */
export function reset(): Handler {
  return (req) => {
    req.socket.resetAndDestroy();
  };
}

/** Answers the first request on each socket, then closes the socket (FIN) under the next one. */
export function closeKeepAliveUnderRequest(): Handler {
  const served = new WeakSet<object>();
  return (req, res) => {
    if (served.has(req.socket)) {
      req.socket.end();
      return;
    }
    served.add(req.socket);
    res.writeHead(200, { 'content-length': '3' });
    res.end('ok\n');
  };
}

/** Never answers (the socket stays open until the client gives up or the server closes). */
export function neverRespond(): Handler {
  return () => {};
}

/**
 * Answers normally, except that between `fromMs` and `toMs` after the first request every response
 * waits until `toMs` (the clock starts with the load, not with the server).
 */
export function stallBetween(fromMs: number, toMs: number): Handler {
  const answer = ok();
  let t0: number | null = null;
  return (req, res, n) => {
    t0 ??= performance.now();
    const at = performance.now() - t0;
    if (at >= fromMs && at < toMs) setTimeout(() => answer(req, res, n), toMs - at);
    else answer(req, res, n);
  };
}

/** A loopback URL where nothing listens (connections are refused). */
export async function refusingUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}
