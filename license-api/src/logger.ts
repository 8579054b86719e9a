import { pino, type Logger } from 'pino';

/** JSON logs; credentials are redacted wherever they appear in a logged object. */
export function createLogger(level: string, base: Record<string, string>): Logger {
  return pino({
    level,
    base,
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        'authorization',
        'token',
        '*.token',
        'password',
        '*.password',
        'JWT_SECRET',
        'DATABASE_URL',
        'REDIS_URL',
      ],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/**
 * Warnings that a flood could repeat thousands of times a second (every request failing on the
 * same dead dependency): the first of each kind in every `intervalMs` is logged, the others are
 * counted and the count rides on the next line of that kind (`suppressed`).
 */
export class ThrottledLog {
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly kinds = new Map<string, { until: number; suppressed: number }>();
  constructor(log: Logger, intervalMs = 1000) {
    this.log = log;
    this.intervalMs = intervalMs;
  }

  warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const k = this.kinds.get(kind);
    if (k && now < k.until) {
      k.suppressed++;
      return;
    }
    if (this.kinds.size > 1000) this.kinds.clear();
    this.kinds.set(kind, { until: now + this.intervalMs, suppressed: 0 });
    this.log.warn(k?.suppressed ? { ...fields, suppressed: k.suppressed } : fields, msg);
  }
}
