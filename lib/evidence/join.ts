/**
 * The join of a load run's ledger with the watched timeline: every failed request gets its pod
 * (from the response header, else from the target's connection records) and exactly one cause;
 * every second gets its request count, failures by cause, latency and answering versions.
 */
import { Outcome, type ConnectionUseName, type Creator, type Ledger } from '../load/ledger.ts';
import { splitKind } from '../load/scenario.ts';
import { classifyFailure, type AcceptedAnswer, type CauseContext, type FailureCause, type KindAnswers } from './causes.ts';

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
  /** `METHOD route` of the request (from its kind), else its step name. */
  route: string;
  /** Method, route and body shape (`POST /api/v1/licenses/heartbeat {session_id:string}`), null when not recorded. */
  kind: string | null;
  /** Who created the resource it used (version and pod), null when the load did not tag it. */
  createdBy: Creator | null;
  /** For a version comparison (contract-break): the earliest answer of another version that accepted the same kind. */
  contrast: AcceptedAnswer | null;
  /** It went out on a new connection or a reused keep-alive one (null when unknown), and that connection's age (ms). */
  connection: ConnectionUseName | null;
  connectionAgeMs: number | null;
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

/** Judged requests and failures by the kind of connection they went out on. */
export type ByConnection = Record<ConnectionUseName | 'unknown', { total: number; failed: number }>;

export interface JoinedLoad {
  /** Judged requests: succeeded + failed, not counting those the run itself aborted. */
  total: number;
  /** The same by connection kind: new (opened for the request), reused (kept alive), unknown. */
  byConnection: ByConnection;
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
   * The same in steady state, over only the seconds in which every version answered (the
   * canary/baseline window): the versions compared under the same load, machine and minutes, not
   * one calm and one busy. Requests a new pod served in its cold start are left out (see `coldStart`).
   */
  latencyWhileAllServed: { seconds: number; versions: Record<string, { count: number; p50: number; p99: number }> };
  /**
   * Steady-state latency per version of the successes that ended in [from, to) (epoch ms), cold
   * starts left out: a version's own quiet minutes, e.g. the old one before a rollout and the new
   * one after it, under the same load on the same machine.
   */
  latencyBetween(from: number, to: number): Record<string, { count: number; p50: number; p90: number; p99: number }>;
  /**
   * Cold start: the requests each new pod served in its first `windowMs` after it became Ready (as
   * the timeline saw it turn Ready), per version: judged on their own budget, apart from steady state.
   */
  coldStart: { windowMs: number; versions: Record<string, { count: number; p50: number; p99: number; pods: number }> };
  /** Epoch ms of the first scheduled and the last ended request. */
  from: number | null;
  to: number | null;
}

export interface JoinContext extends Omit<CauseContext, 'answers'> {
  /** The pod a client connection (by local port) was forwarded to, where the target knows it. */
  podOfConnection?: (clientPort: number) => string | undefined;
  /**
   * A new pod's cold start: its first this many ms of serving, once it became Ready (ms). Default
   * {@link DEFAULT_COLD_START_MS}.
   */
  coldStartMs?: number;
}

/**
 * A new pod's cold start: its first 2 s of serving after it became Ready. It begins with the first
 * request the pod answered, not at Ready: a Ready pod can wait seconds for traffic (the data plane's
 * endpoint lag, and keep-alive clients that stay on the old pods until those close their
 * connections), and what is cold in it (JIT, pooled connections, caches) warms with requests, not time.
 */
export const DEFAULT_COLD_START_MS = 2000;

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
const round = (x: number) => Math.round(x * 1000) / 1000;

/**
 * What each version answered per request kind over the whole ledger: accepted (succeeded) and
 * refused with a 4xx, and each version's earliest accepted answer. Column reads only (no row objects).
 */
export function kindAnswers(ledger: Ledger): KindAnswers {
  // kind id → version id → counts and the earliest accepted row
  type Counts = { accepted: number; refused: number; first: number };
  const byKind = new Map<number, Map<number, Counts>>();
  for (let r = 0; r < ledger.length; r++) {
    const kind = ledger.kindId(r);
    const version = ledger.appVersionId(r);
    if (kind === 0 || version === 0) continue;
    const outcome = ledger.outcome(r);
    const status = ledger.status(r);
    const refused = outcome === Outcome.failed && status >= 400 && status < 500;
    if (outcome !== Outcome.succeeded && !refused) continue;
    let versions = byKind.get(kind);
    if (!versions) byKind.set(kind, (versions = new Map<number, Counts>()));
    let c = versions.get(version);
    if (!c) versions.set(version, (c = { accepted: 0, refused: 0, first: -1 }));
    if (refused) c.refused++;
    else if (c.accepted++ === 0 || ledger.scheduledAt(r) < ledger.scheduledAt(c.first)) c.first = r;
  }
  const of = (kind: string, version: string) =>
    byKind.get(ledger.kinds.id(kind))?.get(ledger.appVersions.id(version)) ?? { accepted: 0, refused: 0, first: -1 };
  return {
    accepted: (kind, version) => of(kind, version).accepted,
    refused: (kind, version) => of(kind, version).refused,
    acceptedElsewhere(kind, version) {
      const mine = ledger.appVersions.id(version);
      let best: { count: number; row: number; version: number } | null = null;
      for (const [v, c] of byKind.get(ledger.kinds.id(kind)) ?? []) {
        if (v === mine || c.accepted === 0) continue;
        if (!best || c.accepted > best.count) best = { count: c.accepted, row: c.first, version: v };
      }
      if (!best) return null;
      return {
        count: best.count,
        example: {
          version: ledger.appVersions.value(best.version)!,
          pod: ledger.servedBy.value(ledger.servedById(best.row)) ?? null,
          at: ledger.epochMs(ledger.scheduledAt(best.row)),
          status: ledger.status(best.row),
        },
      };
    },
  };
}

/** `METHOD route` of a request kind, or the step name without one. */
export function routeOf(kind: string | null, step: string): string {
  if (!kind) return step;
  const k = splitKind(kind);
  return `${k.method} ${k.route}`;
}

export function joinLedger(ledger: Ledger, joinContext: JoinContext): JoinedLoad {
  const ctx: CauseContext = { ...joinContext, answers: kindAnswers(ledger) };
  const podOfConnection = joinContext.podOfConnection;
  const failures: JoinedFailure[] = [];
  const byVersion: Record<string, number> = {};
  const seconds = new Map<
    number,
    { requests: number; failed: Partial<Record<FailureCause, number>>; durations: number[]; versions: Record<string, number> }
  >();
  const durations: number[] = [];
  const versionDurations = new Map<string, number[]>();
  /** Per version: [end second, duration] of each steady-state success, for the overlap window. */
  const versionSeconds = new Map<string, number[]>();
  /** Per version: [end epoch ms, duration] of each steady-state success. */
  const steady = new Map<string, number[]>();
  /** Per version: durations of the successes new pods served in their cold start, and those pods. */
  const coldDurations = new Map<string, number[]>();
  const coldPods = new Map<string, Set<string>>();
  const coldStartMs = joinContext.coldStartMs ?? DEFAULT_COLD_START_MS;
  const readyAt = new Map<string, number | undefined>();
  const becameReady = (pod: string) => {
    if (!readyAt.has(pod)) readyAt.set(pod, ctx.timeline.becameReadyAt?.(pod));
    return readyAt.get(pod);
  };
  /** When each pod began serving: its first answer at or after it became Ready (the cold start's origin). */
  const firstServed = new Map<string, number>();
  for (const r of ledger.rows()) {
    if (r.outcome !== 'succeeded' && r.outcome !== 'failed') continue;
    if (!r.servedBy || r.startedAt === null) continue;
    const ready = becameReady(r.servedBy);
    const at = ledger.epochMs(r.startedAt);
    if (ready === undefined || at < ready) continue;
    const prev = firstServed.get(r.servedBy);
    if (prev === undefined || at < prev) firstServed.set(r.servedBy, at);
  }
  let succeeded = 0;
  let failed = 0;
  let dropped = 0;
  const byConnection: ByConnection = {
    new: { total: 0, failed: 0 },
    reused: { total: 0, failed: 0 },
    unknown: { total: 0, failed: 0 },
  };
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
    const kindOfConnection = byConnection[r.connectionUse ?? 'unknown'];
    kindOfConnection.total++;
    if (r.outcome !== 'succeeded') kindOfConnection.failed++;
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
        const coldFrom = r.servedBy ? firstServed.get(r.servedBy) : undefined;
        const servedAt = epoch(r.startedAt) ?? scheduled;
        if (coldFrom !== undefined && servedAt >= coldFrom && servedAt < coldFrom + coldStartMs) {
          let c = coldDurations.get(r.appVersion);
          if (!c) {
            coldDurations.set(r.appVersion, (c = []));
            coldPods.set(r.appVersion, new Set());
          }
          c.push(duration);
          coldPods.get(r.appVersion)!.add(r.servedBy!);
          continue;
        }
        let vs = versionSeconds.get(r.appVersion);
        if (!vs) {
          vs = [];
          versionSeconds.set(r.appVersion, vs);
        }
        vs.push(sec, duration);
        let st = steady.get(r.appVersion);
        if (!st) steady.set(r.appVersion, (st = []));
        st.push(ended, duration);
      }
      continue;
    }
    failed++;
    const viaConnection = !r.servedBy && r.localPort ? podOfConnection?.(r.localPort) : undefined;
    const pod = r.servedBy ?? viaConnection ?? null;
    const c = classifyFailure(
      {
        scheduledAt: scheduled,
        startedAt: epoch(r.startedAt),
        endedAt: epoch(r.endedAt),
        status: r.status,
        error: r.error,
        pod,
        version: r.appVersion,
        kind: r.kind,
        createdBy: r.createdBy,
      },
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
      route: routeOf(r.kind, r.name),
      kind: r.kind,
      createdBy: r.createdBy,
      contrast: c.contrast ?? null,
      connection: r.connectionUse,
      connectionAgeMs: r.connectionAgeMs,
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
  const latencyBetween: JoinedLoad['latencyBetween'] = (from, to) => {
    const out: Record<string, { count: number; p50: number; p90: number; p99: number }> = {};
    for (const [v, st] of steady) {
      const list: number[] = [];
      for (let i = 0; i < st.length; i += 2) if (st[i] >= from && st[i] < to) list.push(st[i + 1]);
      const d = Float64Array.from(list).sort();
      if (d.length)
        out[v] = { count: d.length, p50: round(quantile(d, 0.5)), p90: round(quantile(d, 0.9)), p99: round(quantile(d, 0.99)) };
    }
    return out;
  };
  const coldStart: JoinedLoad['coldStart'] = { windowMs: coldStartMs, versions: {} };
  for (const [v, list] of coldDurations) {
    const d = Float64Array.from(list).sort();
    coldStart.versions[v] = {
      count: d.length,
      p50: round(quantile(d, 0.5)),
      p99: round(quantile(d, 0.99)),
      pods: coldPods.get(v)!.size,
    };
  }
  return {
    total: succeeded + failed,
    byConnection,
    coldStart,
    latencyBetween,
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

/** Failures of one cause for one answering version and route. */
export interface FailureCell {
  version: string | null;
  route: string;
  count: number;
}

/**
 * Failures grouped by cause, most frequent first, with up to `examples` each (earliest first) and
 * their counts by answering version × route (most first): the report's failure table.
 */
export function failuresByCause(
  failures: JoinedFailure[],
  examples = 10,
): Array<{ cause: FailureCause; count: number; examples: JoinedFailure[]; breakdown: FailureCell[] }> {
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
    .map(([cause, list]) => ({
      cause,
      count: list.length,
      examples: [...list].sort((a, b) => a.at - b.at).slice(0, examples),
      breakdown: breakdown(list),
    }));
}

function breakdown(list: JoinedFailure[]): FailureCell[] {
  const cells = new Map<string, FailureCell>();
  for (const f of list) {
    const key = `${f.version ?? ''}\n${f.route}`;
    const c = cells.get(key);
    if (c) c.count++;
    else cells.set(key, { version: f.version, route: f.route, count: 1 });
  }
  return [...cells.values()].sort(
    (a, b) => b.count - a.count || (a.version ?? '').localeCompare(b.version ?? '') || a.route.localeCompare(b.route),
  );
}
