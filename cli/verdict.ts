#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.ts';
import { ExitCode, UsageError } from './exit-codes.ts';
import { withNotify } from './notify.ts';

const program = new Command('verdict')
  .description('Deployment-verification harness: may this release of the license API be promoted?')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .addHelpText(
    'after',
    `
Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR, 64 bad usage.
Anything but 0 means "do not promote".
Ctrl-C (or SIGTERM) stops a command and cleans up what it made, still reporting what it found; a
second one quits at once with exit code 130 and says what may be left behind.`,
  );
for (const make of commands) program.addCommand(withNotify(make()).exitOverride());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end through here with exit code 0.
    process.exitCode = err.exitCode === 0 ? 0 : ExitCode.USAGE;
  } else if (err instanceof UsageError) {
    process.stderr.write(`verdict: ${err.message}\n`);
    process.exitCode = ExitCode.USAGE;
  } else {
    process.stderr.write(`verdict: ${(err as Error)?.stack ?? err}\n`);
    process.exitCode = ExitCode.ERROR;
  }
}

// Every command has finished here, its teardown awaited and its output written (stdout and stderr are
// synchronous on Linux pipes and files). Leave now instead of waiting for Node's exit-time handle
// cleanup: after a verify-local that PASSed, that cleanup once spun at 100 % CPU for 40 minutes
// (gdb: uv_run in node::Environment::CleanupHandles under FreeEnvironment), which a CI job or a
// laptop would see as a hung command.
process.exit(process.exitCode ?? 0);
