import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { joinLedger } from '../lib/evidence/join.ts';
import { Timeline } from '../lib/evidence/timeline.ts';
import { ErrorClass } from '../lib/load/error-class.ts';
import { Ledger, Outcome } from '../lib/load/ledger.ts';
import type { LoadResult } from '../lib/load/index.ts';
import { harnessConfigSchema } from './config.ts';
import type { Evidence } from './experiment.ts';
import { rolloutUnderLoad, type RolloutData } from './rollout-under-load.ts';
import { checkRecord } from './record.ts';

const pod = (name: string, version: string, o: { ready?: boolean; terminating?: boolean } = {}): V1Pod => ({
  metadata: {
    name,
    labels: { 'app.kubernetes.io/version': version },
    deletionTimestamp: o.terminating ? new Date(0) : undefined,
    resourceVersion: String(Math.random()),
  },
  spec: { nodeName: 'node-1', containers: [] },
  status: { podIP: '10.244.0.9', conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False' }] },
});

/**
 * A rollout of 3 replicas, maxSurge 1, as the timeline and the ledger would hold it (times in ms
 * from 0): v1's pods are Ready from the start; new pod i (v2) is created at 8 + 4i s, Ready at 10 + 4i s,
 * then old pod i terminates at 12 + 4i s and is gone 2 s later. Each Ready pod answers 40 requests/s:
 * in 10 ms, except a new pod in its first 2 s after Ready (`coldMs`) and v2 afterwards (`steadyMs`).
 */
function rollout(coldMs: number, steadyMs: number, trafficDelayMs = 0): Evidence<RolloutData> {
  const t = new Timeline(() => 0);
  const add = (p: V1Pod, at: number, type: 'ADDED' | 'MODIFIED' | 'DELETED' = 'MODIFIED', baseline = false) =>
    t.ingestPod({ type, object: p, previous: undefined, fromRelist: false }, at, baseline);
  for (let i = 0; i < 3; i++) add(pod(`old-${i}`, 'v1', { ready: true }), 0, 'ADDED', true);
  const life: Array<{ name: string; version: string; from: number; to: number; ready: number }> = [];
  for (let i = 0; i < 3; i++) {
    const created = 8000 + 4000 * i;
    add(pod(`new-${i}`, 'v2'), created, 'ADDED');
    add(pod(`new-${i}`, 'v2', { ready: true }), created + 2000);
    add(pod(`old-${i}`, 'v1', { terminating: true }), created + 4000);
    add(pod(`old-${i}`, 'v1', { terminating: true }), created + 6000, 'DELETED');
    life.push({ name: `old-${i}`, version: 'v1', from: 0, to: created + 4000, ready: -Infinity });
    // A Ready pod may get its first request later (endpoint lag, keep-alive clients on the old pods).
    life.push({
      name: `new-${i}`,
      version: 'v2',
      from: created + 2000 + trafficDelayMs,
      to: 40_000,
      ready: created + 2000 + trafficDelayMs,
    });
  }
  const ledger = new Ledger(-performance.timeOrigin); // ledger times are epoch ms here
  const name = ledger.names.id('heartbeat');
  let iteration = 0;
  for (const p of life) {
    for (let at = p.from; at < p.to; at += 25) {
      const ms = p.version === 'v1' ? 10 : at < p.ready + 2000 ? coldMs : steadyMs;
      const row = ledger.add(at, at, name, iteration++);
      ledger.markStarted(row, at, 0);
      ledger.finish(
        row,
        at + ms,
        Outcome.succeeded,
        200,
        ErrorClass.none,
        0,
        ledger.servedBy.id(p.name),
        ledger.appVersions.id(p.version),
      );
    }
  }
  const result = {
    ledger,
    summary: { rates: { achieved: 240, target: 240 }, counts: { dropped: 0 }, metrics: { schedule_delay: { 'p(99)': 1 } } },
  } as unknown as LoadResult;
  const joined = joinLedger(ledger, { timeline: t, coldStartMs: 2000 });
  return {
    data: {
      shape: { replicas: 3, maxSurge: 1, maxUnavailable: 0, pdbMinAvailable: null },
      rollout: { ok: true, error: null, startedAt: 8000, endedAt: 24_000 },
      load: { startedAt: 0, stoppedAt: 40_000 },
      sessions: { held: 20, alive: 20, dead: [], baseline: 20, after: 20 },
    },
    loads: [{ label: 'rollout', control: false, result, joined }],
    timeline: t,
    outages: [],
    startedAt: 0,
    endedAt: 40_000,
  };
}

const judge = (e: Evidence<RolloutData>) =>
  rolloutUnderLoad.judge(e, {
    options: { rate: 240, from: 'v1', to: 'v2', faults: [] },
    config: harnessConfigSchema.parse({}),
    target: {} as never,
  });
const gate = (gates: ReturnType<typeof judge>, name: string) => gates.find((g) => g.name === name)!;

describe('rollout-under-load: cold start judged apart from steady state', () => {
  it('a good release whose new pods are slow only in their first 2 s PASSes steady state, and its cold start is judged on its own budget', () => {
    const gates = judge(rollout(400, 10));
    expect(gate(gates, 'latency held').verdict).toBe('PASS');
    expect(gate(gates, 'latency held').evidence).toMatch(
      /in steady state: v1 in the 8\.0 s before the rollout, v2 in the 16\.0 s after the old pods were gone \(new pods' first 2\.0 s of serving judged apart\)/,
    );
    const cold = gate(gates, 'cold-start latency');
    expect(cold.verdict).toBe('PASS');
    expect(cold.evidence).toBe("p99 400.0 ms for v2 (n=240) in its 3 new pods' first 2.0 s of serving; budget p99 <= 1000 ms");
    expect(gates.every((g) => g.verdict === 'PASS')).toBe(true);
  });

  it("the cold start begins with a new pod's first request, not at Ready: traffic that reaches it 3 s late is still its cold start", () => {
    const e = rollout(400, 10, 3000);
    expect(e.loads[0].joined.coldStart.versions.v2).toMatchObject({ count: 240, p99: 400, pods: 3 });
    const gates = judge(e);
    expect(gate(gates, 'latency held').verdict).toBe('PASS');
    expect(gate(gates, 'cold-start latency').verdict).toBe('PASS');
  });

  it('new pods over the cold-start budget FAIL that gate, not the steady-state one', () => {
    const gates = judge(rollout(1500, 10));
    expect(gate(gates, 'latency held').verdict).toBe('PASS');
    expect(gate(gates, 'cold-start latency').verdict).toBe('FAIL');
    expect(gate(gates, 'cold-start latency').evidence).toMatch(/too slow to start/);
  });

  it('a release slower in steady state still FAILs the steady-state comparison', () => {
    const gates = judge(rollout(10, 160));
    const g = gate(gates, 'latency held');
    expect(g.verdict).toBe('FAIL');
    expect(g.evidence).toMatch(/the new version is slower/);
    expect(gate(gates, 'cold-start latency').verdict).toBe('PASS');
  });

  it('the cold start counts only pods seen turning Ready: pods Ready before the watches began have none', () => {
    const e = rollout(400, 10);
    expect(Object.keys(e.loads[0].joined.coldStart.versions)).toEqual(['v2']);
    expect(e.timeline.becameReadyAt('old-0')).toBeUndefined();
    expect(e.timeline.becameReadyAt('new-0')).toBe(10_000);
  });

  it('the record keeps the run history figures: failed requests, p99 per version, the longest drain, the rollout time, the replicas', () => {
    const e = rollout(400, 10);
    const rec = checkRecord({
      name: 'rollout-under-load',
      description: '',
      verdict: 'PASS',
      gates: judge(e),
      error: null,
      evidence: e as Evidence<unknown>,
      startedAt: 0,
      endedAt: 40_000,
      figures: rolloutUnderLoad.figures!(e),
      replicas: 3,
    });
    expect(rec.figures).toEqual({ failed_requests: 0, 'p99_ms.v1': 10, 'p99_ms.v2': 400, drain_s_max: 2, rollout_s: 16 });
    expect(rec.replicas).toBe(3);
  });
});
