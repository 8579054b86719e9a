import { describe, expect, it } from 'vitest';
import { planExecutor, type ExecutorConfig } from '../executors.ts';
import { agentShare, shareExecutor, vuShare, sharePools } from './share.ts';

const arrivals = (e: ExecutorConfig) => {
  const p = planExecutor(e, { timeoutMs: 10_000 });
  if (p.model !== 'open') throw new Error('open model expected');
  return Array.from({ length: p.arrivals.count }, (_, i) => p.arrivals.timeOf(i));
};

describe('agent shares', () => {
  it('splits an arrival rate evenly and staggers the agents so that the merged arrivals are those of one process', () => {
    const total: ExecutorConfig = { executor: 'constant-arrival-rate', rate: 300, duration: '2s', maxVUs: 101 };
    const shares = [0, 1, 2].map((k) => agentShare(total, 3, k, { connections: 32, maxRequests: 1000 }));
    expect(shares.map((s) => s.executor)).toEqual(
      [0, 1, 2].map(() => ({ ...total, rate: 100, maxVUs: 34, preAllocatedVUs: undefined })),
    );
    shares.forEach((s, k) => expect(s.offsetMs).toBeCloseTo((k * 10) / 3, 9));
    expect(shares.map((s) => [s.connections, s.maxRequests])).toEqual([
      [11, 334],
      [11, 334],
      [11, 334],
    ]);
    const merged = shares.flatMap((s) => arrivals(s.executor).map((t) => t + s.offsetMs)).sort((a, b) => a - b);
    const single = arrivals(total);
    expect(merged.length).toBe(single.length);
    merged.forEach((t, i) => expect(t).toBeCloseTo(single[i], 6));
  });

  it('splits ramping rates stage by stage, and virtual users with the remainder going to the first agents', () => {
    const ramp: ExecutorConfig = {
      executor: 'ramping-arrival-rate',
      startRate: 10,
      stages: [
        { target: 100, duration: '10s' },
        { target: 0, duration: '5s' },
      ],
    };
    expect(shareExecutor(ramp, 2, 1)).toMatchObject({
      startRate: 5,
      stages: [
        { target: 50, duration: '10s' },
        { target: 0, duration: '5s' },
      ],
    });
    expect([0, 1, 2].map((k) => vuShare(10, 3, k))).toEqual([4, 3, 3]);
    expect(shareExecutor({ executor: 'constant-vus', vus: 10, duration: '5s' }, 3, 2)).toEqual({
      executor: 'constant-vus',
      vus: 3,
      duration: '5s',
    });
    expect(() => shareExecutor({ executor: 'constant-vus', vus: 2, duration: '5s' }, 3, 0)).toThrow(
      /cannot be split over 3 agents/,
    );
    expect(agentShare({ executor: 'constant-vus', vus: 4, duration: '5s' }, 2, 1).offsetMs).toBe(0);
    expect(() => shareExecutor(ramp, 2, 2)).toThrow(RangeError);
  });

  it("a scenario's own pools are shared too, so each connection keeps its idle time at 1/N of the rate", () => {
    expect(sharePools({ idle: { connections: 58, watchIdle: false } }, 2)).toEqual({
      idle: { connections: 29, watchIdle: false },
    });
    expect(sharePools({ idle: { connections: 3 } }, 4)).toEqual({ idle: { connections: 1 } });
    expect(sharePools(undefined, 2)).toBeUndefined();
    const one = { idle: { connections: 5 } };
    expect(sharePools(one, 1)).toBe(one);
  });
});
