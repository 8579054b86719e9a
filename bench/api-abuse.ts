/**
 * Benchmark (not a test): the license API's memory under abusive clients, measured from outside as
 * the resident set size (VmRSS / VmHWM in /proc) of its own process. The pod limit is 256 Mi (base)
 * or 512 Mi (GKE); every scenario reports the RSS before, the peak during and the RSS after, and
 * whether a normal client is still answered meanwhile.
 *
 *   node bench/api-abuse.ts [pipeline-metrics|pipeline-live|idle|slowloris|in-flight|drain]...   (default: all)
 *   API_ENTRY=/tmp/b/server.mjs node bench/api-abuse.ts ...   (a bundle from `node license-api/build.ts /tmp/b`)
 *   POD_HEAP=256 node bench/api-abuse.ts ...   (the API's V8 heap sized as Node sizes it in a 256 Mi pod)
 *
 * - pipeline-metrics / pipeline-live: 20 sockets each write 5,000 pipelined GETs of /metrics (or
 *   /health/live) in one go and never read (issue 19, item 1).
 * - idle: 15,000 sockets that connect and send nothing (item 5). Needs `ulimit -n` above 15,000 + a
 *   margin for both processes (the server's own limit is what maxConnections must fit).
 * - slowloris: 15,000 sockets that send half a request header and stop (item 5).
 * - in-flight: IN_FLIGHT_SOCKETS (default 4,000) sockets that each pipeline 16 GET /metrics (the most
 *   a connection may have in flight) and never read: the worst a connection can cost within the limits.
 * - drain: one socket pipelining 3,000 requests without reading plus 200 sockets with partial
 *   headers, then SIGTERM: how long until the process exits, and its exit code (item 4).
 *
 * Traffic goes to 127.0.0.1 only; every load is bounded in count and time, every socket and process
 * is closed at the end.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitForPort } from '../lib/net/free-port.ts';
import { startPostgres } from '../lib/services/postgres.ts';
import { startRedis } from '../lib/services/redis.ts';

const SECRET = 'bench-secret-bench-secret-bench-secret-00';
const MB = 1024 * 1024;

function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Memory of every TCP socket on the machine (kernel buffers; a pod's cgroup is charged for its own), from /proc/net/sockstat. */
function tcpKernelMemory(): number {
  const pages = Number(/^TCP:.* mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? NaN);
  return pages * 4096;
}

/** Bytes the server's sockets have queued in the kernel and the client has not acknowledged (Send-Q, from `ss`). */
function serverSendQueue(port: number): number {
  const out = execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} )`], {
    maxBuffer: 64 * 1024 * 1024,
  }).toString();
  return out
    .split('\n')
    .filter(Boolean)
    .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[1] ?? 0), 0);
}

/** Resets VmHWM (the peak) to the current RSS, so that a scenario's peak is its own. */
function resetPeak(pid: number): void {
  try {
    // "5" clears the peak RSS (proc(5), clear_refs).
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    /* not permitted: the peak then includes start-up */
  }
}

async function normalClient(url: string): Promise<number> {
  return await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(3000) }).then(
    (r) => r.status,
    () => 0,
  );
}

function openSockets(port: number, n: number, first: string | ((i: number) => string), pause = true): Promise<Socket[]> {
  return new Promise((resolve) => {
    const sockets: Socket[] = [];
    let pending = n;
    for (let i = 0; i < n; i++) {
      const s = connect({ host: '127.0.0.1', port });
      if (pause) s.pause();
      s.on('error', () => {});
      s.once('connect', () => {
        const text = typeof first === 'function' ? first(i) : first;
        if (text) s.write(text);
        if (--pending === 0) resolve(sockets);
      });
      s.once('close', () => {
        if (s.connecting && --pending === 0) resolve(sockets);
      });
      sockets.push(s);
    }
  });
}

interface Api {
  child: ChildProcess;
  url: string;
  port: number;
  exit: Promise<{ code: number | null; at: number }>;
}

async function startApi(dbUrl: string, redisUrl: string, env: Record<string, string> = {}): Promise<Api> {
  const port = await freePort();
  // API_ENTRY=<dir>/server.mjs runs a bundle (license-api/build.ts), as the container image does.
  const entry = process.env.API_ENTRY ?? fileURLToPath(new URL('../license-api/src/main.ts', import.meta.url));
  const child = spawn(process.execPath, [entry], {
    cwd: dirname(entry),
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: dbUrl,
      REDIS_URL: redisUrl,
      JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      LICENSE_SEED: 'BENCH=1000',
      NODE_ENV: 'production',
      // POD_HEAP=256: the V8 heap Node sizes for itself in a pod limited to 256 Mi (it reads the
      // cgroup's limit: old space = limit / 4 x 2, semi-space = old space / 128), where this machine's
      // memory lets V8 grow its heap far more lazily.
      ...(process.env.POD_HEAP
        ? {
            NODE_OPTIONS: `--max-old-space-size=${Number(process.env.POD_HEAP) / 2} --max-semi-space-size=${Math.max(1, Number(process.env.POD_HEAP) / 256)}`,
          }
        : {}),
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exit = new Promise<{ code: number | null; at: number }>((r) => child.once('exit', (code) => r({ code, at: Date.now() })));
  await waitForPort('127.0.0.1', port, 30_000);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    const ready = await fetch(`${url}/health/ready`).then(
      (r) => r.status,
      () => 0,
    );
    if (ready === 200) break;
    await sleep(100);
  }
  return { child, url, port, exit };
}

async function stopApi(api: Api): Promise<void> {
  if (api.child.exitCode === null) {
    api.child.kill('SIGKILL');
    await api.exit;
  }
}

const fmt = (b: number) => `${(b / MB).toFixed(0)} MB`;

async function pipeline(api: Api, path: string): Promise<string> {
  const pid = api.child.pid!;
  const before = memory(pid).rss;
  resetPeak(pid);
  const sockets = await openSockets(api.port, 20, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(5000));
  const answered: number[] = [];
  for (let t = 0; t < 6; t++) {
    await sleep(1000);
    answered.push(await normalClient(api.url));
  }
  const during = memory(pid);
  for (const s of sockets) s.destroy();
  await sleep(2000);
  const after = memory(pid);
  return `pipeline ${path}: RSS ${fmt(before)} -> peak ${fmt(during.hwm)} (now ${fmt(during.rss)}) -> ${fmt(after.rss)} after the clients closed; normal client during: ${answered.join(',')}`;
}

async function manySockets(api: Api, kind: 'idle' | 'slowloris' | 'in-flight', n: number): Promise<string> {
  const pid = api.child.pid!;
  const before = memory(pid).rss;
  const kernelBefore = tcpKernelMemory();
  resetPeak(pid);
  const t0 = Date.now();
  const first = {
    idle: '',
    slowloris: 'POST /api/v1/licenses/heartbeat HTTP/1.1\r\nHost: x\r\nX-a: ',
    'in-flight': `GET ${process.env.IN_FLIGHT_PATH ?? '/metrics'} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(16),
  }[kind];
  const sockets = await openSockets(api.port, n, first, kind === 'in-flight');
  const opened = Date.now() - t0;
  const settleMs = kind === 'in-flight' ? 10_000 : 1500;
  await sleep(settleMs);
  const alive = sockets.filter((s) => !s.destroyed && !s.readableEnded).length;
  const during = memory(pid);
  const kernelDuring = tcpKernelMemory();
  const sendQueue = serverSendQueue(api.port);
  const answered = await normalClient(api.url);
  for (const s of sockets) s.destroy();
  await sleep(2000);
  const after = memory(pid);
  return `${kind} x${n}: opened in ${opened} ms, ${alive} still open after ${settleMs / 1000} s; RSS ${fmt(before)} -> ${fmt(during.rss)} (peak ${fmt(during.hwm)}) -> ${fmt(after.rss)} after; kernel TCP buffers (all sockets) ${fmt(kernelBefore)} -> ${fmt(kernelDuring)}, the server's Send-Q ${fmt(sendQueue)}; normal client: ${answered}`;
}

async function drain(api: Api): Promise<string> {
  const pipe = await openSockets(api.port, 1, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3000));
  const partial = await openSockets(api.port, 200, 'GET /health/live HTTP/1.1\r\nHost: x\r\nX-a: ', false);
  await sleep(500);
  const t0 = Date.now();
  api.child.kill('SIGTERM');
  const exit = await Promise.race([api.exit, sleep(30_000).then(() => ({ code: -1, at: Date.now() }))]);
  for (const s of [...pipe, ...partial]) s.destroy();
  return `drain (1 non-reading pipeliner + 200 partial headers, SHUTDOWN_DELAY_MS=3000, SHUTDOWN_TIMEOUT_MS=15000): exit ${exit.code} after ${exit.at - t0} ms`;
}

async function main() {
  const all = ['pipeline-metrics', 'pipeline-live', 'idle', 'slowloris', 'in-flight', 'drain'];
  const wanted = process.argv.slice(2).length ? process.argv.slice(2) : all;
  for (const w of wanted) if (!all.includes(w)) throw new Error(`unknown scenario ${w}; use ${all.join(', ')}`);
  const pg = await startPostgres();
  const redis = await startRedis();
  try {
    const dbUrl = await pg.createDatabase('abuse');
    for (const w of wanted) {
      const api = await startApi(
        dbUrl,
        redis.url,
        w === 'drain' ? { SHUTDOWN_DELAY_MS: '3000', SHUTDOWN_TIMEOUT_MS: '15000' } : {},
      );
      try {
        await sleep(1000);
        if (w === 'pipeline-metrics') console.log(await pipeline(api, '/metrics'));
        if (w === 'pipeline-live') console.log(await pipeline(api, '/health/live'));
        if (w === 'idle') console.log(await manySockets(api, 'idle', 15_000));
        if (w === 'slowloris') console.log(await manySockets(api, 'slowloris', 15_000));
        if (w === 'in-flight') console.log(await manySockets(api, 'in-flight', Number(process.env.IN_FLIGHT_SOCKETS ?? 4000)));
        if (w === 'drain') console.log(await drain(api));
      } finally {
        await stopApi(api);
      }
    }
  } finally {
    await redis.stop();
    await pg.stop();
  }
}

await main();
