import { describe, expect, it } from 'vitest';
import type { Target } from '../cluster/target.ts';
import { harnessConfigSchema } from './config.ts';
import { defineExperiment } from './experiment.ts';
import { runExperiment } from './runner.ts';
import { licenseApi } from '../apps/license-api/profile.ts';

// The experiment contract's typed needs: what the runner refuses to run, and what the types promise inside.
const needsDependencies = defineExperiment<number>()({
  name: 'needs-dependencies',
  description: 'takes a dependency away',
  needs: ['dependencies'],
  async setup() {},
  // No `!`: `needs` makes `dependencies` part of the target's type here.
  act: async (ctx) => ctx.target.dependencies.names().length,
  judge: () => [],
});

defineExperiment<number>()({
  name: 'needs-nothing',
  description: 'asks for what it did not declare',
  async setup() {},
  // @ts-expect-error without `needs: ['dependencies']` the capability may be absent
  act: async (ctx) => ctx.target.dependencies.names().length,
  judge: () => [],
});

describe('runExperiment', () => {
  it('does not run an experiment whose needs the target lacks: INCONCLUSIVE, in the words of the capability map', async () => {
    let touched = false;
    const target = {
      kind: 'existing',
      name: 'staging',
      get kubeConfig() {
        touched = true;
        throw new Error('the runner must not reach the cluster');
      },
    } as unknown as Target;
    const r = await runExperiment(
      target,
      needsDependencies,
      { scenario: () => ({ flows: [] }), requestsPerIteration: () => 1 },
      'http://127.0.0.1:9',
      {
        app: licenseApi,
        config: harnessConfigSchema.parse({}),
        options: { rate: 1, from: 'v1', to: 'v2', faults: [] },
        signal: new AbortController().signal,
      },
    );
    expect(r.verdict).toBe('INCONCLUSIVE');
    expect(r.error).toBeNull();
    expect(r.gates).toEqual([
      {
        name: 'target can run it',
        verdict: 'INCONCLUSIVE',
        evidence: 'the existing target cannot take dependencies away, so this experiment cannot show anything here',
      },
    ]);
    expect(touched).toBe(false);
  });
});
