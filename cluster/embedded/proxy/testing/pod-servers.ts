import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PodNetwork } from '../../network/pod-network.ts';

/** An HTTP server (pod-http-server.ts) running inside a pod namespace of a PodNetwork. */
export interface PodServer {
  name: string;
  ip: string;
  port: number;
  netns: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL('./pod-http-server.ts', import.meta.url));

/** Attaches pod `name` to the network and starts the server on its address; resolves once it listens. */
export async function startPodServer(network: PodNetwork, name: string, port = 8080): Promise<PodServer> {
  const { netns, ip } = await network.attach(name);
  const argv = network.commandInNamespace(netns, [process.execPath, SCRIPT, ip, String(port), name]);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pod server ${name} did not listen within 10 s: ${output}`));
    }, 10_000);
    child.stdout!.on('data', (b: Buffer) => {
      output += b.toString();
      if (output.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (b: Buffer) => {
      output += b.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pod server ${name} exited ${code}: ${output}`));
    });
  });
  return {
    name,
    ip,
    port,
    netns,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
