import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../net/free-port.ts';
import { startProcess, type OwnedProcess } from '../proc/child.ts';

export interface PrometheusOptions {
  /** Scrape jobs: a name and `host:port` targets (metrics path `/metrics`). */
  jobs: Array<{ name: string; targets: string[]; metricsPath?: string }>;
  /**
   * Jobs whose targets come from a file (`file_sd_configs`) that the caller keeps current with
   * {@link PrometheusServer.setFileTargets}; Prometheus re-reads it on every change (Debian's build
   * has no Kubernetes discovery: a caller that watches pods feeds it this way).
   */
  fileJobs?: Array<{ name: string; metricsPath?: string }>;
  /** Scrape (and evaluation) interval in seconds. Default 1. */
  scrapeIntervalSeconds?: number;
  port?: number;
  parentDir?: string;
}

export interface PrometheusServer extends AsyncDisposable {
  readonly port: number;
  /** `http://127.0.0.1:<port>`: the HTTP API's base URL. */
  readonly url: string;
  /** Stops the server but keeps its port, config and data, so start() brings the same server back. */
  pause(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Replaces a file job's targets (`host:port` with labels), atomically. */
  setFileTargets(job: string, groups: Array<{ targets: string[]; labels?: Record<string, string> }>): Promise<void>;
  /** Resolves once every target of every job has been scraped successfully (`up == 1`). */
  waitForTargets(timeoutMs?: number): Promise<void>;
  tail(): string;
}

export function prometheusBin(): string {
  for (const dir of ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    if (dir && existsSync(join(dir, 'prometheus'))) return join(dir, 'prometheus');
  }
  throw new Error("prometheus not found: run `make setup` (installs Debian's prometheus package)");
}

/**
 * A throw-away Prometheus server on 127.0.0.1 with its own config and data directory in a temp
 * directory (Debian's `prometheus` package, started as a child process, never the system service).
 */
export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  const bin = prometheusBin();
  const port = opts.port ?? (await freePort());
  const dir = await mkdtemp(join(opts.parentDir ?? tmpdir(), 'verdict-prometheus-'));
  const interval = `${opts.scrapeIntervalSeconds ?? 1}s`;
  const targetsFile = (job: string) => join(dir, `targets-${job.replace(/[^A-Za-z0-9_-]/g, '_')}.json`);
  for (const j of opts.fileJobs ?? []) await writeFile(targetsFile(j.name), '[]');
  const fileJobs = (opts.fileJobs ?? []).map((j) => ({
    job_name: j.name,
    metrics_path: j.metricsPath ?? '/metrics',
    file_sd_configs: [{ files: [targetsFile(j.name)], refresh_interval: interval }],
  }));
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    scrape_configs: [
      ...opts.jobs.map((j) => ({
        job_name: j.name,
        metrics_path: j.metricsPath ?? '/metrics',
        static_configs: [{ targets: j.targets }],
      })),
      ...fileJobs,
    ],
  };
  await writeFile(join(dir, 'prometheus.yml'), stringify(config));
  const url = `http://127.0.0.1:${port}`;
  let proc: OwnedProcess | undefined;
  let removed = false;
  const start = async () => {
    if (proc && !proc.exited()) return;
    proc = startProcess(
      bin,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { name: 'prometheus', cwd: dir },
    );
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (proc.exited()) throw new Error(`prometheus exited during start-up (${await proc.exit}):\n${proc.tail()}`);
      const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) return;
      if (Date.now() > deadline) {
        await proc.stop('SIGKILL');
        throw new Error(`prometheus not ready within 30 s:\n${proc.tail()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const pause = async () => {
    if (proc) await proc.stop('SIGTERM', 10_000);
  };
  const stop = async () => {
    await pause();
    if (!removed) {
      removed = true;
      await rm(dir, { recursive: true, force: true });
    }
  };
  const waitForTargets = async (timeoutMs = 30_000) => {
    const want = opts.jobs.reduce((n, j) => n + j.targets.length, 0);
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const body = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: 'up == 1' })}`, {
        signal: AbortSignal.timeout(2000),
      }).then(
        (r) => r.json() as Promise<{ data?: { result?: unknown[] } }>,
        (e: Error) => ({ error: e.message }),
      );
      const up = 'data' in body ? (body.data?.result?.length ?? 0) : 0;
      if (up >= want) return;
      last = JSON.stringify(body).slice(0, 300);
      if (Date.now() > deadline)
        throw new Error(`prometheus scraped ${up} of ${want} targets within ${timeoutMs / 1000} s (last answer ${last})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  try {
    await start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const setFileTargets = async (job: string, groups: Array<{ targets: string[]; labels?: Record<string, string> }>) => {
    if (!(opts.fileJobs ?? []).some((j) => j.name === job)) throw new Error(`prometheus has no file job "${job}"`);
    const tmp = `${targetsFile(job)}.tmp`;
    await writeFile(tmp, JSON.stringify(groups.map((g) => ({ targets: g.targets, labels: g.labels ?? {} }))));
    await rename(tmp, targetsFile(job));
  };
  return {
    port,
    url,
    start,
    pause,
    stop,
    waitForTargets,
    setFileTargets,
    tail: () => proc?.tail() ?? '',
    [Symbol.asyncDispose]: stop,
  };
}
