/**
 * Warms the HTTP client up before a run's clock starts: undici compiles its llhttp WebAssembly parser
 * on the first connection (tens of milliseconds, more on a busy machine), which would otherwise land
 * on the first requests of the run as scheduling delay. One request to a throwaway server inside this
 * process, on loopback; the target sees nothing.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Client } from 'undici';

let warmed: Promise<void> | null = null;

export function warmUpHttpClient(): Promise<void> {
  return (warmed ??= (async () => {
    const server = createServer((socket) => {
      socket.on('data', () =>
        socket.end('HTTP/1.1 200 OK\r\nx-served-by: warm-up\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'),
      );
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, resolve);
    });
    const client = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((resolve) => {
          client.dispatch(
            { method: 'GET', path: '/', headers: { 'x-warm-up': '1' } },
            {
              onRequestStart() {},
              onResponseStart() {},
              onResponseData() {},
              onResponseEnd: () => resolve(),
              onResponseError: () => resolve(),
            },
          );
        });
      }
    } finally {
      await client.destroy().catch(() => {});
      server.close();
    }
  })().catch(() => {
    /* a failed warm-up only costs the first requests some delay */
  }));
}
