import { ConfigError, loadConfig } from './config.ts';
import { startService } from './service.ts';

/**
 * The license API process. Exit codes: 0 after a clean shutdown, 1 when the shutdown missed its
 * deadline or start-up failed, 78 (EX_CONFIG) for a bad configuration.
 */
async function main(): Promise<void> {
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
  const service = await startService(config);
  const onSignal = (signal: NodeJS.Signals) => {
    const deadline = setTimeout(() => {
      process.stderr.write(`license-api: shutdown missed its ${config.SHUTDOWN_TIMEOUT_MS} ms deadline; forcing exit\n`);
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    deadline.unref();
    service.shutdown(signal).then(() => process.exit(0), (err) => {
      process.stderr.write(`license-api: shutdown failed: ${err}\n`);
      process.exit(1);
    });
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

main().catch((err) => {
  process.stderr.write(`license-api: start-up failed: ${err?.message ?? err}\n`);
  process.exit(1);
});
