/**
 * When each request of an open-model run is due. Arrivals follow a piecewise-linear rate (constant or
 * ramping stages); arrival i is due at the time the cumulative planned count reaches i, computed
 * exactly (no rounding to timer ticks), so latency can be measured from the planned start.
 */

export interface RateStage {
  /** Rate at the end of the stage, requests per second. */
  target: number;
  /** Stage length in milliseconds. */
  durationMs: number;
}

export interface ArrivalSchedule {
  /** Planned number of arrivals over the whole schedule. */
  readonly count: number;
  readonly durationMs: number;
  /** Due time of arrival `i` (ms since start), or Infinity when the schedule has no arrival `i`. */
  timeOf(i: number): number;
  /** The planned rate (per second) at `tMs`. */
  rateAt(tMs: number): number;
  /** Highest planned rate, per second. */
  readonly peakRate: number;
}

interface Segment {
  start: number;
  durationMs: number;
  r0: number;
  r1: number;
  before: number;
  arrivals: number;
}

/** Arrivals at a constant rate (per second) for `durationMs`. */
export function constantArrivals(ratePerSecond: number, durationMs: number): ArrivalSchedule {
  return rampingArrivals(ratePerSecond, [{ target: ratePerSecond, durationMs }]);
}

/** Arrivals whose rate goes linearly from `startRate` through each stage's target (k6 ramping-arrival-rate). */
export function rampingArrivals(startRate: number, stages: RateStage[]): ArrivalSchedule {
  if (!(startRate >= 0)) throw new RangeError('startRate must be >= 0');
  const segments: Segment[] = [];
  let start = 0;
  let before = 0;
  let r0 = startRate;
  let peak = startRate;
  for (const st of stages) {
    if (!(st.target >= 0) || !(st.durationMs >= 0)) throw new RangeError('stage target and duration must be >= 0');
    const arrivals = ((r0 + st.target) / 2) * (st.durationMs / 1000);
    segments.push({ start, durationMs: st.durationMs, r0, r1: st.target, before, arrivals });
    start += st.durationMs;
    before += arrivals;
    r0 = st.target;
    peak = Math.max(peak, st.target);
  }
  const total = before;
  const count = Math.max(0, Math.ceil(total - 1e-9));
  const durationMs = start;
  let cursor = 0;

  function timeOf(i: number): number {
    if (i >= count || i < 0) return Infinity;
    // Arrivals are requested in increasing order; move the cursor forward (or back, rarely).
    if (cursor >= segments.length || segments[cursor].before > i) cursor = 0;
    while (cursor < segments.length && segments[cursor].before + segments[cursor].arrivals <= i) cursor++;
    if (cursor >= segments.length) return Infinity;
    const s = segments[cursor];
    const x = (i - s.before) * 1000; // arrivals × ms/s
    const a = (s.r1 - s.r0) / (2 * s.durationMs);
    const b = s.r0;
    // Solve a·τ² + b·τ = x for τ ≥ 0 in the stable form τ = 2x / (b + √(b² + 4ax)).
    const tau = x === 0 ? 0 : (2 * x) / (b + Math.sqrt(Math.max(0, b * b + 4 * a * x)));
    return s.start + Math.min(tau, s.durationMs);
  }

  function rateAt(tMs: number): number {
    for (const s of segments) {
      if (tMs < s.start + s.durationMs) return s.r0 + ((s.r1 - s.r0) * (tMs - s.start)) / (s.durationMs || 1);
    }
    return 0;
  }

  return { count, durationMs, timeOf, rateAt, peakRate: peak };
}
