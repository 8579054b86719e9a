/**
 * Executors in k6's vocabulary and what they plan. Open model (arrival rate): requests start on a
 * schedule whatever the server does; an iteration that finds every VU busy is dropped. Closed model
 * (virtual users): each VU starts its next iteration when the previous one ends, so a slow server
 * slows the load down (and hides its own stalls).
 */
import { rampingArrivals, type ArrivalSchedule } from './arrival-schedule.ts';
import { parseDuration } from './units.ts';
import { constantVUs, rampingVUs, type VuSchedule } from './vu-schedule.ts';

/** A duration: "30s", "1m30s", or milliseconds. */
export type DurationInput = string | number;

export interface Stage {
  target: number;
  duration: DurationInput;
}

export type ExecutorConfig =
  | {
      executor: 'constant-arrival-rate';
      rate: number;
      timeUnit?: DurationInput;
      duration: DurationInput;
      preAllocatedVUs?: number;
      maxVUs?: number;
      gracefulStop?: DurationInput;
    }
  | {
      executor: 'ramping-arrival-rate';
      startRate?: number;
      timeUnit?: DurationInput;
      stages: Stage[];
      preAllocatedVUs?: number;
      maxVUs?: number;
      gracefulStop?: DurationInput;
    }
  | { executor: 'constant-vus'; vus: number; duration: DurationInput; gracefulStop?: DurationInput }
  | {
      executor: 'ramping-vus';
      startVUs?: number;
      stages: Stage[];
      gracefulRampDown?: DurationInput;
      gracefulStop?: DurationInput;
    };

export type ExecutorName = ExecutorConfig['executor'];
export const executorNames: readonly ExecutorName[] = [
  'constant-arrival-rate',
  'ramping-arrival-rate',
  'constant-vus',
  'ramping-vus',
];

export interface OpenPlan {
  model: 'open';
  executor: ExecutorName;
  arrivals: ArrivalSchedule;
  /** Most iterations in flight at once; beyond that, iterations are dropped. */
  maxVUs: number;
  durationMs: number;
  gracefulStopMs: number;
  peakRate: number;
}

export interface ClosedPlan {
  model: 'closed';
  executor: ExecutorName;
  vus: VuSchedule;
  durationMs: number;
  gracefulStopMs: number;
}

export type Plan = OpenPlan | ClosedPlan;

/** Longest run the engine accepts (a bound, not a target). */
export const MAX_DURATION_MS = 24 * 3_600_000;

function positive(name: string, v: unknown, integer = false): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new RangeError(`${name} must be a positive ${integer ? 'whole ' : ''}number, got ${String(v)}`);
  }
  return n;
}

function stagesMs(stages: Stage[]): { target: number; durationMs: number }[] {
  if (!Array.isArray(stages) || stages.length === 0)
    throw new RangeError('stages must be a non-empty list of {target, duration}');
  return stages.map((s, i) => {
    if (!(Number(s.target) >= 0)) throw new RangeError(`stage ${i + 1}: target must be >= 0`);
    return { target: Number(s.target), durationMs: parseDuration(s.duration) };
  });
}

/**
 * Turns an executor config into a plan. `timeoutMs` sizes the default maxVUs of the open model: by
 * default an iteration is dropped only when a full request-timeout's worth of them is already in
 * flight, so a stall shows up as latency first.
 */
export function planExecutor(cfg: ExecutorConfig, defaults: { timeoutMs: number }): Plan {
  const gracefulStopMs = cfg.gracefulStop === undefined ? defaults.timeoutMs + 1000 : parseDuration(cfg.gracefulStop);
  let plan: Plan;
  switch (cfg.executor) {
    case 'constant-arrival-rate':
    case 'ramping-arrival-rate': {
      const unitMs = cfg.timeUnit === undefined ? 1000 : positive('timeUnit', parseDuration(cfg.timeUnit));
      const perSecond = (r: number) => (r * 1000) / unitMs;
      const arrivals: ArrivalSchedule =
        cfg.executor === 'constant-arrival-rate'
          ? rampingArrivals(perSecond(positive('rate', cfg.rate)), [
              { target: perSecond(cfg.rate), durationMs: positive('duration', parseDuration(cfg.duration)) },
            ])
          : rampingArrivals(
              perSecond(Number(cfg.startRate ?? 0)),
              stagesMs(cfg.stages).map((s) => ({ target: perSecond(s.target), durationMs: s.durationMs })),
            );
      const byTimeout = Math.ceil((arrivals.peakRate * defaults.timeoutMs) / 1000);
      const maxVUs =
        cfg.maxVUs !== undefined
          ? positive('maxVUs', cfg.maxVUs, true)
          : cfg.preAllocatedVUs !== undefined
            ? positive('preAllocatedVUs', cfg.preAllocatedVUs, true)
            : Math.min(100_000, Math.max(100, byTimeout));
      if (cfg.preAllocatedVUs !== undefined && cfg.maxVUs !== undefined && cfg.maxVUs < cfg.preAllocatedVUs) {
        throw new RangeError('maxVUs must be >= preAllocatedVUs');
      }
      plan = {
        model: 'open',
        executor: cfg.executor,
        arrivals,
        maxVUs,
        durationMs: arrivals.durationMs,
        gracefulStopMs,
        peakRate: arrivals.peakRate,
      };
      break;
    }
    case 'constant-vus': {
      const vus = constantVUs(positive('vus', cfg.vus, true), positive('duration', parseDuration(cfg.duration)));
      plan = { model: 'closed', executor: cfg.executor, vus, durationMs: vus.durationMs, gracefulStopMs };
      break;
    }
    case 'ramping-vus': {
      const vus = rampingVUs(Number(cfg.startVUs ?? 1), stagesMs(cfg.stages));
      if (vus.peakVUs < 1) throw new RangeError('ramping-vus never has a VU: give a stage a target >= 1');
      plan = { model: 'closed', executor: cfg.executor, vus, durationMs: vus.durationMs, gracefulStopMs };
      break;
    }
    default:
      throw new RangeError(`unknown executor "${(cfg as { executor: string }).executor}" (known: ${executorNames.join(', ')})`);
  }
  if (plan.durationMs <= 0) throw new RangeError('the executor plans no time at all: give it a duration');
  if (plan.durationMs > MAX_DURATION_MS) throw new RangeError(`duration is capped at 24h (got ${plan.durationMs} ms)`);
  return plan;
}
