import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundedJson, HttpClient, jsonDepth, MAX_JSON_DEPTH } from './http.ts';

const nested = (levels: number, inner = '') => `${'['.repeat(levels)}${inner}${']'.repeat(levels)}`;

describe('what the check client reads and parses from a service is bounded (issue 19 item 11)', () => {
  it('jsonDepth counts nesting outside strings and stops past the limit', () => {
    expect(jsonDepth('{"a":[1,{"b":[]}]}')).toBe(4);
    expect(jsonDepth('{"a":"[[[[{{{{"}')).toBe(1);
    expect(jsonDepth('{"a":"\\"[[[["}')).toBe(1);
    expect(jsonDepth(nested(2_000_000), 64)).toBe(65);
  });

  it('boundedJson parses ordinary bodies, and says why it will not parse a deep, large or cut one', () => {
    expect(boundedJson('{"status":"ready"}', false)).toEqual({ json: { status: 'ready' }, problem: null });
    expect(boundedJson('<html>hello</html>', false)).toEqual({ json: undefined, problem: null });
    expect(boundedJson(nested(MAX_JSON_DEPTH), false).json).toBeDefined();
    expect(boundedJson(nested(MAX_JSON_DEPTH + 1), false)).toEqual({
      json: undefined,
      problem: 'the body is JSON nested more than 64 levels deep (0.1 KiB): not parsed',
    });
    expect(boundedJson(`[${'1,'.repeat(600_000)}1]`, false).problem).toBe(
      'the body is 1.1 MiB of JSON, over the 1.0 MiB a check parses: not parsed',
    );
    expect(boundedJson('{"a":', true).problem).toMatch(/^the body was cut at .* \(the most a check reads\)/);
    expect(boundedJson('{"a":', false).problem).toMatch(/^the body is not valid JSON: /);
  });

  describe('against a loopback server', () => {
    let server: Server;
    let url: string;
    beforeAll(async () => {
      server = createServer((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json' });
        if (req.url === '/deep') return res.end(`{"status":"ready","degraded":${nested(400_000)}}`);
        if (req.url === '/endless') {
          // 16 MiB streamed in 64 KiB chunks, more than the client reads.
          const chunk = Buffer.alloc(65536, '[');
          let sent = 0;
          const more = () => {
            while (sent < 256) {
              sent++;
              if (!res.write(chunk)) return void res.once('drain', more);
            }
            res.end();
          };
          res.on('close', () => (sent = 256));
          return more();
        }
        res.end('{"status":"ready"}');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('a deeply nested answer is not parsed: json undefined, the reason given, no RangeError', async () => {
      const r = await new HttpClient({ baseUrl: url }).request('/deep');
      expect(r.status).toBe(200);
      expect(r.json).toBeUndefined();
      expect(r.jsonProblem).toMatch(/nested more than 64 levels deep \(781\.3 KiB\): not parsed/);
      expect((await new HttpClient({ baseUrl: url }).request('/')).json).toEqual({ status: 'ready' });
    });

    it('a body longer than the cap is read up to the cap and said to be cut', async () => {
      const r = await new HttpClient({ baseUrl: url, maxBodyBytes: 1024 * 1024 }).request('/endless');
      expect(r.truncated).toBe(true);
      expect(r.text.length).toBe(1024 * 1024);
      expect(r.jsonProblem).toBe('the body was cut at 1.0 MiB (the most a check reads): not parsed as JSON');
    });
  });
});
