/**
 * The embedded cluster as a long-running process: `verdict cluster up` starts it detached and
 * `verdict cluster down` stops it with SIGTERM. It prints one JSON line when the cluster is ready
 * (`{"ready":true,...}`) or failed (`{"ready":false,"error":...}`), then waits for SIGTERM/SIGINT
 * and tears everything down before it exits.
 *
 *   node cluster/embedded/daemon.ts --name verdict --nodes 3 [--state-dir DIR]
 */
import { parseArgs } from 'node:util';
import { upEmbedded } from './embedded-cluster.ts';

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'verdict' },
    nodes: { type: 'string', default: '3' },
    'state-dir': { type: 'string' },
  },
});
const abort = new AbortController();
let stopping: Promise<void> | undefined;

// Once `cluster up` has detached, nobody reads stdout any more: a write then fails with EPIPE, which
// must not kill the daemon before it has torn the cluster down. Progress also goes to the log (stderr).
process.stdout.on('error', () => {});
const say = (o: object) => {
  process.stderr.write(`${new Date().toISOString()} ${JSON.stringify(o)}\n`);
  if (process.stdout.writable) process.stdout.write(JSON.stringify(o) + '\n');
};
// A signal while the cluster comes up cancels the start-up, which tears down what it made.
const early = () => abort.abort(new Error('interrupted while starting'));
process.on('SIGTERM', early);
process.on('SIGINT', early);
const cluster = await upEmbedded({
  name: values.name,
  nodes: Number(values.nodes),
  stateDir: values['state-dir'],
  signal: abort.signal,
  onProgress: (m) => say({ progress: m }),
}).catch((err: Error) => {
  say({ ready: false, error: err.message });
  process.exit(3);
});

const stop = (signal: string) => {
  stopping ??= (async () => {
    say({ stopping: signal });
    await cluster.close();
    say({ stopped: true });
    process.exit(0);
  })();
};
process.off('SIGTERM', early);
process.off('SIGINT', early);
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
say({ ready: true, kubeconfig: cluster.kubeconfigPath, stateDir: cluster.stateDir, pid: process.pid });
