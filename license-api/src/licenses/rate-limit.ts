import { createHash } from 'node:crypto';
import type { Deadline } from '../deadline.ts';
import { ApiError, DependencyError } from '../errors.ts';
import { withTimeout, type RedisClient } from '../redis.ts';

const REDIS = 'the rate limiter (Redis)';

/**
 * Fixed one-minute windows of acquire attempts, counted in Redis so that every replica shares them:
 *
 * - per subject and license (`ratelimit:acquire:<minute>:<sha256(sub)>:<license>`), for licenses
 *   that exist: a subject spends only its own budget on a license, never another subject's;
 * - per subject, for license keys that do not exist (`ratelimit:unknown-license:<minute>:<sha256(sub)>`):
 *   one key per subject, never one per made-up key. `404 LICENSE_NOT_FOUND` against `201` told which
 *   keys exist, at any speed (500 guesses in 754 ms at a limit of 3). Past the budget, every acquire
 *   of that subject answers 429 for the rest of the minute, for keys that exist too, so the answers
 *   no longer tell them apart.
 *
 * The subject appears hashed (bounded length, and no token claim in Redis key names).
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

  /** Counts an acquire of an existing license; throws 429 past either budget of the subject. */
  async check(subject: string, licenseKey: string, deadline: Deadline): Promise<void> {
    const names = this.names(subject);
    const perLicense = `${names.acquire}:${licenseKey}`;
    const [unknown, count] = await this.run(deadline, async () => {
      const [u, n] = await this.redis.multi().get(names.unknown).incr(perLicense).expire(perLicense, 61).exec();
      return [Number(u ?? 0), Number(n)];
    });
    if (unknown > this.perMinute) throw this.limited(UNKNOWN_MESSAGE(this.perMinute));
    if (count > this.perMinute)
      throw this.limited(`more than ${this.perMinute} acquire attempts per minute for this subject and license`);
  }

  /** Counts an acquire of a license that does not exist; throws 429 past the subject's budget for those. */
  async checkUnknown(subject: string, deadline: Deadline): Promise<void> {
    const { unknown } = this.names(subject);
    const count = await this.run(deadline, async () => {
      const [n] = await this.redis.multi().incr(unknown).expire(unknown, 61).exec();
      return Number(n);
    });
    if (count > this.perMinute) throw this.limited(UNKNOWN_MESSAGE(this.perMinute));
  }

  private names(subject: string) {
    const window = Math.floor(Date.now() / 60_000);
    const who = createHash('sha256').update(subject).digest('hex');
    return { acquire: `ratelimit:acquire:${window}:${who}`, unknown: `ratelimit:unknown-license:${window}:${who}` };
  }

  private async run<T>(deadline: Deadline, fn: () => Promise<T>): Promise<T> {
    deadline.check(REDIS);
    // Not connected (Redis down, or reconnecting): fail now, as a typed 503, instead of sending a
    // command that would wait for its timeout.
    if (!this.redis.isReady) throw new DependencyError(REDIS, new Error('Redis is not connected'));
    try {
      return await withTimeout(Math.min(this.timeoutMs, deadline.remaining()), 'redis', fn);
    } catch (err) {
      throw new DependencyError(REDIS, err, { timedOut: /timed out/.test((err as Error)?.message ?? '') });
    }
  }

  private limited(message: string): ApiError {
    const retry = String(60 - Math.floor((Date.now() % 60_000) / 1000));
    return new ApiError(429, 'RATE_LIMITED', message, { 'Retry-After': retry });
  }
}

const UNKNOWN_MESSAGE = (n: number) =>
  `more than ${n} acquire attempts per minute for license keys that do not exist, for this subject`;
