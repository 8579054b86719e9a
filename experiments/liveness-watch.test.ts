import { describe, expect, it } from 'vitest';
import { livenessGate, probeTurn, type LivenessRecord, type LivenessSample } from './liveness-watch.ts';

// An outage from t=10 s to t=55 s, judged until 65 s (its recovery allowance); probes every second.
const W = { from: 10_000, to: 55_000, until: 65_000 };
const sample = (
  at: number,
  pod: string,
  ok = true,
  message = ok ? 'HTTP 200' : 'HTTP probe failed with statuscode: 503',
): LivenessSample => ({
  at,
  pod,
  container: 'app',
  ok,
  message,
  ms: 3,
});
/** Every pod probed every second from 0 to 70 s, all answering 200 except where `fail` says. */
function record(
  pods: string[],
  fail: (at: number, pod: string) => boolean = () => false,
  o: Partial<LivenessRecord> = {},
): LivenessRecord {
  const samples: LivenessSample[] = [];
  for (let at = 0; at <= 70_000; at += 1000) for (const p of pods) samples.push(sample(at + 37, p, !fail(at, p)));
  return {
    samples,
    unprobed: [],
    declared: pods.map((p) => `${p}/app`),
    handlers: { app: 'GET :http/health/live (timeout 5 s)' },
    everyMs: 1000,
    delayed: 0,
    ...o,
  };
}

describe("livenessGate: the harness's own liveness probes during a dependency outage", () => {
  it('a single failed probe FAILs with the cause "liveness depends on <dependency>", though no restart could have happened yet', () => {
    // One failure, 1 s into a 45 s outage: far below any failureThreshold, so the kubelet restarted nothing.
    const g = livenessGate(
      'postgres',
      W,
      record(['a', 'b', 'c'], (at, p) => at === 11_000 && p === 'b'),
    );
    expect(g.verdict).toBe('FAIL');
    expect(g.observed).toMatchObject({
      cause: 'liveness depends on postgres',
      failed_probes: 1,
      pods_failed: 1,
      first_failure_after_ms: 1037,
    });
    expect(g.evidence).toMatch(
      /^liveness depends on postgres: pod b's declared liveness \(GET :http\/health\/live \(timeout 5 s\)\) failed 1\.0 s after postgres went away/,
    );
  });

  it('a failure in the recovery allowance after the dependency is back counts too; one after it does not', () => {
    expect(
      livenessGate(
        'redis',
        W,
        record(['a'], (at) => at === 60_000),
      ).verdict,
    ).toBe('FAIL');
    expect(
      livenessGate(
        'redis',
        W,
        record(['a'], (at) => at === 68_000),
      ).verdict,
    ).toBe('PASS');
  });

  it('every pod answering every second PASSes, with the numbers; failures before the outage are named, not blamed on it', () => {
    const g = livenessGate(
      'postgres',
      W,
      record(['a', 'b', 'c'], (at) => at === 2000),
    );
    expect(g.verdict).toBe('PASS');
    expect(g.observed).toMatchObject({ pods: 3, seconds: 55, failed_before_outage: 3 });
    expect(g.evidence).toMatch(/every pod's declared liveness .* answered throughout the postgres outage/);
  });

  it('too few seconds probed (a stalled harness, an API that did not answer) is INCONCLUSIVE, never PASS', () => {
    const r = record(['a']);
    r.samples = r.samples.filter((s) => s.at < 20_000 || s.at > 60_000);
    const g = livenessGate('postgres', W, r);
    expect(g.verdict).toBe('INCONCLUSIVE');
    expect(g.evidence).toMatch(/probed liveness in only \d+ of 55 periods/);
    expect(livenessGate('postgres', W, { ...r, samples: [] }).verdict).toBe('INCONCLUSIVE');
  });

  it('a probe the harness cannot run as the kubelet does (exec) is INCONCLUSIVE; no liveness probe at all PASSes (nothing to restart)', () => {
    const exec = record([], undefined, {
      declared: ['a/app'],
      unprobed: [{ pod: 'a', container: 'app', why: 'an exec probe runs inside the container' }],
    });
    expect(livenessGate('postgres', W, exec)).toMatchObject({ verdict: 'INCONCLUSIVE' });
    expect(livenessGate('postgres', W, record([], undefined, { declared: [] }))).toMatchObject({
      verdict: 'PASS',
      evidence: expect.stringMatching(/no container declares a liveness probe/),
    });
  });
});

describe('probeTurn: when the harness asks a container its liveness', () => {
  const started = new Date(100_000);
  const running = (startedFlag?: boolean) => ({ started: startedFlag, state: { running: { startedAt: started } } });
  const shipped = { livenessProbe: { initialDelaySeconds: 30 }, startupProbe: { periodSeconds: 1 } };
  it('a container whose startup probe passed is asked at once, inside its initialDelaySeconds too (a fresh rollout before an outage)', () => {
    expect(probeTurn(shipped, running(true), 105_000)).toBe('probe');
  });
  it('without a startup probe the initial delay is honoured, as the kubelet does; after it, asked', () => {
    const noStartup = { livenessProbe: { initialDelaySeconds: 30 } };
    expect(probeTurn(noStartup, running(true), 105_000)).toBe('delayed');
    expect(probeTurn(noStartup, running(true), 131_000)).toBe('probe');
  });
  it('not running, or its startup probe not yet passed: not asked', () => {
    expect(probeTurn(shipped, running(false), 200_000)).toBe('not-running');
    expect(probeTurn(shipped, { state: { waiting: { reason: 'CrashLoopBackOff' } } }, 200_000)).toBe('not-running');
    expect(probeTurn(shipped, undefined, 200_000)).toBe('not-running');
  });
});
