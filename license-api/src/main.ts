import { ConfigError, loadConfig } from './config.ts';
import { createService, StartAborted } from './service.ts';

/**
 * The license API process. Exit codes: 0 after a clean shutdown (also when SIGTERM/SIGINT comes
 * during start-up), 1 when the shutdown missed its deadline or start-up failed, 78 (EX_CONFIG)
 * for a bad configuration.
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
  const onSignal = (signal: NodeJS.Signals) => {
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
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  service.start().catch((err) => {
    if (err instanceof StartAborted) return; // the signal handler exits
    process.stderr.write(`license-api: start-up failed: ${err?.message ?? err}\n`);
    process.exit(1);
  });
}

try {
  main();
} catch (err) {
  process.stderr.write(`license-api: start-up failed: ${(err as Error)?.message ?? err}\n`);
  process.exit(1);
}
