import { describe, expect, it } from 'vitest';
import type { k8s } from './client.ts';
import { deploymentRolloutState, pollRollout, rolloutProblem } from './rollout.ts';

const pod = (
  name: string,
  o: { restarts?: number; ready?: boolean; waiting?: string; exit?: number; runningFor?: number; started?: boolean },
  now = 100_000,
): k8s.V1Pod => ({
  metadata: { name },
  status: {
    conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False' }],
    containerStatuses: [
      {
        name: 'c',
        image: 'i',
        imageID: '',
        ready: !!o.ready,
        started: o.started,
        restartCount: o.restarts ?? 0,
        state: o.waiting
          ? { waiting: { reason: o.waiting } }
          : o.runningFor !== undefined
            ? { running: { startedAt: new Date(now - o.runningFor) } }
            : {},
        lastState: o.exit !== undefined ? { terminated: { exitCode: o.exit, reason: 'Error' } } : {},
      },
    ],
  },
});

describe('rolloutProblem: a rollout that cannot finish, said as soon as it is clear', () => {
  const opts = { notReadyAfterMs: 60_000 };
  it('a crash loop: restarts, CrashLoopBackOff and the last exit code', () => {
    const p = rolloutProblem([pod('a', { restarts: 1, waiting: 'CrashLoopBackOff', exit: 78 })], 100_000, opts);
    expect(p?.reason).toBe('pod a cannot run: 1 restarts, waiting: CrashLoopBackOff, last terminated: exit 78 (Error)');
    expect(rolloutProblem([pod('a', { restarts: 2, runningFor: 1000 })], 100_000, opts)?.reason).toMatch(/2 restarts/);
  });
  it('an image that cannot be pulled fails at once', () => {
    expect(rolloutProblem([pod('a', { waiting: 'ErrImagePull' })], 100_000, opts)?.reason).toMatch(/waiting: ErrImagePull/);
  });
  it('a pod running past its readiness budget without being Ready', () => {
    expect(rolloutProblem([pod('a', { runningFor: 61_000 })], 100_000, opts)?.reason).toMatch(
      /run for 61 s without becoming Ready/,
    );
    expect(rolloutProblem([pod('a', { runningFor: 30_000 })], 100_000, opts)).toBeUndefined();
  });
  it('the budget runs from the start-up probe passing: a slow starter is not stuck, a started one is, counted from when it was seen started', () => {
    // Not started after 100 s: within its startupProbe budget (the kubelet restarts it if it never starts).
    expect(rolloutProblem([pod('a', { runningFor: 100_000, started: false })], 100_000, opts)).toBeUndefined();
    // Seen started for the first time now, after 100 s of start-up: 60 s more before it is stuck.
    const seen = new Map<string, number>();
    const p = pod('a', { runningFor: 100_000, started: true }, 100_000);
    expect(rolloutProblem([p], 100_000, { ...opts, seen })).toBeUndefined();
    expect(rolloutProblem([p], 150_000, { ...opts, seen })).toBeUndefined();
    expect(rolloutProblem([p], 161_000, { ...opts, seen })?.reason).toMatch(/run for 161 s without becoming Ready \(started/);
  });
  it('a healthy start is no problem: ready, or starting within budget, or one restart without back-off', () => {
    expect(
      rolloutProblem(
        [
          pod('a', { ready: true, runningFor: 90_000 }),
          pod('b', { runningFor: 5000 }),
          pod('c', { restarts: 1, runningFor: 2000 }),
        ],
        100_000,
        opts,
      ),
    ).toBeUndefined();
  });
});

describe('deploymentRolloutState (kubectl rollout status)', () => {
  it("follows kubectl's order: observed generation, deadline, updated, old replicas, available", () => {
    const d = (spec: object, status: object, generation = 2): k8s.V1Deployment => ({
      metadata: { name: 'api', generation },
      spec: { replicas: 3, selector: {}, template: {}, ...spec },
      status: { observedGeneration: 2, ...status },
    });
    expect(deploymentRolloutState(d({}, { observedGeneration: 1 }))).toMatchObject({
      done: false,
      reason: expect.stringMatching(/spec update to be observed/),
    });
    expect(
      deploymentRolloutState(
        d({}, { conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }] }),
      ),
    ).toMatchObject({ failed: true });
    expect(deploymentRolloutState(d({}, { updatedReplicas: 1 })).reason).toMatch(/1 out of 3 new replicas/);
    expect(deploymentRolloutState(d({}, { updatedReplicas: 3, replicas: 4 })).reason).toMatch(
      /1 old replicas are pending termination/,
    );
    expect(deploymentRolloutState(d({}, { updatedReplicas: 3, replicas: 3, availableReplicas: 2 })).reason).toMatch(
      /2 of 3 updated replicas are available/,
    );
    expect(deploymentRolloutState(d({}, { updatedReplicas: 3, replicas: 3, availableReplicas: 3 }))).toMatchObject({
      done: true,
    });
  });
});

describe('pollRollout: the fail-fast check judges only the spec being waited for', () => {
  const deployment = (generation: number, observedGeneration: number, updated: number): k8s.V1Deployment => ({
    metadata: { name: 'api', generation },
    spec: { replicas: 3, selector: { matchLabels: { app: 'api' } }, template: {} },
    status: { observedGeneration, replicas: 3, updatedReplicas: updated, availableReplicas: updated },
  });
  const crashLoop = { reason: 'pod api-old cannot run: 1 restarts, waiting: CrashLoopBackOff', pods: [] };

  it('before the controller observed the new spec, a crash-looping previous release does not fail the rollout that replaces it', async () => {
    // The apply of v1 after a crash-looping v2: first polls see generation 5 not yet observed (the
    // current template is still v2's), then the controller observes it and v1 rolls out.
    const states = [deployment(5, 4, 3), deployment(5, 4, 3), deployment(5, 5, 1), deployment(5, 5, 3)];
    const checked: number[] = [];
    let poll = 0;
    await pollRollout(async () => states[Math.min(poll++, states.length - 1)], 'api', {
      everyMs: 1,
      timeoutMs: 5000,
      check: async () => {
        checked.push(poll);
        return poll <= 2 ? crashLoop : undefined;
      },
    });
    expect(checked).toEqual([3]);
  });

  it('once the spec is observed, a hopeless new release fails at once, with its problem', async () => {
    let calls = 0;
    await expect(
      pollRollout(
        async () => {
          calls++;
          return deployment(5, 5, 1);
        },
        'api',
        { everyMs: 1, timeoutMs: 5000, check: async () => crashLoop },
      ),
    ).rejects.toThrow(/rollout of deployment "api" cannot finish: pod api-old cannot run/);
    expect(calls).toBe(1);
  });
});
