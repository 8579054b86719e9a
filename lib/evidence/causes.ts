/**
 * Why a request failed: exactly one cause from a fixed list, decided by joining the request (when it
 * started and ended, what came back, which pod and version served or dropped it, what kind of
 * request it was and who created the resource it used) with the watched timeline and with what the
 * other versions answered in the same run. The rules are tried in order and the first that matches
 * decides; each says why in words, so a reader can check the classification against the timeline.
 *
 * {@link CAUSE_RULES} is the one registry of causes: each has its name, its rule (its place in the
 * list is its order), a description and a colour. The schema's enum (reports/schema), the HTML
 * report's legend and colours and the docs come from it (or are checked against it by a test), so a
 * new cause is one entry here.
 *
 * For failures without a response the pod is known only from the Service proxy's connection
 * records (embedded target). Where it is not known, the no-answer rules look for a pod that was
 * terminating at that moment and name the candidates; with none, the cause is unknown.
 */
import type { Creator } from '../load/ledger.ts';

export type { Creator };

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
  /** The app version that answered (its version header), null without an answer or header. */
  version?: string | null;
  /** The request's kind (`POST /api/v1/licenses/heartbeat {session_id:string}`), null when not recorded. */
  kind?: string | null;
  /** Who created the resource the request used (the load's tag), null when untagged. */
  createdBy?: Creator | null;
}

/** What the rules may ask of the timeline (a ClusterTimeline satisfies it). */
export interface TimelineView {
  podAt(pod: string, t: number): { exists: boolean; ready: boolean; terminating: boolean; restarts?: number } | undefined;
  terminatingSince(pod: string): number | undefined;
  endpointAt(pod: string, t: number): { listed: boolean; ready: boolean } | undefined;
  endpointGoneSince(pod: string, t: number): number | undefined;
  podNames(): string[];
  /** When the pod was seen turning Ready the first time (its cold start begins), when the view knows it. */
  becameReadyAt?(pod: string): number | undefined;
}

/** An answer a version gave that counts as accepting a request (the earliest of its kind). */
export interface AcceptedAnswer {
  version: string;
  pod: string | null;
  /** Epoch ms the request was scheduled. */
  at: number;
  status: number;
}

/** What every version answered, per request kind, over the whole run (the join counts it first). */
export interface KindAnswers {
  /** Requests of `kind` that `version` accepted (succeeded). */
  accepted(kind: string, version: string): number;
  /** Requests of `kind` that `version` refused with a 4xx. */
  refused(kind: string, version: string): number;
  /** The version other than `version` that accepted `kind` most, with its count and earliest accepted answer. */
  acceptedElsewhere(kind: string, version: string): { count: number; example: AcceptedAnswer } | null;
}

export interface Outage {
  dependency: string;
  from: number;
  /** When the dependency was back (null while still out at the end of the run). */
  to: number | null;
}

/**
 * A spell in which the cluster's control plane was away (control-plane-outage): nothing could change
 * the EndpointSlices, so the data plane kept routing by the last ones, to pods whatever became of
 * them, until its watches found the control plane again.
 */
export interface ControlPlaneAway {
  from: number;
  /** When the control plane was back (null while still away at the end of the run). */
  to: number | null;
  /**
   * How long after `to` the data plane may still route by the frozen endpoints (ms): its watches'
   * retry after the outage (client-go's reflector back-off, up to 60 s), the kubelet's status sync
   * and the endpoint lag. A failure then is still the outage's.
   */
  staleForMs: number;
}

/**
 * A rotation of the credentials the load sends, made by the harness (a signing key rotated under
 * load): from its first step until it was done, every token the load sent was valid when issued.
 */
export interface CredentialRotation {
  /** In words, e.g. `signing key k1 → k2`. */
  what: string;
  from: number;
  /** When it was done (null while still under way at the end of the run). */
  to: number | null;
}

export interface CauseContext {
  timeline: TimelineView;
  outages?: Outage[];
  /** When the control plane was away (the endpoints frozen). */
  controlPlaneAway?: ControlPlaneAway[];
  /** Credential rotations the harness made: a 401 meanwhile is a valid token refused. */
  credentialRotations?: CredentialRotation[];
  /** Time allowed after an outage for the service to recover before failures are its own (ms). */
  recoveryAllowanceMs?: number;
  /**
   * How long the data plane may still route to an endpoint after the EndpointSlice withdrew it:
   * the embedded proxy's modelled lag, or kube-proxy's sync period on a real cluster (ms).
   */
  endpointLagMs?: number;
  /** What each version answered per request kind in this run (for the rules that compare versions). */
  answers?: KindAnswers;
  /** Statuses that mean "no such resource" for a tagged request (the app profile's; default 404 and 410). */
  unknownResourceStatuses?: readonly number[];
  /** What the app calls its resources, for the reasons ("session"); default "resource". */
  resourceName?: string;
}

/** What a rule that matched says. */
export interface RuleMatch {
  reason: string;
  /** The pod the rules blamed when the request itself did not name one (a terminating candidate). */
  inferredPod?: string;
  /** The other side of a version comparison: an answer of another version that accepted the same kind. */
  contrast?: AcceptedAnswer;
}

export interface Classified extends RuleMatch {
  cause: FailureCause;
}

/** What every rule sees: the request, the context and what was worked out once for all rules. */
export interface Facts {
  f: FailedRequest;
  ctx: CauseContext;
  begin: number;
  end: number;
  lag: number;
  timedOut: boolean;
  /** No response arrived (a reset, a refusal, a close, a timeout). */
  noResponse: boolean;
  /** The request's pod, or the only terminating candidate for a request without an answer. */
  pod: string | null;
  /** Pods terminating then (for a request without an answer and without a pod). */
  candidates: string[];
  /** Set when the pod was inferred. */
  inferred: { inferredPod?: string };
  /** The pod in words for the reasons. */
  who: string;
}

/** One cause: its name, description, colour (the report's legend) and rule. */
export interface CauseDefinition<N extends string = string> {
  name: N;
  /** One sentence: when a failure gets this cause. */
  description: string;
  /** The colour of the cause in charts and the legend, `#rrggbb`. */
  colour: `#${string}`;
  /** Why the request failed for this cause, or null when the rule does not match. */
  rule(x: Facts): RuleMatch | null;
}

const NO_RESPONSE = new Set(['conn_refused', 'conn_reset', 'other_side_closed', 'connect_timeout', 'other']);
const TIMEOUT = new Set(['timeout']);
const DEFAULT_UNKNOWN_RESOURCE = [404, 410];

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const utc = (ms: number) => new Date(ms).toISOString().slice(11, 23);
const is4xx = (status: number) => status >= 400 && status < 500;
const int = (n: number) => n.toLocaleString('en-US');

function describe(f: FailedRequest): string {
  return f.status ? `HTTP ${f.status}${f.error ? ` (${f.error})` : ''}` : `no answer (${f.error ?? 'closed'})`;
}
const versionOf = (f: FailedRequest) => (f.version ? ` (${f.version})` : '');
const side = (version: string | null, pod: string | null) =>
  [version, pod ? `pod ${pod}` : null].filter(Boolean).join(', ') || 'an unknown pod';

/** The pod was terminating, for a request without an answer: which of rules 3-5 applies (or none). */
function noAnswerOnTerminating(x: Facts): { since: number; subject: string } | null {
  if (!x.noResponse || (!x.pod && !x.candidates.length)) return null;
  const subject = x.pod ?? x.candidates[0];
  const since = x.ctx.timeline.terminatingSince(subject);
  return since === undefined ? null : { since, subject };
}

/** The pod's state when the request reached it (for answered requests, or a known pod). */
function podState(x: Facts) {
  if (!x.pod) return undefined;
  return x.ctx.timeline.podAt(x.pod, x.begin) ?? x.ctx.timeline.podAt(x.pod, x.end);
}

/**
 * The causes, in rule order: the first rule that matches decides. `unknown` is last and always
 * matches. (Adding a cause: one entry here, at the place its rule belongs; the schema test names
 * the enum to update.)
 */
export const CAUSE_RULES = [
  {
    name: 'dependency-outage',
    description: 'the request ended inside a dependency outage (or its recovery allowance)',
    colour: '#0b7285',
    rule: ({ end, ctx }) => {
      const allowance = ctx.recoveryAllowanceMs ?? 0;
      for (const o of ctx.outages ?? []) {
        const until = o.to === null ? Infinity : o.to + allowance;
        if (end >= o.from && end <= until) {
          const when =
            o.to !== null && end > o.to
              ? `${secs(end - o.to)} after it came back (allowance ${secs(allowance)})`
              : 'during its outage';
          return { reason: `ended ${when}: ${o.dependency}` };
        }
      }
      return null;
    },
  },
  {
    name: 'endpoints-frozen',
    description:
      'while the control plane was away (or before the data plane caught up after it) the endpoints could not change, so the Service still sent the request to a pod that could not serve it: no answer, or a 5xx from a pod whose containers restarted meanwhile (starting again, not ready)',
    colour: '#5c7cfa',
    rule: (x) => {
      if (x.timedOut || (!x.noResponse && x.f.status < 500)) return null;
      for (const w of x.ctx.controlPlaneAway ?? []) {
        const until = w.to === null ? Infinity : w.to + w.staleForMs;
        if (x.begin < w.from || x.begin > until) continue;
        const pod = x.pod ?? x.candidates[0];
        const before = pod ? x.ctx.timeline.podAt(pod, w.from) : undefined;
        const after = pod ? x.ctx.timeline.podAt(pod, until === Infinity ? Number.MAX_SAFE_INTEGER : until) : undefined;
        const restarts =
          before?.restarts !== undefined && after?.restarts !== undefined ? Math.max(0, after.restarts - before.restarts) : 0;
        // An answer is the outage's only when its pod was restarting meanwhile; else it is the app's own 5xx.
        if (!x.noResponse && !restarts) return null;
        const when =
          w.to !== null && x.begin > w.to
            ? `${secs(x.begin - w.to)} after the control plane was back, before the data plane had caught up (allowed ${secs(w.staleForMs)})`
            : `${secs(x.begin - w.from)} into the control-plane outage`;
        const what = x.noResponse ? `which gave no answer (${x.f.error ?? 'closed'})` : `which answered ${describe(x.f)}`;
        const restarted = restarts
          ? `; its containers restarted ${restarts === 1 ? 'once' : `${restarts} times`} meanwhile (seen once the API was back)`
          : '';
        return {
          reason: `sent ${when}: the endpoints could not change, so the Service still routed to ${x.who}, ${what}${restarted}`,
          ...x.inferred,
        };
      }
      return null;
    },
  },
  {
    name: 'timeout',
    description:
      "no complete answer within the client's timeout, from a pod that was neither terminating nor gone (those are the no-answer rules' business: a connection to a vanished pod hangs until the client gives up)",
    colour: '#343a40',
    rule: ({ f, ctx, end, timedOut }) => {
      if (!timedOut) return null;
      const since = f.pod ? ctx.timeline.terminatingSince(f.pod) : undefined;
      if (since !== undefined && since <= end) return null;
      return { reason: `no complete answer within the client's timeout${f.pod ? ` (pod ${f.pod})` : ''}` };
    },
  },
  {
    name: 'reset-during-drain',
    description: 'no answer: it was in flight when its pod began terminating',
    colour: '#7048e8',
    rule: (x) => {
      const t = noAnswerOnTerminating(x);
      if (!t || !(x.begin < t.since && x.end >= t.since)) return null;
      return {
        reason: `in flight when ${x.who} began terminating (${secs(t.since - x.begin)} after the request started); no answer (${x.f.error ?? 'closed'})`,
        ...x.inferred,
      };
    },
  },
  {
    name: 'endpoint-not-yet-removed',
    description:
      "no answer: sent to a terminating pod whose endpoint was still routed (listed ready, or removed less than the data plane's lag before)",
    colour: '#d6336c',
    rule: (x) => {
      const t = noAnswerOnTerminating(x);
      if (!t || x.begin < t.since) return null;
      const ep = x.ctx.timeline.endpointAt(t.subject, x.begin);
      const goneSince = x.ctx.timeline.endpointGoneSince(t.subject, x.begin);
      const listed = ep?.listed && ep.ready;
      if (!listed && !(goneSince !== undefined && x.begin - goneSince < x.lag)) return null;
      const how = listed
        ? 'its endpoint was still listed ready'
        : `its endpoint had been withdrawn only ${secs(x.begin - goneSince!)} before (data-plane lag ${secs(x.lag)})`;
      return {
        reason: `sent ${secs(x.begin - t.since)} after ${x.who} began terminating; ${how}; no answer (${x.f.error ?? 'closed'})`,
        ...x.inferred,
      };
    },
  },
  {
    name: 'state-not-shared',
    description:
      'a resource (a session) created through one version or pod, answered as unknown (404/410) by another: state the versions or pods do not share',
    colour: '#5f3dc4',
    rule: ({ f, ctx, pod }) => {
      const by = f.createdBy;
      const unknown = ctx.unknownResourceStatuses ?? DEFAULT_UNKNOWN_RESOURCE;
      if (!by || !unknown.includes(f.status) || (!f.version && !pod)) return null;
      const otherVersion = by.version !== null && f.version != null && by.version !== f.version;
      const otherPod = by.pod !== null && pod !== null && by.pod !== pod;
      if (!otherVersion && !otherPod) return null;
      // A version that never accepted this kind of request at all broke the contract, not the state.
      const acceptedByAnswerer = f.kind && f.version && ctx.answers ? ctx.answers.accepted(f.kind, f.version) : null;
      if (acceptedByAnswerer === 0) return null;
      const what = ctx.resourceName ?? 'resource';
      return {
        reason:
          `a ${what} created by ${side(by.version, by.pod)} is unknown to ${side(f.version ?? null, pod)}: HTTP ${f.status}` +
          (acceptedByAnswerer
            ? `; ${f.version} accepted ${int(acceptedByAnswerer)} requests of this kind (for ${what}s it knows)`
            : ''),
      };
    },
  },
  {
    name: 'token-refused-during-rotation',
    description:
      'a 401 while the harness rotated the signing key, for a token it had issued valid and sent before it expired: the release refused a key its issuer had published',
    colour: '#ae3ec9',
    rule: ({ f, ctx, begin, end, pod, who }) => {
      if (f.status !== 401) return null;
      const r = (ctx.credentialRotations ?? []).find((x) => end >= x.from && (x.to === null || begin <= x.to));
      if (!r) return null;
      return {
        reason:
          `HTTP 401 from ${pod ? who : 'the app'}${versionOf(f)} ${secs(end - r.from)} into the rotation (${r.what}): ` +
          'a token the harness issued valid, sent before its expiry, was refused',
      };
    },
  },
  {
    name: 'contract-break',
    description:
      'a kind of request (method, route, body shape) that one version accepted and the other refused with a 4xx, every time: an incompatible API change',
    colour: '#e64980',
    rule: ({ f, ctx, pod }) => {
      if (!is4xx(f.status) || !f.kind || !f.version || !ctx.answers) return null;
      if (ctx.answers.accepted(f.kind, f.version) > 0) return null;
      const other = ctx.answers.acceptedElsewhere(f.kind, f.version);
      if (!other) return null;
      const e = other.example;
      const refused = ctx.answers.refused(f.kind, f.version);
      return {
        reason:
          `${f.kind}: ${e.version} accepted ${int(other.count)} (e.g. HTTP ${e.status} from ${side(e.version, e.pod)} at ${utc(e.at)} UTC), ` +
          `${f.version} accepted none and refused ${int(refused)} with a 4xx (this one HTTP ${f.status} from ${side(f.version, pod)})`,
        contrast: e,
      };
    },
  },
  {
    name: 'terminating-pod',
    description:
      'sent to a pod that was terminating or gone, after its endpoint was withdrawn (a pinned keep-alive connection, a late answer, a 5xx while shutting down)',
    colour: '#e8590c',
    rule: (x) => {
      const t = noAnswerOnTerminating(x);
      if (t && x.begin >= t.since) {
        return {
          reason: `sent ${secs(x.begin - t.since)} after ${x.who} began terminating, after its endpoint was withdrawn (a kept-alive connection?); no answer (${x.f.error ?? 'closed'})`,
          ...x.inferred,
        };
      }
      const state = podState(x);
      if (state?.terminating || (state && !state.exists))
        return { reason: `${x.who} was ${state.exists ? 'terminating' : 'gone'}; ${describe(x.f)}` };
      return null;
    },
  },
  {
    name: 'pod-not-ready',
    description: 'the pod was not Ready (starting, restarting, failing its readiness)',
    colour: '#f59f00',
    rule: (x) => {
      const state = podState(x);
      return state && !state.ready ? { reason: `${x.who} was not Ready; ${describe(x.f)}`, ...x.inferred } : null;
    },
  },
  {
    name: 'application-5xx',
    description: 'a 5xx from a pod that was Ready and not terminating',
    colour: '#c92a2a',
    rule: (x) => {
      if (!x.pod || x.f.status < 500) return null;
      return podState(x)
        ? { reason: `HTTP ${x.f.status} from ${x.who}, which was Ready and not terminating` }
        : { reason: `HTTP ${x.f.status} from ${x.who} (not on the timeline: another workload's pod?)` };
    },
  },
  {
    name: 'application-4xx',
    description:
      'a 4xx the application answered (a pod or version named it) that no version comparison explains: the load and the app disagree',
    colour: '#fd7e14',
    rule: ({ f, pod, who }) => {
      if (!is4xx(f.status) || (!pod && !f.version)) return null;
      return { reason: `HTTP ${f.status} from ${pod ? who : 'the app'}${versionOf(f)}${f.kind ? ` to ${f.kind}` : ''}` };
    },
  },
  {
    name: 'unknown',
    description: 'no rule explains it; the reason says what was known',
    colour: '#adb5bd',
    rule: ({ f, who }) => ({
      reason: `${describe(f)} from ${who}${f.status >= 500 && !f.pod ? ' (no pod header: a proxy or load balancer answered?)' : ''}`,
    }),
  },
] as const satisfies readonly CauseDefinition[];

export type FailureCause = (typeof CAUSE_RULES)[number]['name'];

/** The causes in rule order (names only). */
export const FAILURE_CAUSES = CAUSE_RULES.map((c) => c.name) as readonly FailureCause[];

/** The registry as data (name, rule order from 1, description, colour): for the schema, the report's legend and the docs. */
export const CAUSES: ReadonlyArray<{ name: FailureCause; rule: number; description: string; colour: string }> = CAUSE_RULES.map(
  (c, i) => ({ name: c.name, rule: i + 1, description: c.description, colour: c.colour }),
);

export function classifyFailure(f: FailedRequest, ctx: CauseContext): Classified {
  const end = f.endedAt ?? f.scheduledAt;
  const begin = f.startedAt ?? f.scheduledAt;
  const lag = ctx.endpointLagMs ?? 0;
  const timedOut = f.error !== null && TIMEOUT.has(f.error);
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
  const facts: Facts = { f, ctx, begin, end, lag, timedOut, noResponse, pod, candidates, inferred, who };
  for (const c of CAUSE_RULES as readonly CauseDefinition<FailureCause>[]) {
    const m = c.rule(facts);
    if (m) return { cause: c.name, ...m };
  }
  throw new Error('unreachable: the unknown rule always matches');
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
