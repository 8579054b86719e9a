import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { LicenseStore } from './licenses/store.ts';
import { ThrottledLog } from './logger.ts';
import type { Metrics } from './metrics.ts';

export interface Background {
  /** Stops the timers and waits for a run in progress (bounded by the statement timeout). */
  stop(): Promise<void>;
}

/**
 * Runs `task` now and then every `intervalMs` after the previous run ended (so runs never overlap),
 * on an unref'd timer (it never holds the process open). A failure is logged and the next run
 * comes as planned.
 */
function every(intervalMs: number, name: string, warn: ThrottledLog, task: () => Promise<void>) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = () => {
    running = task()
      .catch((err: unknown) => {
        warn.warn(name, { task: name, err: (err as Error)?.message }, 'background task failed');
      })
      .finally(() => {
        running = undefined;
        if (!stopped) {
          timer = setTimeout(run, intervalMs);
          timer.unref();
        }
      });
  };
  run();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}

/**
 * The service's background work, started once it serves:
 * - the `license_active_sessions` gauge, recounted every ACTIVE_SESSIONS_REFRESH_SECONDS (one
 *   indexed count per interval per replica, instead of one per scrape);
 * - the session sweeper, every SESSION_SWEEP_INTERVAL_SECONDS: ends sessions whose heartbeats
 *   stopped and deletes sessions ended more than SESSION_RETENTION_HOURS ago, in bounded batches.
 */
export function startBackground(config: Config, store: LicenseStore, metrics: Metrics, log: Logger): Background {
  const warn = new ThrottledLog(log, 60_000);
  const stops = [
    every(config.ACTIVE_SESSIONS_REFRESH_SECONDS * 1000, 'active-sessions', warn, async () => {
      metrics.activeSessions.set(await store.countActive());
    }),
    every(config.SESSION_SWEEP_INTERVAL_SECONDS * 1000, 'session-sweeper', warn, async () => {
      const r = await store.sweep(config.SESSION_RETENTION_HOURS * 3600);
      if (r.expired || r.deleted) log.info({ expired: r.expired, deleted: r.deleted }, 'session sweep');
    }),
  ];
  return {
    stop: async () => {
      await Promise.all(stops.map((s) => s()));
    },
  };
}
