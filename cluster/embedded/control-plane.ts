import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../lib/net/free-port.ts';
import { startProcess, type OwnedProcess } from '../../lib/proc/child.ts';

const BUILD_SCRIPT = fileURLToPath(new URL('./controlplane/build.sh', import.meta.url));

/**
 * Path of the kube-embedded binary, building it when the cache has none for the current Go
 * sources (minutes on a cold machine; `onProgress` receives the build's progress lines).
 */
export async function controlPlaneBinary(onProgress: (line: string) => void = () => {}): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d;
      for (const line of d.toString().split('\n')) if (line.trim()) onProgress(line.trim());
    });
    child.once('error', (e) => reject(new Error(`cannot run ${BUILD_SCRIPT}: ${e.message}`)));
    child.once('exit', (code) => {
      const path = out.trim().split('\n').at(-1);
      if (code === 0 && path) resolve(path);
      else
        reject(new Error(`building the embedded control plane failed (exit ${code}):\n${err.split('\n').slice(-20).join('\n')}`));
    });
  });
}

export interface ControlPlane extends AsyncDisposable {
  readonly kubeconfig: string;
  /** The process running now (each start makes a new one). */
  readonly process: OwnedProcess;
  /** The apiserver's and etcd's ports, kept across a stop and a start. */
  readonly ports: { api: number; etcd: number; etcdPeer: number };
  /** False between `stop()` and the next `start()`. */
  readonly running: boolean;
  /** Stops etcd, the apiserver, the controller manager and the scheduler (one process); their state stays on disk. */
  stop(): Promise<void>;
  /**
   * Starts them again on the same state (etcd data, certificates, kubeconfig) and the same ports, as a
   * control plane comes back after an upgrade: resolves once the apiserver is ready again.
   */
  start(): Promise<void>;
}

export interface ControlPlaneOptions {
  stateDir: string;
  port?: number;
  etcdPort?: number;
  advertiseAddress?: string;
  onProgress?: (line: string) => void;
  timeoutMs?: number;
  /**
   * kube-controller-manager controllers to run besides the binary's defaults (main.go's list), e.g.
   * `job-controller`. Passed at start-up, so adding one needs no rebuild of the control plane.
   */
  extraControllers?: string[];
}

/** Runs the binary once and waits for its `ready kubeconfig=<path>` line. */
async function launch(bin: string, args: string[], timeoutMs: number): Promise<{ proc: OwnedProcess; kubeconfig: string }> {
  const proc = startProcess(bin, args, { name: 'kube-embedded', keepLines: 60 });
  const kubeconfig = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the control plane was not ready within ${timeoutMs / 1000} s:\n${proc.tail()}`)),
      timeoutMs,
    );
    let buf = '';
    proc.child.stdout?.on('data', (d) => {
      buf += d;
      const m = /ready kubeconfig=(\S+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void proc.exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the control plane exited (${code}) during start-up:\n${proc.tail()}`));
    });
  }).catch(async (err) => {
    await proc.stop('SIGTERM', 5000);
    throw err;
  });
  return { proc, kubeconfig };
}

/** Starts etcd + apiserver + controller-manager + scheduler (one process) and waits for readiness. */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const bin = await controlPlaneBinary(opts.onProgress);
  // Free ports unless told otherwise: a developer's machine may already run a cluster on 6443.
  const ports = {
    api: opts.port ?? (await freePort()),
    etcd: opts.etcdPort ?? (await freePort()),
    etcdPeer: await freePort(),
  };
  const args = [
    '--state-dir',
    opts.stateDir,
    '--port',
    String(ports.api),
    '--etcd-port',
    String(ports.etcd),
    '--etcd-peer-port',
    String(ports.etcdPeer),
  ];
  if (opts.advertiseAddress) args.push('--advertise-address', opts.advertiseAddress);
  // --controllers is a string list: given again, it adds to the defaults main.go sets.
  if (opts.extraControllers?.length) args.push(`--controller-manager-arg=--controllers=${opts.extraControllers.join(',')}`);
  const timeoutMs = opts.timeoutMs ?? 90_000;
  let { proc, kubeconfig } = await launch(bin, args, timeoutMs);
  let running = true;
  const stop = async () => {
    running = false;
    await proc.stop('SIGTERM', 15_000);
  };
  return {
    get kubeconfig() {
      return kubeconfig;
    },
    ports,
    get process() {
      return proc;
    },
    get running() {
      return running;
    },
    stop,
    async start() {
      if (running && !proc.exited()) return;
      // The same state dir, ports and arguments: the binary reuses its certificates and etcd data.
      const again = await launch(bin, args, timeoutMs);
      proc = again.proc;
      kubeconfig = again.kubeconfig;
      running = true;
    },
    [Symbol.asyncDispose]: stop,
  };
}
