import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';

/** The drain tests' clients, shared by the process tests (shutdown.test.ts) and the container tests (../container.test.ts). */

/**
 * A request that is in flight for as long as we like: headers and half the body now, the rest
 * when `finish()` is called. Resolves with the response status (0 when the server dropped us).
 */
export async function slowRequest(port: number, token: string) {
  const body = JSON.stringify({ session_id: '00000000-0000-4000-8000-000000000000' });
  const s: Socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((r) => s.once('connect', () => r()));
  let text = '';
  s.on('data', (d) => {
    text += d.toString('latin1');
  });
  s.on('error', () => {});
  const done = new Promise<{ status: number; connectionClose: boolean }>((resolve) =>
    s.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, connectionClose: /\r\nconnection: close\r\n/i.test(text) });
    }),
  );
  s.write(
    `POST /api/v1/licenses/heartbeat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
  );
  return {
    finish: () => {
      if (!s.destroyed) s.write(body.slice(10));
    },
    done,
  };
}

/** Keep-alive clients hammering heartbeat until told to stop; every failure is kept with its error. */
export function keepAliveLoad(url: string, token: string, workers: number) {
  const agent = new Agent({ connections: workers, pipelining: 1 });
  let running = true;
  const outcomes: Array<{ status: number; error?: string; at: number }> = [];
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const at = Date.now();
      try {
        const r = await request(`${url}/api/v1/licenses/heartbeat`, {
          method: 'POST',
          dispatcher: agent,
          body: '{"session_id":"x"}',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        });
        await r.body.dump();
        outcomes.push({ status: r.statusCode, at });
      } catch (err) {
        outcomes.push({ status: 0, error: (err as { code?: string }).code ?? String(err), at });
        await sleep(5);
      }
    }
  });
  return {
    outcomes,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      await agent.close();
    },
  };
}
