import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { listenersOn } from './listeners.ts';

describe('listenersOn', () => {
  it('names this process as the listener of a port it holds, and nobody on a port it freed', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    const found = await listenersOn(port);
    expect(found.map((l) => [l.pid, l.address, l.port])).toEqual([[process.pid, '127.0.0.1', port]]);
    await new Promise<void>((r) => s.close(() => r()));
    expect(await listenersOn(port)).toEqual([]);
  });
});
