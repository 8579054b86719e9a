/**
 * The join of a load run's ledger with the watched timeline: every failed request gets its pod
 * (from the response header, else from the target's connection records) and exactly one cause;
 * every second gets its request count, failures by cause, latency and answering versions.
 */
import type { Ledger } from '../load/ledger.ts';
import { classifyFailure, type CauseContext, type FailureCause } from './causes.ts';

export interface JoinedFailure {
  /** Ledger row. */
  row: number;
  /** Epoch ms the request was scheduled. */
  at: number;
  step: string;
  status: number;
  error: string | null;
  pod: string | null;
  version: string | null;
  attributedBy: 'response-header' | 'proxy-connection' | null;
  cause: FailureCause;
  reason: string;
}

export interface SecondOfEvidence {
  /** Epoch ms of the start of the second. */
  t: number;
  /** Requests that ended (and were judged) in this second. */
  requests: number;
  failed: Partial<Record<FailureCause, number>>;
  p50: number | null;
  p99: number | null;
  versions: Record<string, number>;
}

export interface JoinedLoad {
  /** Judged requests: succeeded + failed, not counting those the run itself aborted. */
  total: number;
  succeeded: number;
  failed: number;
  dropped: number;
  /** Succeeded requests per answering app version. */
  byVersion: Record<string, number>;
  failures: JoinedFailure[];
  series: SecondOfEvidence[];
  /** Latency of judged requests from their scheduled time (ms), null without any. */
  latency: { p50: number; p90: number; p99: number; max: number } | null;
  /** Latency per answering app version (succeeded requests). */
  latencyByVersion: Record<string, { count: number; p50: number; p99: number }>;
  /**
   * The same, over only the seconds in which every version answered (the canary/baseline window):
   * the versions compared under the same load, machine and minutes, not one calm and one busy.
   */
  latencyWhileAllServed: { seconds: number; versions: Record<string, { count: number; p50: number; p99: number }> };
  /** Epoch ms of the first scheduled and the last ended request. */
  from: number | null;
  to: number | null;
}

export interface JoinContext extends CauseContext {
  /** The pod a client connection (by local port) was forwarded to, where the target knows it. */
  podOfConnection?: (clientPort: number) => string | undefined;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
const round = (x: number) => Math.round(x * 1000) / 1000;

export function joinLedger(ledger: Ledger, ctx: JoinContext): JoinedLoad {
  const failures: JoinedFailure[] = [];
  const byVersion: Record<string, number> = {};
  const seconds = new Map<
    number,
    { requests: number; failed: Partial<Record<FailureCause, number>>; durations: number[]; versions: Record<string, number> }
  >();
  const durations: number[] = [];
  const versionDurations = new Map<string, number[]>();
  /** Per version: [end second, duration] of each success, for the overlap window. */
  const versionSeconds = new Map<string, number[]>();
  let succeeded = 0;
  let failed = 0;
  let dropped = 0;
  let from: number | null = null;
  let to: number | null = null;
  const epoch = (t: number | null) => (t === null ? null : ledger.epochMs(t));
  for (const r of ledger.rows()) {
    if (r.outcome === 'dropped') {
      dropped++;
      continue;
    }
    if (r.outcome === 'pending' || r.error === 'aborted') continue;
    const scheduled = ledger.epochMs(r.scheduledAt);
    const ended = epoch(r.endedAt) ?? scheduled;
    from = from === null ? scheduled : Math.min(from, scheduled);
    to = to === null ? ended : Math.max(to, ended);
    const sec = Math.floor(ended / 1000) * 1000;
    let s = seconds.get(sec);
    if (!s) {
      s = { requests: 0, failed: {}, durations: [], versions: {} };
      seconds.set(sec, s);
    }
    s.requests++;
    const duration = ended - scheduled;
    s.durations.push(duration);
    durations.push(duration);
    if (r.outcome === 'succeeded') {
      succeeded++;
      if (r.appVersion) {
        byVersion[r.appVersion] = (byVersion[r.appVersion] ?? 0) + 1;
        s.versions[r.appVersion] = (s.versions[r.appVersion] ?? 0) + 1;
        let v = versionDurations.get(r.appVersion);
        if (!v) {
          v = [];
          versionDurations.set(r.appVersion, v);
        }
        v.push(duration);
        let vs = versionSeconds.get(r.appVersion);
        if (!vs) {
          vs = [];
          versionSeconds.set(r.appVersion, vs);
        }
        vs.push(sec, duration);
      }
      continue;
    }
    failed++;
    const viaConnection = !r.servedBy && r.localPort ? ctx.podOfConnection?.(r.localPort) : undefined;
    const pod = r.servedBy ?? viaConnection ?? null;
    const c = classifyFailure(
      { scheduledAt: scheduled, startedAt: epoch(r.startedAt), endedAt: epoch(r.endedAt), status: r.status, error: r.error, pod },
      ctx,
    );
    s.failed[c.cause] = (s.failed[c.cause] ?? 0) + 1;
    failures.push({
      row: r.row,
      at: scheduled,
      step: r.name,
      status: r.status,
      error: r.error ?? r.errorCode,
      pod: pod ?? c.inferredPod ?? null,
      version: r.appVersion,
      attributedBy: r.servedBy ? 'response-header' : viaConnection ? 'proxy-connection' : null,
      cause: c.cause,
      reason: c.reason,
    });
  }
  const series: SecondOfEvidence[] = [...seconds.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, s]) => {
      const d = Float64Array.from(s.durations).sort();
      return {
        t,
        requests: s.requests,
        failed: s.failed,
        p50: d.length ? round(quantile(d, 0.5)) : null,
        p99: d.length ? round(quantile(d, 0.99)) : null,
        versions: s.versions,
      };
    });
  const all = Float64Array.from(durations).sort();
  const latency = all.length
    ? {
        p50: round(quantile(all, 0.5)),
        p90: round(quantile(all, 0.9)),
        p99: round(quantile(all, 0.99)),
        max: round(all[all.length - 1]),
      }
    : null;
  const latencyByVersion: JoinedLoad['latencyByVersion'] = {};
  for (const [v, list] of versionDurations) {
    const d = Float64Array.from(list).sort();
    latencyByVersion[v] = { count: d.length, p50: round(quantile(d, 0.5)), p99: round(quantile(d, 0.99)) };
  }
  // Seconds in which every version answered at least once.
  let shared: Set<number> | null = null;
  for (const vs of versionSeconds.values()) {
    const secs = new Set<number>();
    for (let i = 0; i < vs.length; i += 2) secs.add(vs[i]);
    shared = shared === null ? secs : new Set([...(shared as Set<number>)].filter((x) => secs.has(x)));
  }
  const latencyWhileAllServed: JoinedLoad['latencyWhileAllServed'] = { seconds: shared?.size ?? 0, versions: {} };
  if (shared && shared.size > 0 && versionSeconds.size > 1) {
    for (const [v, vs] of versionSeconds) {
      const list: number[] = [];
      for (let i = 0; i < vs.length; i += 2) if (shared.has(vs[i])) list.push(vs[i + 1]);
      const d = Float64Array.from(list).sort();
      if (d.length)
        latencyWhileAllServed.versions[v] = { count: d.length, p50: round(quantile(d, 0.5)), p99: round(quantile(d, 0.99)) };
    }
  }
  return {
    total: succeeded + failed,
    succeeded,
    failed,
    dropped,
    byVersion,
    failures,
    series,
    latency,
    latencyByVersion,
    latencyWhileAllServed,
    from,
    to,
  };
}

/** Failures grouped by cause, most frequent first, with up to `examples` each (earliest first). */
export function failuresByCause(
  failures: JoinedFailure[],
  examples = 10,
): Array<{ cause: FailureCause; count: number; examples: JoinedFailure[] }> {
  const groups = new Map<FailureCause, JoinedFailure[]>();
  for (const f of failures) {
    let g = groups.get(f.cause);
    if (!g) {
      g = [];
      groups.set(f.cause, g);
    }
    g.push(f);
  }
  return [...groups.entries()]
    .sort((a, b) => b[1].length - a[1].length)
    .map(([cause, list]) => ({ cause, count: list.length, examples: [...list].sort((a, b) => a.at - b.at).slice(0, examples) }));
}
