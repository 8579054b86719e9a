import { ConfigError, loadConfig } from './config.ts';
import { createService, StartAborted } from './service.ts';

/**
 * The license API process. Exit codes: 0 after a clean shutdown (also when SIGTERM/SIGINT comes
 * during start-up), 1 when the shutdown missed its deadline, was cut short by a third signal, or
 * start-up failed, 78 (EX_CONFIG) for a bad configuration.
 *
 * The signal handlers are installed before anything starts: as PID 1 in a container the kernel
 * applies no default action to SIGTERM, so a process without a handler ignores it, and a pod
 * stuck in start-up (Postgres unreachable) would wait out its whole grace period for SIGKILL.
 */
function main(): void {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`license-api: ${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const service = createService(config);
  // A second signal during the drain (a supervisor, an impatient Ctrl-C) must not cut it short:
  // the requests in flight would be reset. A third ends the process at once.
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals | 'FAULT_EXIT_AFTER_MS') => {
    signals++;
    if (signals === 2) {
      process.stderr.write(`license-api: ${signal}: already shutting down; a third signal ends the process at once\n`);
      return;
    }
    if (signals > 2) {
      process.stderr.write(`license-api: ${signal}: third signal during the shutdown; exiting at once\n`);
      process.exit(1);
    }
    const deadline = setTimeout(() => {
      process.stderr.write(`license-api: shutdown missed its ${config.SHUTDOWN_TIMEOUT_MS} ms deadline; forcing exit\n`);
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    deadline.unref();
    service.shutdown(signal).then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`license-api: shutdown failed: ${err}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  service.start().then(
    () => {
      // FAULT_EXIT_AFTER_MS (detector tests): the process recycles itself, as if it were sent SIGTERM.
      if (config.FAULT_EXIT_AFTER_MS > 0)
        setTimeout(() => onSignal('FAULT_EXIT_AFTER_MS'), config.FAULT_EXIT_AFTER_MS * (0.5 + Math.random())).unref();
    },
    (err) => {
      if (err instanceof StartAborted) return; // the signal handler exits
      process.stderr.write(`license-api: start-up failed: ${err?.message ?? err}\n`);
      process.exit(1);
    },
  );
}

try {
  main();
} catch (err) {
  process.stderr.write(`license-api: start-up failed: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
}
