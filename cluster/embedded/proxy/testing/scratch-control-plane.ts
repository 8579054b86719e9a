import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { freePort } from '../../../../lib/net/free-port.ts';
import { startControlPlane } from '../../control-plane.ts';

/**
 * A throw-away kube-embedded for the proxy's cluster test and the network benchmark: the shared
 * starter (cluster/embedded/control-plane.ts, which builds the binary through build.sh when the
 * cache has none) on a temporary state directory and free ports, so it runs next to anything else.
 */
export interface ScratchControlPlane extends AsyncDisposable {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  /** Stops the process and removes its state directory. */
  stop(): Promise<void>;
}

export async function startScratchControlPlane(opts: { onProgress?: (line: string) => void } = {}): Promise<ScratchControlPlane> {
  const stateDir = await mkdtemp(join(tmpdir(), 'verdict-cp-'));
  try {
    const port = await freePort();
    let etcdPort = await freePort();
    for (let i = 0; i < 20 && !(await portFree(etcdPort + 1)); i++) etcdPort = await freePort(); // peer port = etcd port + 1
    const cp = await startControlPlane({ stateDir, port, etcdPort, onProgress: opts.onProgress });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(cp.kubeconfig);
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      try {
        await cp.stop();
      } finally {
        await rm(stateDir, { recursive: true, force: true });
      }
    };
    return { kubeconfigPath: cp.kubeconfig, kubeConfig, stop, [Symbol.asyncDispose]: stop };
  } catch (err) {
    await rm(stateDir, { recursive: true, force: true });
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
