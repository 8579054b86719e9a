import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Target } from '../../cluster/target.ts';
import { startTestApi, type TestApi } from '../../license-api/test/harness.ts';
import { licenseApi, LOAD_LICENSE_KEY } from './profile.ts';

// The sessions the harness holds open during an experiment (the profile's SessionControl), against
// the license API started here; an acquire answer without a session id is an error at once, not a
// held session "undefined" that every later heartbeat calls dead.
const provided = { platform: { services: 'external', secrets: 'provided' } } as Target;

describe('held sessions', () => {
  let api: TestApi;
  const saved = process.env.LICENSE_TOKEN;
  beforeAll(async () => {
    api = await startTestApi({ LICENSE_SEED: `${LOAD_LICENSE_KEY}=5` });
    process.env.LICENSE_TOKEN = api.token;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.LICENSE_TOKEN;
    else process.env.LICENSE_TOKEN = saved;
    await api?.[Symbol.asyncDispose]();
  });

  it('opens sessions with their ids, finds them alive and gives them back', async () => {
    const sessions = (await licenseApi.connect(provided, api.url)).sessions!;
    const ids = await sessions.open(2);
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(id).toMatch(/\S/);
    expect(await sessions.check(ids)).toEqual({ alive: ids, dead: [] });
    await sessions.close(ids);
    expect((await sessions.check(ids)).alive).toEqual([]);
  });

  it('an acquire answer without a session_id is an error that says so', async () => {
    const server = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"success":true}'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const sessions = (await licenseApi.connect(provided, url)).sessions!;
      await expect(sessions.open(1)).rejects.toThrow(
        /could not open session 1 of 1: acquire answered without a session_id: \{"success":true\}/,
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('an acquire nobody answers is an error naming the call and the wait, not a bare "aborted due to timeout"', async () => {
    const server = createServer(() => {}); // reads the request, never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const sessions = (await licenseApi.connect(provided, url)).sessions!;
      await expect(sessions.open(1)).rejects.toThrow(
        new RegExp(`could not open session 1 of 1: POST ${url}/api/v1/licenses/acquire: no answer within 10 s`),
      );
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }, 30_000);
});
