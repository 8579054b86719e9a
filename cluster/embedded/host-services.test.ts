import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { listenersOn } from '../../lib/proc/listeners.ts';
import { startPostgres } from '../../lib/services/postgres.ts';
import { claimPorts } from './host-services.ts';

// A Postgres an earlier cluster left on the gateway's port answers the next cluster (gate.cluster
// once found the database "license" already there): the leftover is ours, so it is stopped; a
// stranger on the port is refused by name, never killed.
describe('claimPorts', () => {
  it('stops a Postgres of ours left on the port', async () => {
    const leftover = await startPostgres();
    const said: string[] = [];
    await claimPorts('127.0.0.1', [leftover.port], (m) => said.push(m));
    expect(await listenersOn(leftover.port)).toEqual([]);
    expect(said.join('\n')).toMatch(new RegExp(`left on 127\\.0\\.0\\.1:${leftover.port} by an earlier cluster`));
    await leftover.stop();
  });

  it('refuses a port held by anything else, naming it', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await expect(claimPorts('127.0.0.1', [port], () => {})).rejects.toThrow(
      new RegExp(`127\\.0\\.0\\.1:${port}.*held by pid ${process.pid}.*stop it first`),
    );
    expect((await listenersOn(port)).map((l) => l.pid)).toEqual([process.pid]);
    await new Promise<void>((r) => s.close(() => r()));
  });
});
