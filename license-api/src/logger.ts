import { pino, type Logger } from 'pino';

/** JSON logs; credentials are redacted wherever they appear in a logged object. */
export function createLogger(level: string, base: Record<string, string>): Logger {
  return pino({
    level,
    base,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'token', '*.token', 'password', '*.password', 'JWT_SECRET', 'DATABASE_URL', 'REDIS_URL'],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
