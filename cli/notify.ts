/**
 * `--notify slack:<ENV>` / `--notify webhook:<ENV>` and `--report-url` on every command that writes a
 * run directory: after the command, one message per run written (reports/notify), each receiver
 * bounded by `--notify-timeout`. What happened is said on stderr; a receiver that is unset, down, slow
 * or refusing never changes the verdict or the exit code.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { onRunWritten } from '../reports/run-directory.ts';
import type { RunRecord } from '../reports/run-record.ts';
import { parseNotifyTarget, sendNotifications, type NotifyTarget } from '../reports/notify/index.ts';
import { UsageError } from './exit-codes.ts';

/** The commands that write a run directory. */
export const NOTIFYING_COMMANDS = ['verify-local', 'experiment', 'smoke', 'probes', 'gate', 'plan-risk'] as const;

const collect = (v: string, prev: NotifyTarget[]) => {
  try {
    return [...prev, parseNotifyTarget(v)];
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^--notify "[^"]*": /, ''));
  }
};

interface NotifyFlags {
  notify: NotifyTarget[];
  reportUrl?: string;
  notifyTimeout: number;
}

/** Adds the notify options to a command that writes a run directory, and sends after it ran. */
export function withNotify(cmd: Command): Command {
  if (!(NOTIFYING_COMMANDS as readonly string[]).includes(cmd.name())) return cmd;
  const written: RunRecord[] = [];
  let unsubscribe: (() => void) | null = null;
  cmd
    .addOption(
      new Option(
        '--notify <kind:ENV_VAR>',
        'post the verdict to slack:<ENV_VAR> or webhook:<ENV_VAR> (the variable holds the URL); repeatable',
      )
        .argParser(collect)
        .default([], 'none'),
    )
    .addOption(new Option('--report-url <url>', 'link to the uploaded run directory, put in the notification'))
    .addOption(
      new Option('--notify-timeout <seconds>', 'how long each receiver may take').default(10).argParser((v) => {
        const n = Number(v);
        if (!(n > 0 && n <= 120)) throw new InvalidArgumentError('must be a number of seconds above 0 and at most 120');
        return n;
      }),
    )
    .hook('preAction', (c) => {
      const f = c.opts<NotifyFlags>();
      if (f.reportUrl !== undefined && !/^https?:\/\/[^\s<>|]+$/i.test(f.reportUrl))
        throw new UsageError(
          `--report-url must be an http(s) URL without spaces, e.g. ${'$'}{GITHUB_SERVER_URL}/${'$'}{GITHUB_REPOSITORY}/actions/runs/${'$'}{GITHUB_RUN_ID}`,
        );
      if (f.notify.length) unsubscribe = onRunWritten((record) => written.push(record));
    })
    .hook('postAction', async (c) => {
      unsubscribe?.();
      const f = c.opts<NotifyFlags>();
      if (!f.notify.length) return;
      if (!written.length) {
        process.stderr.write('notify: no run directory was written, so there is no verdict to send\n');
        return;
      }
      for (const record of written) {
        const results = await sendNotifications(record, f.notify, {
          reportUrl: f.reportUrl ?? null,
          timeoutMs: f.notifyTimeout * 1000,
        });
        for (const r of results)
          process.stderr.write(
            r.ok
              ? `notify: ${r.target}: sent (${r.status}, ${r.ms} ms)\n`
              : `notify: ${r.target}: NOT delivered: ${r.error} (the verdict and the exit code are unchanged)\n`,
          );
      }
    });
  return cmd;
}
