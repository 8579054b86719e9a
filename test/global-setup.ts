import type { TestProject } from 'vitest/node';
import { startTestDependencies } from './dependencies.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the suite's shared PostgreSQL server (create a database per test file). */
    postgresUrl: string;
    /** URL of the suite's shared Redis server (use a key prefix per test file). */
    redisUrl: string;
    /** How they run: `host` processes or `containers` (VERDICT_TEST_DEPS, see test/dependencies.ts). */
    testDeps: string;
  }
}

/** One real PostgreSQL and one real Redis for the whole run; each test file makes its own database. */
export default async function setup(project: TestProject) {
  const deps = await startTestDependencies(undefined, { onProgress: (m) => console.info(`test dependencies: ${m}`) });
  if (process.env.VERDICT_TEST_DEPS) console.info(`test dependencies: ${deps.detail}, started in ${deps.startMs} ms`);
  project.provide('postgresUrl', deps.postgresUrl);
  project.provide('redisUrl', deps.redisUrl);
  project.provide('testDeps', deps.strategy);
  return async () => {
    await deps.stop();
  };
}
