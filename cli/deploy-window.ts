/**
 * The deploy-window check of the commands that roll a release forward (`verdict deploy`, `verdict
 * gate`, and `verdict rehearse` when it exists: call `checkDeployWindowOrRefuse` first, before any
 * cluster is contacted). Outside a window or in a freeze: a UsageError (exit 64) that says why and
 * when the next allowed time is, unless `--override-window "<reason>"` was given; then the command
 * goes on and the override (who: $GITHUB_ACTOR, else $USER; why; what was closed) is returned for
 * the run's verdict.json (`approvals`). Rollbacks are never refused.
 */
import { userInfo } from 'node:os';
import { Option } from 'commander';
import { ConfigFileError, loadHarnessConfig } from '../experiments/config.ts';
import { checkDeployWindow, environmentFor, UnknownEnvironmentError, type WindowDecision } from '../lib/policy/deploy-window.ts';
import type { ApprovalRecord } from '../reports/run-record.ts';
import { UsageError } from './exit-codes.ts';

export interface WindowFlags {
  environment?: string;
  overrideWindow?: string;
  config?: string;
}

/** The options every window-checked command takes: add each with `.addOption(...)`. */
export const windowOptions = {
  environment: () =>
    new Option(
      '--environment <name>',
      'the environment this acts on, for its deploy windows (default: matched by kubeconfig context)',
    ),
  overrideWindow: () =>
    new Option('--override-window <reason>', 'proceed outside the deploy window or in a freeze; who and why are recorded'),
  /** For a command that has no --config of its own. */
  config: () =>
    new Option(
      '--config <file>',
      'deploy windows and freezes: deployWindows in verdict.config.yaml (default: ./verdict.config.yaml if present)',
    ),
};

/** Who is acting: the GitHub actor in a workflow, else the login. */
export function actor(env: NodeJS.ProcessEnv = process.env): string {
  const who = env.GITHUB_ACTOR || env.USER || env.LOGNAME;
  if (who) return who;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export interface WindowCheck {
  /** The decision, when an environment with a policy applies (null: none does). */
  decision: WindowDecision | null;
  /** The override to record, when the window was closed and --override-window was given. */
  approval: ApprovalRecord | null;
}

/**
 * Throws UsageError (exit 64) when the environment's window is closed and no override was given.
 * `context` is the kubeconfig context, to find the environment when --environment is not given.
 */
export async function checkDeployWindowOrRefuse(
  command: string,
  f: WindowFlags,
  o: { context?: string | null; now?: number; say?: (m: string) => void; env?: NodeJS.ProcessEnv } = {},
): Promise<WindowCheck> {
  const say = o.say ?? ((m: string) => process.stderr.write(`${m}\n`));
  if (f.overrideWindow !== undefined && (!f.overrideWindow.trim() || f.overrideWindow.length > 500))
    throw new UsageError(
      '--override-window needs a reason, e.g. --override-window "hotfix for INC-42, approved by the on-call lead"',
    );
  let windows;
  try {
    windows = (await loadHarnessConfig(f.config)).config.deployWindows;
  } catch (err) {
    if (err instanceof ConfigFileError) throw new UsageError(err.message);
    throw err;
  }
  let env;
  try {
    env = environmentFor(windows, { environment: f.environment, context: o.context });
  } catch (err) {
    if (err instanceof UnknownEnvironmentError)
      throw new UsageError(`${err.message}: add it to the config, or drop --environment`);
    throw err;
  }
  if (!env) return { decision: null, approval: null };
  const now = o.now ?? Date.now();
  const d = checkDeployWindow(env.policy, env.name, now);
  if (d.allowed) {
    say(
      `deploy window: ${env.name} is open (${d.reason})${f.overrideWindow !== undefined ? '; --override-window not needed' : ''}`,
    );
    return { decision: d, approval: null };
  }
  const detail = `${d.reason}; next allowed: ${d.nextAllowedText}`;
  if (f.overrideWindow === undefined)
    throw new UsageError(
      `${command} refused: ${env.name} is closed for deploys: ${detail}.\nWait until then, or proceed with --override-window "<reason>" (who and why are recorded).`,
    );
  const by = actor(o.env);
  say(`deploy window: ${env.name} is closed (${detail}); OVERRIDDEN by ${by}: ${f.overrideWindow.trim()}`);
  return {
    decision: d,
    approval: {
      what: 'deploy-window',
      by,
      reason: f.overrideWindow.trim(),
      at: new Date(now).toISOString(),
      detail: `${env.name}: ${detail}`,
    },
  };
}
