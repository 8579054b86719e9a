import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { UsageError } from '../exit-codes.ts';

interface TrendFlags {
  history: string;
  out?: string;
  last: string;
}

/** `verdict trend [experiment]`: the run history, printed and drawn (trend.html). */
export function trendCommand(): Command {
  return new Command('trend')
    .description('print the run history (every verify-local/experiment run, with its figures) and write trend.html')
    .argument('[experiment]', 'only this experiment (e.g. rollout-under-load)')
    .option('--history <path>', 'the run history (SQLite) to read, e.g. a CI cache shared by a team', '.reports/history.sqlite')
    .option('--out <file>', 'where trend.html goes (default: beside the history)')
    .option('--last <n>', 'runs printed per group (trend.html has them all)', '20')
    .addHelpText(
      'after',
      `
Every run of verify-local and experiment is appended to the history (default .reports/history.sqlite,
--history on those commands for a shared file); runs are grouped by experiment × target kind × app ×
replicas, the key of "no worse than history" (--against-history on those commands).

Examples:
  verdict trend
  verdict trend pod-kill-force --history ci-cache/history.sqlite

Exit codes: 0 printed and written; 64 no history at that path, or no run of that experiment.`,
    )
    .action(async (experiment: string | undefined, flags: TrendFlags) => {
      const last = Number(flags.last);
      if (!Number.isInteger(last) || last < 1) throw new UsageError(`--last must be a whole number >= 1, got "${flags.last}"`);
      const path = resolve(flags.history);
      if (!existsSync(path))
        throw new UsageError(
          `no run history at ${path}: every verify-local or experiment run appends to .reports/history.sqlite (or to its --history); name another with --history`,
        );
      const { RunHistory } = await import('../../reports/history.ts');
      const { renderTrendHtml, renderTrendText, trendGroups } = await import('../../reports/render/trend.ts');
      let runs;
      {
        using history = RunHistory.open(path);
        runs = history.runs(experiment ? { experiment } : {});
        if (experiment && runs.length === 0) {
          const names = [...new Set(history.runs().map((r) => r.experiment))].sort();
          throw new UsageError(
            `no run of "${experiment}" in ${path}${names.length ? `; it holds: ${names.join(', ')}` : ': it holds no run yet'}`,
          );
        }
      }
      const groups = trendGroups(runs);
      process.stdout.write(groups.length ? renderTrendText(groups, last) : `${path} holds no run yet\n`);
      const out = resolve(flags.out ?? join(dirname(path), 'trend.html'));
      await writeFile(out, renderTrendHtml(groups, { history: path, generatedAt: new Date() }));
      process.stderr.write(`verdict trend: wrote ${out}\n`);
    });
}
