import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { k8s, messageOf, statusOf } from '../../lib/kube/client.ts';
import {
  history,
  pause,
  resume,
  RolloutApiError,
  RolloutRefusedError,
  undo,
  type RevisionInfo,
} from '../../lib/kube/rollout-history.ts';
import { RolloutFailedError, waitForRollout } from '../../lib/kube/rollout.ts';
import { ExitCode, UsageError } from '../exit-codes.ts';

/**
 * `verdict history | rollback | pause | resume`: kubectl rollout history / undo / pause / resume for
 * one Deployment, with kubectl's semantics (lib/kube/rollout-history.ts) and no kubectl process.
 * Exit codes: 0 done (a skipped rollback too), 3 the cluster failed or refused (paused, API error,
 * unreachable), 64 bad usage (flags, kubeconfig, a Deployment or revision that does not exist).
 */

interface Flags {
  deployment: string;
  context?: string;
  kubeconfig?: string;
}

/** The rollback was made but its rollout did not finish (deadline, crash loop, timeout). */
class RolloutWaitError extends Error {}

const deploymentFlag = '--deployment <namespace/name>';
const deploymentHelp = 'the Deployment, e.g. coditect/license-api';

function parseDeployment(v: string): string {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(v)) {
    throw new InvalidArgumentError('must be <namespace>/<name>, e.g. coditect/license-api');
  }
  return v;
}

const revisionNumber = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('must be a revision number (1 or more); see them with `verdict history`');
  return n;
};

const seconds = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds');
  return n;
};

function withCommonFlags(cmd: Command): Command {
  return cmd
    .requiredOption(deploymentFlag, deploymentHelp, parseDeployment)
    .option('--context <name>', 'kubeconfig context (default: the current one)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)');
}

/** The kubeconfig and context, checked here so that a wrong one is a usage error that says what exists. */
function kubeConfigOf(f: Flags): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (f.kubeconfig) {
    if (!existsSync(f.kubeconfig)) throw new UsageError(`kubeconfig ${f.kubeconfig} does not exist (check --kubeconfig)`);
    try {
      kc.loadFromFile(f.kubeconfig);
    } catch (err) {
      throw new UsageError(`cannot read kubeconfig ${f.kubeconfig}: ${(err as Error).message}`);
    }
  } else {
    try {
      kc.loadFromDefault();
    } catch (err) {
      throw new UsageError(`cannot read the default kubeconfig: ${(err as Error).message} (set --kubeconfig or KUBECONFIG)`);
    }
  }
  const where = f.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config';
  if (f.context) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(f.context))
      throw new UsageError(
        `context "${f.context}" is not in ${where} (its contexts: ${names.join(', ') || 'none'}); check --context`,
      );
    kc.setCurrentContext(f.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new UsageError(
      `no cluster to talk to in ${where}${f.context ? ` for context ${f.context}` : ' (no current context)'}: set --kubeconfig, KUBECONFIG or --context`,
    );
  }
  return kc;
}

function split(deployment: string): [string, string] {
  const [ns, name] = deployment.split('/');
  return [ns, name];
}

/** Runs one operation with the exit codes above; messages without a stack, each naming the fix. */
async function run(
  command: string,
  f: Flags,
  op: (kc: k8s.KubeConfig, ns: string, name: string) => Promise<void>,
): Promise<void> {
  const kc = kubeConfigOf(f);
  const [ns, name] = split(f.deployment);
  try {
    await op(kc, ns, name);
  } catch (err) {
    if (err instanceof RolloutRefusedError) {
      process.stderr.write(`verdict ${command}: ${err.message}\n`);
      process.exitCode = err.reason === 'revision-not-found' || err.reason === 'not-found' ? ExitCode.USAGE : ExitCode.ERROR;
      return;
    }
    if (err instanceof RolloutWaitError) {
      process.stderr.write(`verdict ${command}: ${err.message}\n`);
      process.exitCode = ExitCode.ERROR;
      return;
    }
    if (err instanceof RolloutApiError) {
      const hint =
        err.status === undefined
          ? ` (is the API server at ${kc.getCurrentCluster()?.server} up? check --kubeconfig and --context)`
          : err.status === 401 || err.status === 403
            ? ` (the credentials of context ${kc.getCurrentContext()} are not allowed to; check --context)`
            : '';
      process.stderr.write(`verdict ${command}: ${err.message}${hint}\n`);
      process.exitCode = ExitCode.ERROR;
      return;
    }
    throw err;
  }
}

function historyTable(deployment: string, revisions: RevisionInfo[]): string {
  if (!revisions.length) return `deployment.apps/${deployment}\nNo rollout history found.\n`;
  const rows = [
    ['REVISION', 'CHANGE-CAUSE', 'IMAGES', 'REPLICASET', 'READY'],
    ...revisions.map((r) => [
      `${r.revision}${r.current ? ' (current)' : ''}`,
      r.changeCause ?? '<none>',
      r.images.join(' '),
      r.replicaSet,
      `${r.readyReplicas}/${r.replicas}`,
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return `deployment.apps/${deployment}\n${rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')}\n`;
}

/** `verdict history`: kubectl rollout history. */
export function historyCommand(): Command {
  return withCommonFlags(
    new Command('history').description(
      "list a Deployment's revisions (kubectl rollout history): change-cause, images, ReplicaSet",
    ),
  )
    .option('--json', 'print the revisions as JSON')
    .addHelpText('after', '\nExample:\n  verdict history --context gke_prod --deployment coditect/license-api')
    .action(async (f: Flags & { json?: boolean }) => {
      await run('history', f, async (kc, ns, name) => {
        const revisions = await history(kc, ns, name);
        process.stdout.write(
          f.json ? `${JSON.stringify(revisions, null, 2)}\n` : historyTable(f.deployment.split('/')[1], revisions),
        );
      });
    });
}

/** `verdict rollback`: kubectl rollout undo [--to-revision N], optionally waiting for the rollout it starts. */
export function rollbackCommand(): Command {
  return withCommonFlags(
    new Command('rollback').description(
      'roll a Deployment back to its previous revision, or to --to-revision (kubectl rollout undo)',
    ),
  )
    .option('--to-revision <n>', 'the revision to go back to (default: the previous one)', revisionNumber)
    .option('--wait', 'wait until the rollback has rolled out (kubectl rollout status)', false)
    .option('--timeout <seconds>', 'how long --wait waits', seconds, 600)
    .addHelpText(
      'after',
      `
Refuses a paused Deployment (run verdict resume first) and does nothing when the Deployment's
template already is the revision's. Exit codes: 0 rolled back or nothing to do, 3 refused or the
cluster failed, 64 bad flags or no such Deployment or revision.

Examples:
  verdict rollback --deployment coditect/license-api
  verdict rollback --deployment coditect/license-api --to-revision 3 --wait`,
    )
    .action(async (f: Flags & { toRevision?: number; wait: boolean; timeout: number }) => {
      await run('rollback', f, async (kc, ns, name) => {
        const r = await undo(kc, ns, name, { toRevision: f.toRevision });
        process.stdout.write(`deployment.apps/${name} ${r.message}\n`);
        if (f.wait && r.action === 'rollback') {
          try {
            await waitForRollout(kc, ns, name, {
              timeoutMs: f.timeout * 1000,
              onProgress: (m) => process.stderr.write(`${m}\n`),
            });
          } catch (err) {
            if (err instanceof RolloutFailedError)
              throw new RolloutWaitError(`the rollback to revision ${r.revision} did not finish: ${err.message}`);
            throw new RolloutApiError(`cannot follow the rollback to revision ${r.revision}: ${messageOf(err)}`, statusOf(err), {
              cause: err,
            });
          }
          process.stdout.write(`deployment "${name}" successfully rolled out\n`);
        }
      });
    });
}

/** `verdict pause`: kubectl rollout pause. */
export function pauseCommand(): Command {
  return withCommonFlags(
    new Command('pause').description("pause a Deployment's rollouts (kubectl rollout pause): template changes wait until resume"),
  )
    .addHelpText('after', '\nExample:\n  verdict pause --deployment coditect/license-api')
    .action(async (f: Flags) => {
      await run('pause', f, async (kc, ns, name) => {
        await pause(kc, ns, name);
        process.stdout.write(`deployment.apps/${name} paused\n`);
      });
    });
}

/** `verdict resume`: kubectl rollout resume. */
export function resumeCommand(): Command {
  return withCommonFlags(
    new Command('resume').description('resume a paused Deployment (kubectl rollout resume): its latest template rolls out'),
  )
    .addHelpText('after', '\nExample:\n  verdict resume --deployment coditect/license-api')
    .action(async (f: Flags) => {
      await run('resume', f, async (kc, ns, name) => {
        await resume(kc, ns, name);
        process.stdout.write(`deployment.apps/${name} resumed\n`);
      });
    });
}
