import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadKubeConfig, k8s } from '../../lib/kube/client.ts';
import { PodNetwork } from '../../cluster/embedded/network/pod-network.ts';
import { killProcessesUsing } from '../../lib/proc/kill-by-path.ts';
import { alive, readClusterState, stateDirOf } from '../../cluster/embedded/state.ts';
import { downKind, kindStrategy, upKind } from '../../cluster/kind/kind-cluster.ts';
import { ExitCode } from '../exit-codes.ts';
import { openShell } from '../shell.ts';

const DAEMON = fileURLToPath(new URL('../../cluster/embedded/daemon.ts', import.meta.url));

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 20) throw new InvalidArgumentError('must be a whole number from 1 to 20');
  return n;
};

const providerOption = () =>
  new Option('--provider <name>', 'embedded (no Docker, needs root) or kind (needs Docker)')
    .choices(['embedded', 'kind'])
    .default('embedded');

/** `verdict cluster up|down|status`: the local cluster the harness runs against. */
export function clusterCommand(): Command {
  const cmd = new Command('cluster').description('bring a local cluster up or down, or show its state');
  cmd.addCommand(upCommand());
  cmd.addCommand(downCommand());
  cmd.addCommand(statusCommand());
  return cmd;
}

interface UpFlags {
  provider: string;
  name: string;
  nodes: number;
  stateDir?: string;
  foreground: boolean;
}

function upCommand(): Command {
  return new Command('up')
    .description('start a local cluster and print how to use it with kubectl')
    .addOption(providerOption())
    .option('--name <name>', 'cluster name', 'verdict')
    .option('--nodes <n>', 'number of nodes', positiveInt, 3)
    .option('--state-dir <dir>', 'where the embedded cluster keeps its state (default /var/lib/verdict/<name>)')
    .option('--foreground', 'stay in the foreground until Ctrl-C, then tear down', false)
    .addHelpText(
      'after',
      `
The embedded provider runs the real control plane (etcd, kube-apiserver, controller-manager,
scheduler from k8s.io/kubernetes), a process node agent, network namespaces for pods and a
NodePort proxy on 127.0.0.1. The first run builds the control plane (minutes); later runs reuse it.

Examples:
  verdict cluster up                  # detached; prints KUBECONFIG
  verdict cluster up --foreground     # Ctrl-C tears it down
  verdict cluster down`,
    )
    .action(async (o: UpFlags) => {
      process.exitCode = o.provider === 'kind' ? await upKindCluster(o) : await upEmbeddedCluster(o);
    });
}

async function upKindCluster(o: UpFlags): Promise<number> {
  const a = await kindStrategy.available();
  if (!a.ok) {
    process.stderr.write(`cluster up: ${a.reason}\n`);
    return ExitCode.ERROR;
  }
  // The Docker engine stays held by the calling shell (as `node lib/docker/engine.ts up` does): the cluster outlives this command.
  const c = await upKind({
    name: o.name,
    keepExisting: true,
    engineHolderPid: process.ppid,
    onProgress: (m) => process.stderr.write(`${m}\n`),
  });
  process.stdout.write(
    `kind cluster ${o.name} is up (node image ${c.nodeImage.ref}, ${c.nodeImage.source})\n  export KUBECONFIG=${c.kubeconfigPath}\n  kubectl get nodes -o wide\n` +
      `  the Service: ${c.serviceUrl(30080)}\nStop it with: verdict cluster down --provider kind${o.name === 'verdict' ? '' : ` --name ${o.name}`}\n`,
  );
  return 0;
}

/**
 * Starts the cluster daemon (cluster/embedded/daemon.ts) and follows its progress until it is ready;
 * detached unless `--foreground`. Ctrl-C passes SIGTERM to it (it tears the cluster down).
 */
async function upEmbeddedCluster(o: UpFlags): Promise<number> {
  const stateDir = stateDirOf(o.name, o.stateDir);
  const existing = await readClusterState(stateDir);
  if (existing && alive(existing.pid)) {
    process.stdout.write(`cluster ${o.name} is already up (pid ${existing.pid})\nexport KUBECONFIG=${existing.kubeconfig}\n`);
    return 0;
  }
  await mkdir(stateDir, { recursive: true });
  const logPath = join(stateDir, 'daemon.log');
  const log = await open(logPath, 'a');
  const child = spawn(process.execPath, [DAEMON, '--name', o.name, '--nodes', String(o.nodes), '--state-dir', stateDir], {
    detached: !o.foreground,
    stdio: ['ignore', 'pipe', log.fd],
  });
  using shell = openShell({ stopping: 'tearing the cluster down', everyMs: 0, onInterrupt: () => child.kill('SIGTERM') });
  shell.leaves(
    `the cluster process ${child.pid}, still tearing down: verdict cluster down --name ${o.name} removes what is left`,
  );
  const result = await daemonReady(child, logPath, shell.update);
  shell.done();
  if (!result.ok) {
    process.stderr.write(`cluster up failed: ${result.message}\n`);
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    return ExitCode.ERROR;
  }
  process.stdout.write(
    [
      `cluster ${o.name} is up (${o.nodes} nodes, ${((Date.now() - shell.started) / 1000).toFixed(1)} s)`,
      `  export KUBECONFIG=${result.kubeconfig}`,
      '  kubectl get nodes -o wide',
      `  services: http://127.0.0.1:<nodePort>    logs: ${logPath}`,
      o.foreground ? 'Ctrl-C tears it down.' : 'Stop it with: verdict cluster down',
      '',
    ].join('\n'),
  );
  if (o.foreground) {
    await new Promise((r) => child.once('exit', r));
  } else {
    child.stdout?.destroy();
    child.unref();
  }
  return 0;
}

/** Follows the daemon's JSON lines on stdout: progress, then ready (or its error, or its exit). */
function daemonReady(
  child: ChildProcess,
  logPath: string,
  progress: (line: string) => void,
): Promise<{ ok: boolean; message?: string; kubeconfig?: string }> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      let m: { progress?: string; ready?: boolean; error?: string; kubeconfig?: string; stopped?: boolean };
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      if (m.progress) progress(m.progress);
      if (m.ready === true) resolve({ ok: true, kubeconfig: m.kubeconfig });
      if (m.ready === false) resolve({ ok: false, message: m.error });
    });
    child.once('exit', (code) => resolve({ ok: false, message: `the cluster process exited (${code}); see ${logPath}` }));
  });
}

function downCommand(): Command {
  return new Command('down')
    .description('stop the local cluster and remove every process, namespace, bridge, route and listener it made')
    .addOption(providerOption())
    .option('--name <name>', 'cluster name', 'verdict')
    .option('--state-dir <dir>', "the cluster's state directory")
    .action(async (o: { provider: string; name: string; stateDir?: string }) => {
      if (o.provider === 'kind') {
        const left = await downKind(o.name, { holderPid: process.ppid, onProgress: (m) => process.stderr.write(`${m}\n`) });
        if (left.length) {
          process.stderr.write(`kind cluster ${o.name} left: ${left.join('; ')}\n`);
          process.exitCode = ExitCode.ERROR;
          return;
        }
        process.stdout.write(`kind cluster ${o.name} is deleted; nothing left behind\n`);
        return;
      }
      await downEmbedded(o.name, stateDirOf(o.name, o.stateDir));
    });
}

/** Stops the daemon (SIGTERM, SIGKILL after a minute), then whatever a killed run left under the state directory. */
async function downEmbedded(name: string, stateDir: string): Promise<void> {
  const state = await readClusterState(stateDir);
  if (state && alive(state.pid)) {
    process.stderr.write(`stopping cluster ${name} (pid ${state.pid})...\n`);
    process.kill(state.pid, 'SIGTERM');
    const deadline = Date.now() + 60_000;
    while (alive(state.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (alive(state.pid)) process.kill(state.pid, 'SIGKILL');
  }
  // Whatever a killed run left: pods, the control plane, Postgres and Redis all run from the state dir.
  const killed = await killProcessesUsing(stateDir);
  const left = await PodNetwork.cleanupLeftovers({ stateDir });
  if (killed.length) process.stderr.write(`stopped ${killed.length} leftover processes\n`);
  process.stdout.write(
    `cluster ${name} is down${left.namespaces.length ? ` (removed ${left.namespaces.length} leftover namespaces)` : ''}\n`,
  );
}

function statusCommand(): Command {
  return new Command('status')
    .description('show whether the local cluster runs, and its nodes')
    .option('--name <name>', 'cluster name', 'verdict')
    .option('--state-dir <dir>', "the cluster's state directory")
    .action(async (o: { name: string; stateDir?: string }) => {
      const state = await readClusterState(stateDirOf(o.name, o.stateDir));
      if (!state || !alive(state.pid)) {
        process.stdout.write(`cluster ${o.name} is not running (start it with: verdict cluster up)\n`);
        process.exitCode = ExitCode.FAIL;
        return;
      }
      const core = loadKubeConfig(state.kubeconfig).makeApiClient(k8s.CoreV1Api);
      const nodes = await core.listNode();
      process.stdout.write(
        `cluster ${o.name}: running since ${state.startedAt} (pid ${state.pid})\nexport KUBECONFIG=${state.kubeconfig}\n`,
      );
      for (const n of nodes.items) {
        const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
        process.stdout.write(
          `  ${n.metadata!.name!.padEnd(24)} ${ready ? 'Ready' : 'NotReady'}${n.spec?.unschedulable ? ',SchedulingDisabled' : ''}\n`,
        );
      }
    });
}
