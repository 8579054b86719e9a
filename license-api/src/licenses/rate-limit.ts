import { ApiError, DependencyError } from '../errors.ts';
import { withTimeout, type RedisClient } from '../redis.ts';

/** Fixed one-minute window per key, counted in Redis so that every replica shares it. */
export class RateLimiter {
  private readonly redis: RedisClient;
  private readonly perMinute: number;
  private readonly timeoutMs: number;
  constructor(redis: RedisClient, perMinute: number, timeoutMs: number) {
    this.redis = redis;
    this.perMinute = perMinute;
    this.timeoutMs = timeoutMs;
  }

  async check(key: string): Promise<void> {
    if (this.perMinute === 0) return;
    const window = Math.floor(Date.now() / 60_000);
    const name = `ratelimit:acquire:${window}:${key}`;
    let count: number;
    try {
      count = await withTimeout(this.timeoutMs, 'redis', async () => {
        const [n] = await this.redis.multi().incr(name).expire(name, 61).exec();
        return Number(n);
      });
    } catch (err) {
      throw new DependencyError('the rate limiter (Redis)', err);
    }
    if (count > this.perMinute) {
      const retry = String(60 - Math.floor((Date.now() % 60_000) / 1000));
      throw new ApiError(429, 'RATE_LIMITED', `more than ${this.perMinute} acquire attempts per minute for this license`, { 'Retry-After': retry });
    }
  }
}
