import { createHash } from 'node:crypto';
import type { Deadline } from '../deadline.ts';
import { ApiError, DependencyError } from '../errors.ts';
import { withTimeout, type RedisClient } from '../redis.ts';

const REDIS = 'the rate limiter (Redis)';

/**
 * Fixed one-minute window of acquire attempts per subject and license, counted in Redis so that
 * every replica shares it. Keyed by both: a subject spends only its own budget on a license, never
 * another subject's. The caller checks only licenses that exist, so a made-up key creates no Redis
 * key; the subject appears hashed (bounded length, and no token claim in Redis key names).
 */
export class RateLimiter {
  private readonly redis: RedisClient;
  private readonly perMinute: number;
  private readonly timeoutMs: number;
  constructor(redis: RedisClient, perMinute: number, timeoutMs: number) {
    this.redis = redis;
    this.perMinute = perMinute;
    this.timeoutMs = timeoutMs;
  }

  get enabled(): boolean {
    return this.perMinute > 0;
  }

  async check(subject: string, licenseKey: string, deadline: Deadline): Promise<void> {
    if (!this.enabled) return;
    deadline.check(REDIS);
    // Not connected (Redis down, or reconnecting): fail now, as a typed 503, instead of sending a
    // command that would wait for its timeout.
    if (!this.redis.isReady) throw new DependencyError(REDIS, new Error('Redis is not connected'));
    const window = Math.floor(Date.now() / 60_000);
    const who = createHash('sha256').update(subject).digest('hex');
    const name = `ratelimit:acquire:${window}:${who}:${licenseKey}`;
    const timeoutMs = Math.min(this.timeoutMs, deadline.remaining());
    let count: number;
    try {
      count = await withTimeout(timeoutMs, 'redis', async () => {
        const [n] = await this.redis.multi().incr(name).expire(name, 61).exec();
        return Number(n);
      });
    } catch (err) {
      throw new DependencyError(REDIS, err, { timedOut: /timed out/.test((err as Error)?.message ?? '') });
    }
    if (count > this.perMinute) {
      const retry = String(60 - Math.floor((Date.now() % 60_000) / 1000));
      throw new ApiError(
        429,
        'RATE_LIMITED',
        `more than ${this.perMinute} acquire attempts per minute for this subject and license`,
        { 'Retry-After': retry },
      );
    }
  }
}
