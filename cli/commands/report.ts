import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { ExitCode, exitCodeOf } from '../../lib/verdict.ts';
import { RENDERERS, REPORT_FORMATS, rendererOf, type ReportFormat } from '../../reports/render/index.ts';
import { UsageError } from '../exit-codes.ts';

interface ReportFlags {
  format?: 'all' | ReportFormat;
  json?: boolean;
}

/** `verdict report <run-dir>`: re-renders a run directory's reports from verdict.json and the ledger. */
export function reportCommand(): Command {
  return new Command('report')
    .description(
      `re-render a run directory (verdict.json + ledger.ndjson.gz) into ${RENDERERS.filter((r) => r.format !== 'json')
        .map((r) => r.file)
        .join(', ')}`,
    )
    .argument('<run-dir>', 'a run directory, e.g. .reports/latest or an unpacked CI artifact')
    .addOption(
      new Option('--format <format>', 'which files to write (default: all; none with --json alone)').choices([
        'all',
        ...REPORT_FORMATS,
      ]),
    )
    .option('--json', 'print verdict.json to stdout instead of the summary')
    .addHelpText(
      'after',
      `
Examples:
  verdict report .reports/latest                      # every file again, then the summary
  verdict report artifact/experiment-20260303T140000Z --format html
  verdict report .reports/latest --json | jq .verdict

Exit code: the run's own verdict (0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR), so CI can act on a
re-rendered artifact; 3 as well when the files cannot be read; 64 when the path is not a run
directory or a flag is wrong.`,
    )
    .action(async (runDir: string, flags: ReportFlags) => {
      const { NotARunDirectoryError, UnreadableRunError, renderRunDirectory } = await import('../../reports/run-directory.ts');
      const { printRunSummary } = await import('../../reports/render/terminal.ts');
      const formats =
        flags.format === undefined
          ? flags.json
            ? []
            : REPORT_FORMATS
          : flags.format === 'all'
            ? REPORT_FORMATS
            : [flags.format];
      let result;
      try {
        result = await renderRunDirectory(runDir, formats);
      } catch (err) {
        if (err instanceof NotARunDirectoryError) throw new UsageError(err.message);
        if (err instanceof UnreadableRunError) {
          process.stderr.write(`verdict report: ${err.message}\n`);
          process.exitCode = ExitCode.ERROR;
          return;
        }
        throw err;
      }
      const { record, written } = result;
      if (flags.json) {
        process.stdout.write(JSON.stringify(record, null, 2) + '\n');
      } else {
        const page = join(runDir, rendererOf('html').file);
        const html = written.html ?? (existsSync(page) ? page : null);
        printRunSummary(record, html);
      }
      const files = Object.values(written);
      if (files.length) process.stderr.write(`verdict report: wrote ${files.join(', ')}\n`);
      process.exitCode = exitCodeOf(record.verdict);
    });
}
