/**
 * Benchmark (not a test): license API heartbeat throughput and latency against a bare Express
 * hello-world measured in the same run on the same machine.
 *
 *   make bench            (or: node bench/heartbeat.ts [--duration 10])
 *
 * Prints max req/s of each (32 keep-alive connections, autocannon), the ratio (goal >= 0.5) and
 * the heartbeat p99 at 80% of the API's max rate (goal <= 20 ms). Traffic goes to 127.0.0.1 only;
 * every load is bounded in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import { freePort, waitForPort } from '../lib/net/free-port.ts';
import { startPostgres } from '../lib/services/postgres.ts';
import { startRedis } from '../lib/services/redis.ts';

const durationArg = process.argv.indexOf('--duration');
const DURATION = durationArg > 0 ? Number(process.argv[durationArg + 1]) : 10;
const CONNECTIONS = 32;
const SECRET = 'bench-secret-bench-secret-bench-secret-00';
const children: ChildProcess[] = [];
const cleanup: Array<() => Promise<void>> = [];

async function spawnNode(args: string[], env: Record<string, string>, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  await waitForPort('127.0.0.1', port, 30_000);
  return child;
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

type Shape = Pick<autocannon.Options, 'method' | 'headers' | 'requests'>;

async function load(url: string, shape: Shape, rate?: number, duration = DURATION): Promise<Result> {
  const r = await autocannon({ url, connections: CONNECTIONS, duration, overallRate: rate, ...shape });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

async function main() {
  process.stderr.write(`bench: starting Postgres, Redis, the license API and a hello-world Express (${DURATION} s per run)\n`);
  const pg = await startPostgres();
  cleanup.push(() => pg.stop());
  const redis = await startRedis();
  cleanup.push(() => redis.stop());
  const dbUrl = await pg.createDatabase('bench');

  const apiPort = await freePort();
  await spawnNode(
    [fileURLToPath(new URL('../license-api/src/main.ts', import.meta.url))],
    {
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      DATABASE_URL: dbUrl,
      REDIS_URL: redis.url,
      JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      LICENSE_SEED: 'BENCH=1000',
      NODE_ENV: 'production',
    },
    apiPort,
  );
  const helloPort = await freePort();
  await spawnNode([fileURLToPath(new URL('./hello-express.ts', import.meta.url))], { PORT: String(helloPort) }, helloPort);

  const api = `http://127.0.0.1:${apiPort}`;
  for (let i = 0; i < 100; i++) {
    if (
      (await fetch(`${api}/health/ready`).then(
        (r) => r.status,
        () => 0,
      )) === 200
    )
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const token = await new SignJWT({ licenses: ['*'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('bench')
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(SECRET));
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
  // Real clients heartbeat their own sessions: 500 sessions, taken in turn (one hot row would
  // measure Postgres row-lock queueing instead of the service).
  const sessions: string[] = [];
  for (let i = 0; i < 500; i++) {
    const acq = await fetch(`${api}/api/v1/licenses/acquire`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ license_key: 'BENCH', hardware_id: `bench-hw-${i}` }),
    });
    sessions.push(((await acq.json()) as { session_id: string }).session_id);
  }
  let next = 0;
  const heartbeat: Shape = {
    method: 'POST',
    headers,
    requests: [
      {
        method: 'POST',
        path: '/api/v1/licenses/heartbeat',
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ session_id: sessions[next++ % sessions.length] }) }),
      },
    ],
  };
  const hb1 = `${api}/api/v1/licenses/heartbeat`;

  // Warm both servers up (JIT, pools), then measure.
  await load(`http://127.0.0.1:${helloPort}/`, {}, undefined, 2);
  await load(hb1, heartbeat, undefined, 2);

  const hello = await load(`http://127.0.0.1:${helloPort}/`, {});
  const hb = await load(hb1, heartbeat);
  const target = Math.floor(hb.rps * 0.8);
  const at80 = await load(hb1, heartbeat, target);

  const row = (name: string, r: Result) =>
    `${name.padEnd(30)} ${r.rps.toFixed(0).padStart(8)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${String(r.errors + r.non2xx).padStart(8)}`;
  console.log(
    `\n${'run'.padEnd(30)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'errors'.padStart(8)}`,
  );
  console.log(row('express hello-world (ref)', hello));
  console.log(row('heartbeat, max', hb));
  console.log(row(`heartbeat at 80% (${target}/s)`, at80));
  const ratio = hb.rps / hello.rps;
  console.log(
    `\nheartbeat / hello-world throughput ratio: ${ratio.toFixed(2)} (goal >= 0.5) ${ratio >= 0.5 ? 'met' : 'NOT met'}`,
  );
  console.log(`heartbeat p99 at 80% of max: ${at80.p99.toFixed(1)} ms (goal <= 20 ms) ${at80.p99 <= 20 ? 'met' : 'NOT met'}`);
  console.log(`(autocannon ${CONNECTIONS} connections, ${DURATION} s per run, ${new Date().toISOString()})`);
  if (hb.errors + hb.non2xx + at80.errors + at80.non2xx > 0)
    console.log('WARNING: the heartbeat runs had errors or non-2xx answers');
}

async function shutdown() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const f of cleanup.reverse()) await f().catch(() => {});
}
process.once('SIGINT', () => {
  void shutdown().then(() => process.exit(130));
});
main().then(shutdown, async (err) => {
  console.error(`bench failed: ${err?.stack ?? err}`);
  await shutdown();
  process.exit(1);
});
