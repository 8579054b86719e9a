import type { TestProject } from 'vitest/node';
import { startPostgres } from '../lib/services/postgres.ts';
import { startRedis } from '../lib/services/redis.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the suite's shared PostgreSQL server (create a database per test file). */
    postgresUrl: string;
    /** URL of the suite's shared Redis server (use a key prefix per test file). */
    redisUrl: string;
  }
}

/** One real PostgreSQL and one real Redis for the whole run; each test file makes its own database. */
export default async function setup(project: TestProject) {
  const postgres = await startPostgres();
  const redis = await startRedis();
  project.provide('postgresUrl', postgres.url());
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
    await postgres.stop();
  };
}
