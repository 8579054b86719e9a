import { createClient } from 'redis';

export type RedisClient = ReturnType<typeof createRedis>;

/**
 * A Redis client that never queues commands while disconnected (they fail at once, so a Redis
 * outage shows up as a fast 503 instead of hung requests) and reconnects in the background.
 */
export function createRedis(url: string, timeoutMs: number) {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: timeoutMs,
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), 2000),
    },
  });
  client.on('error', () => {
    /* reported through /health/ready and failed commands */
  });
  return client;
}

/** Runs `fn` and rejects if it takes longer than `ms`. */
export async function withTimeout<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
