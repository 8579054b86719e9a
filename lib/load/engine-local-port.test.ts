import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runLoad } from './index.ts';

// The server answers with the client's port as it sees it, in X-Served-By: the ledger's localPort
// must name the same socket, since a proxy's per-connection records are keyed by that port.
let url: string;
const server = createServer((req, res) => {
  res.setHeader('x-served-by', String(req.socket.remotePort));
  // Close some connections, so that later requests run on new sockets with new ports.
  if (Math.random() < 0.2) res.setHeader('connection', 'close');
  res.end('ok');
});
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => {
  server.close();
});

it('records the local port of the socket each request ran on', async () => {
  const r = await runLoad({
    url,
    executor: { executor: 'constant-arrival-rate', rate: 200, duration: '1s' },
    connections: 4,
    minRequests: 1,
    identityHeaders: { backend: 'X-Served-By' },
  });
  const rows = [...r.ledger.rows()].filter((x) => x.outcome === 'succeeded');
  expect(rows.length).toBeGreaterThan(150);
  for (const row of rows) expect(String(row.localPort)).toBe(row.servedBy);
  expect(new Set(rows.map((x) => x.localPort)).size).toBeGreaterThan(4); // reconnects got new ports
});
