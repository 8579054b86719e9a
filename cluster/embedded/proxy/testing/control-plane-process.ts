import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { freePort } from '../../../../lib/net/free-port.ts';

/**
 * A throw-away kube-embedded (cluster/embedded/controlplane) for the proxy's cluster tests and the
 * network benchmark: its own state directory and free ports, so it runs next to anything else.
 * It does not build the binary (a cold build takes long): it takes `$VERDICT_KUBE_EMBEDDED` or
 * the newest cached build, and fails naming the build command when there is none.
 */
export interface ControlPlaneProcess extends AsyncDisposable {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  pid: number;
  /** Last lines of its stderr, for failure messages. */
  logTail(): string;
  stop(): Promise<void>;
}

export function findControlPlaneBinary(): string | undefined {
  const fromEnv = process.env.VERDICT_KUBE_EMBEDDED;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  const root = join(process.env.VERDICT_CACHE ?? join(homedir(), '.cache', 'verdict'), 'controlplane');
  let best: { path: string; mtime: number } | undefined;
  for (const dir of existsSync(root) ? readdirSync(root) : []) {
    const p = join(root, dir, 'kube-embedded');
    if (!existsSync(p)) continue;
    const mtime = statSync(p).mtimeMs;
    if (!best || mtime > best.mtime) best = { path: p, mtime };
  }
  return best?.path;
}

export async function startControlPlane(opts: { readyTimeoutMs?: number } = {}): Promise<ControlPlaneProcess> {
  const binary = findControlPlaneBinary();
  if (!binary) throw new Error('kube-embedded binary not found: build it with cluster/embedded/controlplane/build.sh (or set VERDICT_KUBE_EMBEDDED)');
  const stateDir = await mkdtemp(join(tmpdir(), 'verdict-cp-'));
  const port = await freePort();
  let etcdPort = await freePort();
  for (let i = 0; i < 20 && !(await portFree(etcdPort + 1)); i++) etcdPort = await freePort();
  const child = spawn(binary, ['--state-dir', stateDir, '--port', String(port), '--etcd-port', String(etcdPort), '--etcd-unsafe-no-fsync'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  child.stderr.on('data', (b: Buffer) => {
    for (const line of b.toString().split('\n')) if (line) { tail.push(line); if (tail.length > 30) tail.shift(); }
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    await rm(stateDir, { recursive: true, force: true });
  };
  try {
    const kubeconfigPath = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`kube-embedded not ready within ${opts.readyTimeoutMs ?? 120_000} ms:\n${tail.join('\n')}`)), opts.readyTimeoutMs ?? 120_000);
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /ready kubeconfig=(\S+)/.exec(out);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`kube-embedded exited (${code ?? signal}) before ready:\n${tail.join('\n')}`)); });
    });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    return { kubeconfigPath, kubeConfig, pid: child.pid ?? -1, logTail: () => tail.join('\n'), stop, [Symbol.asyncDispose]: stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function portFree(port: number): Promise<boolean> {
  const { createServer } = await import('node:net');
  return await new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
