/**
 * One agent's share of a distributed run: agent `index` of `agents` runs the same executor with 1/N of
 * its rate (open model) or of its virtual users (closed model), and the open model's agents start
 * staggered by a fraction of one arrival interval so that the merged arrivals are as evenly spaced
 * as one process would have made them (constant rate R: agent k's arrivals fall at k/R + i·N/R).
 */
import type { PoolSpec } from '../scenario.ts';
import { planExecutor, type ExecutorConfig, type Stage } from '../executors.ts';

export interface AgentShare {
  executor: ExecutorConfig;
  /** How long after the shared start this agent starts (ms). */
  offsetMs: number;
  /** The agent's keep-alive connections and request cap (its share of the totals, rounded up). */
  connections?: number;
  maxRequests?: number;
}

/** Virtual users of agent `index` when `total` are split over `agents` (the first ones get the remainder). */
export function vuShare(total: number, agents: number, index: number): number {
  return Math.floor(total / agents) + (index < total % agents ? 1 : 0);
}

const ceilShare = (v: number | undefined, agents: number) => (v === undefined ? undefined : Math.max(1, Math.ceil(v / agents)));

function checkAgents(agents: number, index: number): void {
  if (!Number.isInteger(agents) || agents < 1 || agents > 1000)
    throw new RangeError(`agents must be a whole number from 1 to 1000, got ${agents}`);
  if (!Number.isInteger(index) || index < 0 || index >= agents)
    throw new RangeError(`agent index must be a whole number from 0 to ${agents - 1}, got ${index}`);
}

/** The executor agent `index` of `agents` runs. Throws a RangeError when the load cannot be split that way. */
export function shareExecutor(executor: ExecutorConfig, agents: number, index: number): ExecutorConfig {
  checkAgents(agents, index);
  if (agents === 1) return executor;
  const stages = (list: Stage[], split: (target: number) => number) => list.map((s) => ({ ...s, target: split(s.target) }));
  switch (executor.executor) {
    case 'constant-arrival-rate':
      return {
        ...executor,
        rate: executor.rate / agents,
        preAllocatedVUs: ceilShare(executor.preAllocatedVUs, agents),
        maxVUs: ceilShare(executor.maxVUs, agents),
      };
    case 'ramping-arrival-rate':
      return {
        ...executor,
        startRate: (executor.startRate ?? 0) / agents,
        stages: stages(executor.stages, (t) => t / agents),
        preAllocatedVUs: ceilShare(executor.preAllocatedVUs, agents),
        maxVUs: ceilShare(executor.maxVUs, agents),
      };
    case 'constant-vus':
      if (executor.vus < agents)
        throw new RangeError(`${executor.vus} virtual users cannot be split over ${agents} agents (each needs at least one)`);
      return { ...executor, vus: vuShare(executor.vus, agents, index) };
    case 'ramping-vus': {
      const peak = Math.max(executor.startVUs ?? 1, ...executor.stages.map((s) => s.target));
      if (peak < agents)
        throw new RangeError(
          `at most ${peak} virtual users cannot be split over ${agents} agents (each needs at least one at the peak)`,
        );
      return {
        ...executor,
        startVUs: vuShare(executor.startVUs ?? 1, agents, index),
        stages: stages(executor.stages, (t) => vuShare(t, agents, index)),
      };
    }
    default:
      throw new RangeError(`unknown executor "${(executor as { executor: string }).executor}"`);
  }
}

/**
 * Agent `index`'s share: its executor, its start offset, its connections and request cap. The
 * offset is index/agents of the agent's own first arrival interval (at most 1 s); 0 for VUs.
 */
export function agentShare(
  executor: ExecutorConfig,
  agents: number,
  index: number,
  totals: { connections?: number; maxRequests?: number } = {},
): AgentShare {
  const mine = shareExecutor(executor, agents, index);
  let offsetMs = 0;
  if (agents > 1 && (mine.executor === 'constant-arrival-rate' || mine.executor === 'ramping-arrival-rate')) {
    const plan = planExecutor(mine, { timeoutMs: 10_000 });
    if (plan.model === 'open') {
      const interval = plan.arrivals.timeOf(1) - plan.arrivals.timeOf(0);
      if (Number.isFinite(interval)) offsetMs = (index / agents) * Math.min(interval, 1000);
    }
  }
  return {
    executor: mine,
    offsetMs,
    connections: ceilShare(totals.connections, agents),
    maxRequests: ceilShare(totals.maxRequests, agents),
  };
}

/**
 * The scenario's own connection pools for one of `agents` agents: 1/N of each (rounded up), so
 * that with 1/N of the rate each connection keeps the idle time the scenario meant.
 */
export function sharePools(pools: Record<string, PoolSpec> | undefined, agents: number): Record<string, PoolSpec> | undefined {
  if (!pools || agents <= 1) return pools;
  return Object.fromEntries(
    Object.entries(pools).map(([name, p]) => [name, { ...p, connections: Math.max(1, Math.ceil(p.connections / agents)) }]),
  );
}
