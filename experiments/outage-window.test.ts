import { describe, expect, it } from 'vitest';
import { licenseApi } from '../apps/license-api/profile.ts';
import { EMBEDDED_PLATFORM } from '../cluster/embedded/embedded-cluster.ts';
import { renderRelease } from '../lib/kube/deploy.ts';
import { livenessBudgets, planOutage, podSpecOf } from './outage-window.ts';

const spec = (livenessProbe?: Record<string, unknown>) => ({ containers: [{ name: 'app', livenessProbe }] });

describe('the outage window comes from the workload (issue 21)', () => {
  it('the shipped manifests: liveness 10 s × 3 + 5 s = 35 s, + 10 s margin = 45 s, raised to the 60 s floor; with the floor lowered the derivation decides', async () => {
    const objects = await renderRelease(licenseApi.release('v2', EMBEDDED_PLATFORM));
    const budgets = livenessBudgets(podSpecOf(objects, 'license-api'));
    expect(budgets).toEqual([
      { container: 'license-api', periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 5, budgetMs: 35_000 },
    ]);
    const real = planOutage(budgets, 60_000, 'Deployment license-api');
    expect(real.ms).toBe(60_000);
    expect(real.source).toMatch(
      /^60 s: the floor .* above the longest liveness failure budget in Deployment license-api .*= 35 s\) \+ a margin of 10 s = 45 s/,
    );
    const test = planOutage(budgets, 0, 'Deployment license-api');
    expect([test.ms, test.marginMs]).toEqual([45_000, 10_000]);
    expect(test.source).toMatch(/^45 s: the longest liveness failure budget/);
  });

  it('a release whose liveness is slower than any constant gets an outage that outlasts it (a detector never depends on the fault fitting a chosen window)', () => {
    // periodSeconds 30 × failureThreshold 5 + timeoutSeconds 10 = 160 s; margin one period (30 s).
    const p = planOutage(livenessBudgets(spec({ periodSeconds: 30, failureThreshold: 5, timeoutSeconds: 10 })), 60_000, 'x');
    expect([p.ms, p.longest?.budgetMs, p.marginMs]).toEqual([190_000, 160_000, 30_000]);
  });

  it("the kubelet's defaults fill absent fields (10 s × 3 + 1 s); the longest of several containers decides", () => {
    const budgets = livenessBudgets({
      containers: [
        { name: 'a', livenessProbe: {} },
        { name: 'b', livenessProbe: { periodSeconds: 20, failureThreshold: 4, timeoutSeconds: 2 } },
        { name: 'c' },
      ],
    });
    expect(budgets.map((b) => [b.container, b.budgetMs])).toEqual([
      ['a', 31_000],
      ['b', 82_000],
    ]);
    expect(planOutage(budgets, 60_000, 'x')).toMatchObject({ ms: 102_000, longest: { container: 'b' } });
  });

  it('no liveness probe at all: the floor, saying so', () => {
    const p = planOutage(livenessBudgets(spec()), 60_000, 'Deployment x');
    expect([p.ms, p.longest]).toEqual([60_000, null]);
    expect(p.source).toMatch(/no container of Deployment x declares a liveness probe/);
  });

  it('the eager fault liveness-on-dependencies (2 s × 2 + 5 s): its budget is short, the floor holds the outage at 60 s', async () => {
    const objects = await renderRelease(
      licenseApi.release('v2', EMBEDDED_PLATFORM, [licenseApi.faults['liveness-on-dependencies']]),
    );
    const [b] = livenessBudgets(podSpecOf(objects, 'license-api'));
    expect(b.budgetMs).toBe(9_000);
    expect(planOutage([b], 60_000, 'x').ms).toBe(60_000);
  });
});
