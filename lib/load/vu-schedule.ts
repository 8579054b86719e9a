/**
 * How many virtual users a closed-model run wants at each moment: constant, or linear ramps between
 * stage targets (k6 ramping-vus).
 */

export interface VuStage {
  target: number;
  durationMs: number;
}

export interface VuSchedule {
  readonly durationMs: number;
  readonly peakVUs: number;
  /** Wanted VUs at `tMs` (0 after the end). */
  vusAt(tMs: number): number;
}

export function constantVUs(vus: number, durationMs: number): VuSchedule {
  if (!Number.isInteger(vus) || vus < 1) throw new RangeError('vus must be a whole number >= 1');
  return { durationMs, peakVUs: vus, vusAt: (t) => (t < durationMs ? vus : 0) };
}

export function rampingVUs(startVUs: number, stages: VuStage[]): VuSchedule {
  let start = 0;
  let from = startVUs;
  let peak = startVUs;
  const segs = stages.map((s) => {
    const seg = { start, durationMs: s.durationMs, from, to: s.target };
    start += s.durationMs;
    from = s.target;
    peak = Math.max(peak, s.target);
    return seg;
  });
  const durationMs = start;
  return {
    durationMs,
    peakVUs: peak,
    vusAt(t) {
      if (t >= durationMs) return 0;
      for (const s of segs) {
        if (t < s.start + s.durationMs) {
          return Math.round(s.from + ((s.to - s.from) * (t - s.start)) / (s.durationMs || 1));
        }
      }
      return 0;
    },
  };
}
