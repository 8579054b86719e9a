import { spawn, type ChildProcess } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { inject } from 'vitest';
import { freePort } from '../../lib/net/free-port.ts';
import { freshDatabase } from '../../test/databases.ts';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service.ts';

export const TEST_SECRET = 'test-secret-test-secret-test-secret-0123';

/**
 * A token the test API accepts. `licenses` is the claim binding the subject to licenses: every
 * license (`['*']`, what the harness's own tokens carry) unless given; `null` leaves it out.
 */
export function mintToken(
  subject = 'user-1',
  opts: { secret?: string; expiresIn?: string; alg?: string; licenses?: unknown } = {},
): Promise<string> {
  const licenses = opts.licenses === undefined ? ['*'] : opts.licenses;
  return new SignJWT(licenses === null ? {} : { licenses })
    .setProtectedHeader({ alg: opts.alg ?? 'HS256' })
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '10m')
    .sign(new TextEncoder().encode(opts.secret ?? TEST_SECRET));
}

export interface TestApi extends AsyncDisposable {
  service: Service;
  url: string;
  /** The service's own database (query it with a client of your own once the service is shut down). */
  databaseUrl: string;
  token: string;
  post(path: string, body: unknown, token?: string): Promise<{ status: number; body: any; headers: Headers }>;
}

/** The license API in this process, on a fresh database of the suite's Postgres and the suite's Redis. */
export async function startTestApi(env: Record<string, string> = {}): Promise<TestApi> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: env.DATABASE_URL ?? (await freshDatabase('api')),
    REDIS_URL: inject('redisUrl'),
    JWT_SECRET: TEST_SECRET,
    LOG_LEVEL: 'warn',
    POD_NAME: 'test-pod',
    APP_VERSION: 'test',
    SHUTDOWN_DELAY_MS: '0',
    LICENSE_SEED: 'TEST-KEY=3',
    ...env,
  });
  const service = await startService(config);
  const token = await mintToken();
  const post = async (path: string, body: unknown, tok: string = token) => {
    const res = await fetch(service.url + path, {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: the test will say so */
    }
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
  return {
    service,
    url: service.url,
    databaseUrl: config.DATABASE_URL,
    token,
    post,
    [Symbol.asyncDispose]: () => service.shutdown('test over'),
  };
}

export interface ApiProcess extends AsyncDisposable {
  child: ChildProcess;
  url: string;
  port: number;
  output(): string;
  exit: Promise<{ code: number | null; signal: string | null; at: number }>;
}

export interface SpawnOptions {
  /** A bundle's entry instead of license-api/src/main.ts. */
  entry?: string;
  /** What to wait for before returning: readiness 200 (the default), or only the listening socket (/health/live). */
  waitFor?: 'ready' | 'listening';
}

/** The license API as its own OS process (`node license-api/src/main.ts`, or a bundle's entry), as a container would run it. */
export async function spawnApi(env: Record<string, string>, opts: string | SpawnOptions = {}): Promise<ApiProcess> {
  const { entry, waitFor = 'ready' } = typeof opts === 'string' ? { entry: opts } : opts;
  const port = await freePort();
  const main = entry ?? fileURLToPath(new URL('../src/main.ts', import.meta.url));
  const child = spawn(process.execPath, [main], {
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: env.DATABASE_URL ?? (await freshDatabase('proc')),
      REDIS_URL: inject('redisUrl'),
      JWT_SECRET: TEST_SECRET,
      LOG_LEVEL: 'info',
      POD_NAME: 'proc-pod',
      APP_VERSION: 'test',
      LICENSE_SEED: 'TEST-KEY=1000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: entry ? dirname(entry) : undefined,
  });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exit = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`license-api exited during start-up:\n${out}`);
    const ok = await fetch(`${url}/health/${waitFor === 'ready' ? 'ready' : 'live'}`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`license-api not ready within 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url,
    port,
    output: () => out,
    exit,
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exit;
      }
    },
  };
}
