/**
 * Benchmark of the load engine (not a test). Starts one nginx worker on loopback serving a fixed small
 * response with keep-alive, then, in the same run and in rotating order:
 *   1. throughput with 32 keep-alive connections: our engine (closed model, ledger on) vs autocannon
 *      vs wrk (-t1), each in its own process, median of --rounds;
 *   2. the highest constant arrival rate our engine sustains within 1% of target with the p99 of its
 *      own scheduling delay <= 1 ms (search by doubling, then bisection);
 *   3. ledger memory per request.
 * For context, two references in the same rounds: a bare undici loop on the same 32 Clients (no
 * ledger, statistics or scheduling: what the engine costs above its HTTP client) and a bare
 * net.Socket loop with a prebuilt request and content-length framing only (roughly the ceiling of
 * any HTTP client in one Node process; not a usable client).
 * Every process it starts (nginx, the tools, its own children) is stopped at the end, also on Ctrl-C.
 *
 *   node bench/load-engine.ts [--duration 10s] [--rounds 5] [--trial 5s] [--no-rate-search] [--no-references]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, waitForPort } from '../lib/net/free-port.ts';
import { startProcess, type OwnedProcess } from '../lib/proc/child.ts';
import { runLoad, parseDuration } from '../lib/load/index.ts';
import { LEDGER_BYTES_PER_ROW } from '../lib/load/ledger.ts';

const CONNECTIONS = 32;
const self = resolve(import.meta.dirname, 'load-engine.ts');

// ------------------------------------------------------------------ child mode: one engine run

interface EngineRunResult {
  reqPerSec: number;
  requests: number;
  failed: number;
  dropped: number;
  achieved: number;
  target: number | null;
  scheduleDelayP99: number | null;
  ledgerBytesPerRequest: number;
  ledgerRows: number;
  /** CPU time (user + system) of the engine process per request over the run, µs. */
  cpuUsPerRequest: number;
  /** Event-loop utilization over the run: near 1 means CPU-bound, lower means waiting for the server. */
  elu: number;
}

async function engineChild(spec: {
  url: string;
  mode: 'throughput' | 'rate';
  durationMs: number;
  rate?: number;
  precision?: 'timer' | 'spin';
}): Promise<EngineRunResult> {
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const r = await runLoad({
    url: spec.url,
    executor:
      spec.mode === 'throughput'
        ? { executor: 'constant-vus', vus: CONNECTIONS, duration: spec.durationMs }
        : { executor: 'constant-arrival-rate', rate: spec.rate!, duration: spec.durationMs },
    connections: CONNECTIONS,
    maxRequests: 20_000_000,
    precision: spec.precision ?? 'timer',
    thresholds: { http_req_failed: ['rate<0.001'] },
    // As the experiments run it: the attribution headers are looked up on every response.
    identityHeaders: { backend: 'x-served-by', version: 'x-app-version' },
  });
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0).utilization;
  // Requests that ended inside the measured window, as wrk and autocannon count them.
  let inWindow = 0;
  for (let row = 0; row < r.ledger.length; row++) if (r.ledger.endedAt(row) <= spec.durationMs) inWindow++;
  const s = r.summary;
  return {
    reqPerSec: inWindow / (spec.durationMs / 1000),
    requests: s.counts.scheduled,
    failed: s.counts.failed,
    dropped: s.counts.dropped,
    achieved: s.rates.achieved,
    target: s.rates.target,
    scheduleDelayP99: s.metrics.schedule_delay?.['p(99)'] ?? null,
    ledgerBytesPerRequest: s.ledger.bytesPerRequest,
    ledgerRows: s.ledger.rows,
    cpuUsPerRequest: Math.round(((cpu.user + cpu.system) / Math.max(1, s.counts.scheduled)) * 100) / 100,
    elu: Math.round(elu * 1000) / 1000,
  };
}

// ------------------------------------------------------------------ child mode: the references

interface ReferenceResult {
  reqPerSec: number;
  cpuUsPerRequest: number;
  elu: number;
}

async function referenceChild(kind: 'undici' | 'net', url: string, durationMs: number): Promise<ReferenceResult> {
  const { Client } = await import('undici');
  const { connect } = await import('node:net');
  const target = new URL(url);
  let n = 0;
  let stop = false;
  let start: () => void;
  let close: () => Promise<unknown>;
  if (kind === 'undici') {
    const clients = Array.from({ length: CONNECTIONS }, () => new Client(target.origin, { pipelining: 1 }));
    const opts = { method: 'GET', path: target.pathname, headers: {} };
    const go = (c: InstanceType<typeof Client>): void => {
      c.dispatch(opts, {
        onRequestStart() {},
        onResponseStart() {},
        onResponseData() {},
        onResponseEnd() {
          n++;
          if (!stop) go(c);
        },
        onResponseError() {
          if (!stop) throw new Error('undici reference: a request failed');
        },
      });
    };
    await new Promise<void>((r) => {
      clients[0].dispatch(opts, {
        onRequestStart() {},
        onResponseStart() {},
        onResponseData() {},
        onResponseEnd: () => r(),
        onResponseError: () => r(),
      });
    });
    start = () => {
      for (const c of clients) go(c);
    };
    close = () => Promise.allSettled(clients.map((c) => c.close()));
  } else {
    const req = Buffer.from(`GET ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\n\r\n`);
    const sockets = Array.from({ length: CONNECTIONS }, () => {
      const s = connect({ host: target.hostname, port: Number(target.port), noDelay: true });
      let buf: Buffer | null = null;
      s.on('data', (d: Buffer) => {
        buf = buf ? Buffer.concat([buf, d]) : d;
        for (;;) {
          const end: number = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const m = /content-length: *(\d+)/i.exec(buf.toString('latin1', 0, end));
          const total: number = end + 4 + (m ? Number(m[1]) : 0);
          if (buf.length < total) return;
          buf = buf.length === total ? null : buf.subarray(total);
          n++;
          if (!stop) s.write(req);
          if (!buf) return;
        }
      });
      s.on('error', () => {});
      return s;
    });
    await Promise.all(sockets.map((s) => new Promise((r) => s.once('connect', r))));
    start = () => {
      for (const s of sockets) s.write(req);
    };
    close = async () => {
      for (const s of sockets) s.destroy();
    };
  }
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  start();
  await new Promise((r) => setTimeout(r, durationMs));
  const done = n;
  const dt = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  stop = true;
  const elu = performance.eventLoopUtilization(elu0).utilization;
  await close();
  return {
    reqPerSec: done / (dt / 1000),
    cpuUsPerRequest: Math.round(((cpu.user + cpu.system) / done) * 100) / 100,
    elu: Math.round(elu * 1000) / 1000,
  };
}

// ------------------------------------------------------------------ process ownership

const children = new Set<ChildProcess>();
let nginx: OwnedProcess | null = null;
let workDir: string | null = null;

async function cleanup(): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  if (nginx) await nginx.stop('SIGTERM', 3000).catch(() => {});
  nginx = null;
  if (workDir) await rm(workDir, { recursive: true, force: true }).catch(() => {});
  workDir = null;
}

/**
 * CPU time (ms, user + system) of this process's children that have exited and been waited for
 * (/proc/self/stat cutime + cstime): the CPU a tool's whole process used, measured the same way
 * for every tool, so that their costs per request compare even on a machine busy with other work.
 */
async function childrenCpuMs(): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile('/proc/self/stat', 'utf8').catch(() => '');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * (1000 / CLOCK_TICKS);
}
const CLOCK_TICKS = 100;

function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; cpuMs: number }> {
  return childrenCpuMs().then(
    (cpu0) =>
      new Promise((res, rej) => {
        const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        children.add(child);
        let stdout = '',
          stderr = '';
        child.stdout!.on('data', (d) => {
          stdout += d;
        });
        child.stderr!.on('data', (d) => {
          stderr += d;
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.on('error', (e) => {
          clearTimeout(timer);
          children.delete(child);
          rej(e);
        });
        child.on('close', (code) => {
          clearTimeout(timer);
          children.delete(child);
          void childrenCpuMs().then((cpu1) => res({ code, stdout, stderr, cpuMs: cpu1 - cpu0 }));
        });
      }),
  );
}

async function startNginx(): Promise<string> {
  workDir = await mkdtemp(join(tmpdir(), 'verdict-bench-nginx-'));
  const port = await freePort();
  const d = workDir;
  await writeFile(
    join(d, 'nginx.conf'),
    `
worker_processes 1;
daemon off;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${d}/body; proxy_temp_path ${d}/proxy; fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi; scgi_temp_path ${d}/scgi;
  keepalive_timeout 75s;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:${port};
    location / {
      add_header X-Served-By nginx-bench;
      add_header X-App-Version bench;
      return 200 "ok\\n";
    }
  }
}
`,
  );
  nginx = startProcess('nginx', ['-c', join(d, 'nginx.conf'), '-p', d, '-e', join(d, 'error.log')], { name: 'nginx' });
  try {
    await waitForPort('127.0.0.1', port, 5000);
  } catch (err) {
    throw new Error(`nginx did not start (is the nginx-light Debian package installed?): ${nginx.tail()}`, { cause: err });
  }
  return `http://127.0.0.1:${port}/`;
}

// ------------------------------------------------------------------ the three tools

/** One run of a tool: throughput, and its whole process's CPU time per request (µs). */
interface ToolRun {
  reqPerSec: number;
  processCpuUsPerRequest: number;
}
const perRequest = (cpuMs: number, requests: number) => Math.round(((cpuMs * 1000) / Math.max(1, requests)) * 100) / 100;

async function ours(url: string, durationMs: number): Promise<EngineRunResult & ToolRun> {
  const spec = JSON.stringify({ url, mode: 'throughput', durationMs });
  const r = await run(process.execPath, [self, '--child', spec], durationMs + 60_000);
  if (r.code !== 0) throw new Error(`engine run failed (${r.code}): ${r.stderr}`);
  const res: EngineRunResult = JSON.parse(r.stdout);
  return { ...res, processCpuUsPerRequest: perRequest(r.cpuMs, res.requests) };
}

async function reference(kind: 'undici' | 'net', url: string, durationMs: number): Promise<ReferenceResult & ToolRun> {
  const r = await run(
    process.execPath,
    [self, '--reference', kind, '--child', JSON.stringify({ url, durationMs })],
    durationMs + 60_000,
  );
  if (r.code !== 0) throw new Error(`${kind} reference failed (${r.code}): ${r.stderr}`);
  const res: ReferenceResult = JSON.parse(r.stdout);
  return { ...res, processCpuUsPerRequest: perRequest(r.cpuMs, (res.reqPerSec * durationMs) / 1000) };
}

async function autocannon(url: string, durationMs: number): Promise<ToolRun> {
  const bin = resolve(import.meta.dirname, '../node_modules/autocannon/autocannon.js');
  const r = await run(
    process.execPath,
    [bin, '-c', String(CONNECTIONS), '-d', String(durationMs / 1000), '-j', url],
    durationMs + 60_000,
  );
  if (r.code !== 0) throw new Error(`autocannon failed (${r.code}): ${r.stderr}`);
  const j = JSON.parse(r.stdout);
  if (j.errors || j.non2xx) throw new Error(`autocannon saw ${j.errors} errors, ${j.non2xx} non-2xx`);
  return { reqPerSec: j.requests.total / j.duration, processCpuUsPerRequest: perRequest(r.cpuMs, j.requests.total) };
}

async function wrk(url: string, durationMs: number): Promise<ToolRun> {
  const r = await run('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${Math.round(durationMs / 1000)}s`, url], durationMs + 60_000);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  const n = /(\d+) requests in/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`wrk failed (is the wrk Debian package installed?): ${r.stderr || r.stdout}`);
  return { reqPerSec: Number(m[1]), processCpuUsPerRequest: perRequest(r.cpuMs, Number(n?.[1] ?? 0)) };
}

async function rateTrial(
  url: string,
  rate: number,
  durationMs: number,
  precision: 'timer' | 'spin',
): Promise<EngineRunResult & { ok: boolean }> {
  const spec = JSON.stringify({ url, mode: 'rate', durationMs, rate, precision });
  const r = await run(process.execPath, [self, '--child', spec], durationMs + 60_000);
  if (r.code !== 0) throw new Error(`engine rate trial failed (${r.code}): ${r.stderr}`);
  const res: EngineRunResult = JSON.parse(r.stdout);
  const ok =
    Math.abs(res.achieved - rate) / rate <= 0.01 &&
    (res.scheduleDelayP99 ?? Infinity) <= 1 &&
    res.dropped === 0 &&
    res.failed === 0;
  return { ...res, ok };
}

// ------------------------------------------------------------------ main

async function timerJitter(ms: number): Promise<{ p50: number; p99: number; max: number }> {
  const lates: number[] = [];
  let last = performance.now();
  await new Promise<void>((res) => {
    const t = setInterval(() => {
      const now = performance.now();
      lates.push(now - last - 1);
      last = now;
    }, 1);
    setTimeout(() => {
      clearInterval(t);
      res();
    }, ms);
  });
  lates.sort((a, b) => a - b);
  return { p50: lates[Math.floor(lates.length / 2)], p99: lates[Math.floor(lates.length * 0.99)], max: lates[lates.length - 1] };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      duration: { type: 'string', default: '10s' },
      rounds: { type: 'string', default: '5' },
      trial: { type: 'string', default: '5s' },
      'no-rate-search': { type: 'boolean' },
      'no-references': { type: 'boolean' },
      reference: { type: 'string' },
    },
  });
  if (values.child && values.reference) {
    const spec = JSON.parse(values.child);
    process.stdout.write(
      JSON.stringify(await referenceChild(values.reference as 'undici' | 'net', spec.url, spec.durationMs)) + '\n',
    );
    process.exit(0);
  }
  if (values.child) {
    process.stdout.write(JSON.stringify(await engineChild(JSON.parse(values.child))) + '\n');
    return;
  }
  const durationMs = parseDuration(values.duration!);
  const rounds = Number(values.rounds);
  const trialMs = parseDuration(values.trial!);

  const url = await startNginx();
  console.log(
    `bench: nginx (1 worker) at ${url}; ${CONNECTIONS} keep-alive connections, ${values.duration} per run, ${rounds} rounds`,
  );
  await run('wrk', ['-t1', `-c${CONNECTIONS}`, '-d1s', url], 30_000); // warm nginx up

  const results = {
    ours: [] as number[],
    autocannon: [] as number[],
    wrk: [] as number[],
    undici: [] as number[],
    net: [] as number[],
  };
  const oursDetail: EngineRunResult[] = [];
  const cpu = {
    ours: [] as number[],
    autocannon: [] as number[],
    wrk: [] as number[],
    undici: [] as number[],
    net: [] as number[],
  };
  let lastOurs: EngineRunResult | null = null;
  const order: (keyof typeof results)[] = values['no-references']
    ? ['ours', 'autocannon', 'wrk']
    : ['ours', 'autocannon', 'wrk', 'undici', 'net'];
  for (let round = 0; round < rounds; round++) {
    const line: string[] = [];
    for (let k = 0; k < order.length; k++) {
      const tool = order[(k + round) % order.length];
      if (tool === 'ours') {
        const o = await ours(url, durationMs);
        lastOurs = o;
        if (o.failed) throw new Error(`our engine saw ${o.failed} failed requests against nginx`);
        results.ours.push(o.reqPerSec);
        cpu.ours.push(o.processCpuUsPerRequest);
        oursDetail.push(o);
      } else if (tool === 'autocannon' || tool === 'wrk') {
        const t = tool === 'autocannon' ? await autocannon(url, durationMs) : await wrk(url, durationMs);
        results[tool].push(t.reqPerSec);
        cpu[tool].push(t.processCpuUsPerRequest);
      } else {
        const ref = await reference(tool, url, durationMs);
        results[tool].push(ref.reqPerSec);
        cpu[tool].push(ref.processCpuUsPerRequest);
      }
      line.push(`${tool} ${fmt(results[tool].at(-1)!)}`);
    }
    const r = round;
    console.log(
      `  round ${round + 1}: ${line.join('   ')}   ours/autocannon ${(results.ours[r] / results.autocannon[r]).toFixed(2)}×   ours/wrk ${(results.ours[r] / results.wrk[r]).toFixed(2)}×`,
    );
  }
  const m = { ours: median(results.ours), autocannon: median(results.autocannon), wrk: median(results.wrk) };
  // Other work on the machine drifts between runs; ratios within a round compare like with like.
  const paired = {
    autocannon: median(results.ours.map((o, i) => o / results.autocannon[i])),
    wrk: median(results.ours.map((o, i) => o / results.wrk[i])),
  };
  console.log('');
  console.log('throughput (median req/s, 32 connections, closed loop):');
  console.log(
    `  verdict engine (undici, ledger on)  ${fmt(m.ours).padStart(8)}   ${(m.ours / m.autocannon).toFixed(2)}× autocannon (goal ≥ 1.2×)   ${(m.ours / m.wrk).toFixed(2)}× wrk`,
  );
  console.log(
    `    median of per-round ratios:                  ${paired.autocannon.toFixed(2)}× autocannon                  ${paired.wrk.toFixed(2)}× wrk`,
  );
  console.log(`  autocannon                          ${fmt(m.autocannon).padStart(8)}`);
  console.log(`  wrk -t1                             ${fmt(m.wrk).padStart(8)}`);
  if (results.undici.length) {
    const mu = median(results.undici),
      mn = median(results.net);
    console.log('  references (not load generators; the same 32 connections):');
    console.log(
      `    bare undici loop (no ledger)      ${fmt(mu).padStart(8)}   engine/bare undici ${median(results.ours.map((o, i) => o / results.undici[i])).toFixed(2)}× (per round)`,
    );
    console.log(`    bare net.Socket loop              ${fmt(mn).padStart(8)}   (prebuilt request, content-length framing only)`);
  }
  // Throughput ratios swing with whatever else the machine runs; CPU per request hardly does.
  const cpuMedian = (k: keyof typeof cpu) => median(cpu[k]);
  console.log('');
  console.log('CPU per request (µs, user + system of the whole process, start-up included; median of rounds):');
  for (const [k, label] of [
    ['ours', 'verdict engine (ledger on)'],
    ['autocannon', 'autocannon'],
    ['wrk', 'wrk -t1'],
    ['undici', 'bare undici loop'],
    ['net', 'bare net.Socket loop'],
  ] as const) {
    if (!cpu[k].length) continue;
    const note = k === 'ours' ? '' : `   engine uses ${(cpuMedian('ours') / cpuMedian(k)).toFixed(2)}× its CPU per request`;
    console.log(`  ${label.padEnd(34)}${cpuMedian(k).toFixed(2).padStart(8)}${note}`);
  }
  console.log(
    `  (engine in-run: ${median(oursDetail.map((d) => d.cpuUsPerRequest)).toFixed(2)} µs per request, event-loop utilization ${median(oursDetail.map((d) => d.elu)).toFixed(2)}; 1 = CPU-bound)`,
  );

  if (!values['no-rate-search']) {
    // The machine's own timer jitter, for context: no scheduler in this process can beat it.
    const jitter = await timerJitter(2000);
    console.log('');
    console.log(
      `this machine's timer jitter (setInterval 1 ms, idle process): p50 ${jitter.p50.toFixed(3)} ms, p99 ${jitter.p99.toFixed(3)} ms, max ${jitter.max.toFixed(1)} ms`,
    );
    for (const precision of ['spin', 'timer'] as const) {
      console.log('');
      console.log(
        `max constant arrival rate within 1% of target, p99 scheduling delay <= 1 ms, no drops or failures (${values.trial} trials, --precision ${precision}):`,
      );
      let good = 0,
        bad = 0,
        rate = 1000;
      const trial = async (r: number) => {
        const t = await rateTrial(url, r, trialMs, precision);
        console.log(
          `  ${fmt(r).padStart(7)}/s: achieved ${t.achieved.toFixed(0)}/s, schedule delay p99 ${t.scheduleDelayP99} ms, dropped ${t.dropped}, failed ${t.failed} → ${t.ok ? 'ok' : 'no'}`,
        );
        return t.ok;
      };
      while (rate <= 256_000) {
        if (await trial(rate)) {
          good = rate;
          rate *= 2;
        } else {
          bad = rate;
          break;
        }
      }
      // Not even the first rate: halve until one holds (or give up at 125/s).
      while (!good && rate > 125) {
        rate /= 2;
        if (await trial(rate)) good = rate;
        else bad = rate;
      }
      for (let i = 0; i < 3 && bad && good && bad - good > good * 0.1; i++) {
        const mid = Math.round((good + bad) / 2 / 100) * 100;
        if (await trial(mid)) good = mid;
        else bad = mid;
      }
      console.log(
        `  → ${precision}: ${good ? `sustained ${fmt(good)}/s` : `not sustained at ${fmt(bad)}/s, the lowest rate tried`}${good && bad ? ` (not at ${fmt(bad)}/s)` : ''}`,
      );
    }
  }

  console.log('');
  console.log(
    `ledger: ${LEDGER_BYTES_PER_ROW} bytes per row in columns; allocated ${lastOurs!.ledgerBytesPerRequest} bytes per request over ${fmt(lastOurs!.ledgerRows)} rows (chunks of 16,384 rows)`,
  );
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\nbench: ${sig}: stopping everything it started`);
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (err) {
  // After Ctrl-C the tools die under us; that is not worth a stack trace.
  if (!interrupted) {
    console.error(`bench: ${(err as Error).stack ?? err}`);
    process.exitCode = 1;
  }
} finally {
  if (!interrupted) await cleanup();
}
