/**
 * Why a request failed: exactly one cause from a fixed list, decided by joining the request (when it
 * started and ended, what came back, which pod served or dropped it) with the watched timeline.
 * The rules are tried in order and the first that matches decides; each says why in words, so a
 * reader can check the classification against the timeline.
 *
 *  1. dependency-outage         the request ended inside a dependency outage (or its recovery allowance)
 *  2. timeout                   no complete answer within the client's timeout (unless its pod was
 *                               terminating or gone when it was sent: then rules 3-5 explain it, as
 *                               a connection to a vanished pod hangs until the client gives up)
 *  3. reset-during-drain        no answer: it was in flight when its pod began terminating
 *  4. endpoint-not-yet-removed  no answer: sent to a terminating pod whose endpoint was still routed
 *                               (listed ready, or removed less than the data plane's lag before)
 *  5. terminating-pod           sent to a pod that was terminating, after its endpoint was withdrawn
 *                               (a pinned keep-alive connection, a late answer, a 5xx while shutting down)
 *  6. pod-not-ready             the pod was not Ready (starting, restarting, failing its readiness)
 *  7. application-5xx           a 5xx from a pod that was Ready and not terminating
 *  8. unknown                   everything else, with what was known
 *
 * For failures without a response the pod is known only from the Service proxy's connection
 * records (embedded target). Where it is not known, rules 3-5 look for a pod that was terminating
 * at that moment and name the candidates; with none, the cause is unknown.
 */
export const FAILURE_CAUSES = [
  'terminating-pod',
  'endpoint-not-yet-removed',
  'pod-not-ready',
  'reset-during-drain',
  'application-5xx',
  'timeout',
  'dependency-outage',
  'unknown',
] as const;
export type FailureCause = (typeof FAILURE_CAUSES)[number];

/** A failed request as the join sees it (times in epoch ms). */
export interface FailedRequest {
  scheduledAt: number;
  /** When the request was written to a connection (null when it never was). */
  startedAt: number | null;
  /** When it ended (null for one that never ended: treated as ending at the run's end). */
  endedAt: number | null;
  /** HTTP status, 0 when no response arrived. */
  status: number;
  /** The load engine's error class (`conn_reset`, `timeout`, `http_5xx`, ...). */
  error: string | null;
  pod: string | null;
}

/** What the rules may ask of the timeline (a ClusterTimeline satisfies it). */
export interface TimelineView {
  podAt(pod: string, t: number): { exists: boolean; ready: boolean; terminating: boolean } | undefined;
  terminatingSince(pod: string): number | undefined;
  endpointAt(pod: string, t: number): { listed: boolean; ready: boolean } | undefined;
  endpointGoneSince(pod: string, t: number): number | undefined;
  podNames(): string[];
}

export interface Outage {
  dependency: string;
  from: number;
  /** When the dependency was back (null while still out at the end of the run). */
  to: number | null;
}

export interface CauseContext {
  timeline: TimelineView;
  outages?: Outage[];
  /** Time allowed after an outage for the service to recover before failures are its own (ms). */
  recoveryAllowanceMs?: number;
  /**
   * How long the data plane may still route to an endpoint after the EndpointSlice withdrew it:
   * the embedded proxy's modelled lag, or kube-proxy's sync period on a real cluster (ms).
   */
  endpointLagMs?: number;
}

export interface Classified {
  cause: FailureCause;
  reason: string;
  /** The pod the rules blamed when the request itself did not name one (a terminating candidate). */
  inferredPod?: string;
}

const NO_RESPONSE = new Set(['conn_refused', 'conn_reset', 'other_side_closed', 'connect_timeout', 'other']);
const TIMEOUT = new Set(['timeout']);

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export function classifyFailure(f: FailedRequest, ctx: CauseContext): Classified {
  const end = f.endedAt ?? f.scheduledAt;
  const begin = f.startedAt ?? f.scheduledAt;
  const lag = ctx.endpointLagMs ?? 0;

  // 1. A dependency was out (or had just come back) when the request ended.
  const allowance = ctx.recoveryAllowanceMs ?? 0;
  for (const o of ctx.outages ?? []) {
    const until = o.to === null ? Infinity : o.to + allowance;
    if (end >= o.from && end <= until) {
      const when =
        o.to !== null && end > o.to
          ? `${secs(end - o.to)} after it came back (allowance ${secs(allowance)})`
          : 'during its outage';
      return { cause: 'dependency-outage', reason: `ended ${when}: ${o.dependency}` };
    }
  }

  // 2. The client gave up waiting, on a pod that was neither terminating nor gone when it was sent.
  const timedOut = f.error !== null && TIMEOUT.has(f.error);
  if (timedOut) {
    const since = f.pod ? ctx.timeline.terminatingSince(f.pod) : undefined;
    if (since === undefined || since > end) {
      return { cause: 'timeout', reason: `no complete answer within the client's timeout${f.pod ? ` (pod ${f.pod})` : ''}` };
    }
  }

  const noResponse = f.status === 0 && (f.error === null || timedOut || NO_RESPONSE.has(f.error));
  const candidates = f.pod ? [f.pod] : noResponse ? terminatingCandidates(ctx.timeline, begin, end, lag) : [];
  const pod = candidates.length === 1 ? candidates[0] : f.pod;
  const inferred = !f.pod && pod ? { inferredPod: pod } : {};
  const who = f.pod
    ? `pod ${f.pod}`
    : pod
      ? `pod ${pod} (the only pod terminating then; the request names none)`
      : candidates.length
        ? `one of ${candidates.join(', ')} (terminating then)`
        : 'no known pod';

  if (noResponse && (pod || candidates.length)) {
    const subject = pod ?? candidates[0];
    const since = ctx.timeline.terminatingSince(subject);
    // 3. In flight when its pod began terminating: the pod closed the connection under it.
    if (since !== undefined && begin < since && end >= since) {
      return {
        cause: 'reset-during-drain',
        reason: `in flight when ${who} began terminating (${secs(since - begin)} after the request started); no answer (${f.error ?? 'closed'})`,
        ...inferred,
      };
    }
    if (since !== undefined && begin >= since) {
      // 4. Routed to a terminating pod while its endpoint was still in the data plane.
      const ep = ctx.timeline.endpointAt(subject, begin);
      const goneSince = ctx.timeline.endpointGoneSince(subject, begin);
      const routed = (ep?.listed && ep.ready) || (goneSince !== undefined && begin - goneSince < lag);
      if (routed) {
        const how =
          ep?.listed && ep.ready
            ? 'its endpoint was still listed ready'
            : `its endpoint had been withdrawn only ${secs(begin - goneSince!)} before (data-plane lag ${secs(lag)})`;
        return {
          cause: 'endpoint-not-yet-removed',
          reason: `sent ${secs(begin - since)} after ${who} began terminating; ${how}; no answer (${f.error ?? 'closed'})`,
          ...inferred,
        };
      }
      // 5. Terminating and withdrawn, yet the request still went there.
      return {
        cause: 'terminating-pod',
        reason: `sent ${secs(begin - since)} after ${who} began terminating, after its endpoint was withdrawn (a kept-alive connection?); no answer (${f.error ?? 'closed'})`,
        ...inferred,
      };
    }
  }

  if (pod) {
    const state = ctx.timeline.podAt(pod, begin) ?? ctx.timeline.podAt(pod, end);
    if (state?.terminating || (state && !state.exists)) {
      return { cause: 'terminating-pod', reason: `${who} was ${state.exists ? 'terminating' : 'gone'}; ${describe(f)}` };
    }
    // 6. The pod was not ready when the request reached it.
    if (state && !state.ready) {
      return { cause: 'pod-not-ready', reason: `${who} was not Ready; ${describe(f)}`, ...inferred };
    }
    // 7. The application's own error, from a ready pod.
    if (f.status >= 500 && state) {
      return { cause: 'application-5xx', reason: `HTTP ${f.status} from ${who}, which was Ready and not terminating` };
    }
    if (f.status >= 500) {
      return { cause: 'application-5xx', reason: `HTTP ${f.status} from ${who} (not on the timeline: another workload's pod?)` };
    }
  }
  // 8. What is left, with what is known.
  return {
    cause: 'unknown',
    reason: `${describe(f)} from ${who}${f.status >= 500 && !f.pod ? ' (no pod header: a proxy or load balancer answered?)' : ''}`,
  };
}

function describe(f: FailedRequest): string {
  return f.status ? `HTTP ${f.status}${f.error ? ` (${f.error})` : ''}` : `no answer (${f.error ?? 'closed'})`;
}

/**
 * Pods that could have dropped a request with no response between `begin` and `end`: those
 * terminating at some point of it, or whose endpoint had been withdrawn within the data-plane lag.
 */
function terminatingCandidates(t: TimelineView, begin: number, end: number, lag: number): string[] {
  const out: string[] = [];
  for (const p of t.podNames()) {
    const since = t.terminatingSince(p);
    if (since === undefined || since > end) continue;
    const ep = t.endpointAt(p, begin);
    const gone = t.endpointGoneSince(p, begin);
    const routed = (ep?.listed && ep.ready) || (gone !== undefined && begin - gone < lag);
    if (t.podAt(p, begin)?.exists || routed) out.push(p);
  }
  return out;
}
