/**
 * A small HTTP proxy on loopback for tests: it forwards every request to the license API behind it
 * and can break the answers on the way, as a misconfigured gateway or a broken release would
 * (strip a header, replace a body, answer for the app, add credentials the client did not send,
 * hold an answer back after the upstream has acted on the request).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultPlan {
  /** Answer this instead of forwarding (nothing reaches the upstream). */
  answer?: { status: number; body: string; headers?: Record<string, string> };
  /** Response headers to remove (lower-case). */
  stripHeaders?: string[];
  /** Replace the upstream's body (and its content type). */
  body?: string;
  contentType?: string;
  /** Add this Authorization header when the request has none (a gateway that authenticates for everyone). */
  addAuthorization?: string;
  /** Hold the upstream's answer back this long after it arrived (the upstream has acted already). */
  holdMs?: number;
}

export interface FaultProxy extends AsyncDisposable {
  url: string;
  /** Every request seen: method, path, and whether an Authorization header came with it. */
  seen: Array<{ method: string; path: string; auth: boolean }>;
  /** Called for each request as it arrives (before forwarding). */
  onRequest?: (req: { method: string; path: string }) => void;
  close(): Promise<void>;
}

export async function startFaultProxy(
  upstream: string,
  plan: (req: { method: string; path: string; n: number }) => FaultPlan | undefined,
): Promise<FaultProxy> {
  const up = new URL(upstream);
  const counts = new Map<string, number>();
  const proxy: FaultProxy = {
    url: '',
    seen: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const key = `${method} ${path}`;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    proxy.seen.push({ method, path, auth: !!req.headers.authorization });
    proxy.onRequest?.({ method, path });
    const p = plan({ method, path, n }) ?? {};
    if (p.answer) {
      req.resume();
      res.writeHead(p.answer.status, { 'content-type': 'text/plain', ...p.answer.headers }).end(p.answer.body);
      return;
    }
    const headers = { ...req.headers, host: up.host };
    if (p.addAuthorization && !headers.authorization) headers.authorization = p.addAuthorization;
    const out = httpRequest({ host: up.hostname, port: up.port, method, path, headers }, (upRes) => {
      const chunks: Buffer[] = [];
      upRes.on('data', (c) => chunks.push(c));
      upRes.on('end', () => {
        const send = () => {
          const h = { ...upRes.headers };
          for (const s of p.stripHeaders ?? []) delete h[s];
          let body: Buffer | string = Buffer.concat(chunks);
          if (p.body !== undefined) {
            body = p.body;
            h['content-type'] = p.contentType ?? 'text/plain';
          }
          delete h['content-length'];
          delete h['transfer-encoding'];
          if (res.destroyed) return;
          res.writeHead(upRes.statusCode ?? 502, h).end(body);
        };
        if (p.holdMs) setTimeout(send, p.holdMs);
        else send();
      });
    });
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end('upstream error');
      else res.destroy();
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
