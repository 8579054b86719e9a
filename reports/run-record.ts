/**
 * `verdict.json`, schema `verdict/v1`: what one run of any verdict-giving command (verify-local,
 * experiment, smoke, probes, gate) decided and on what evidence. Every renderer (JSON, JUnit,
 * Markdown summary, HTML) reads only this record plus the run's ledger, so a CI artifact can be
 * re-rendered anywhere (`verdict report <run-dir>`). The JSON Schema beside it
 * (`reports/schema/verdict-v1.schema.json`) is the contract; tests validate every produced file.
 *
 * Times are ISO-8601 strings in records and epoch milliseconds in series and timelines.
 */
import { worst, type Verdict } from '../lib/verdict.ts';
import type { FailureCause } from '../lib/evidence/causes.ts';
import type { ByConnection, FailureCell, JoinedFailure, SecondOfEvidence } from '../lib/evidence/join.ts';
import type { TimelineEvent } from '../lib/evidence/timeline.ts';

export const RUN_RECORD_SCHEMA = 'verdict/v1';

export interface RunRecord {
  schema: typeof RUN_RECORD_SCHEMA;
  /** The command that produced the run: `verify-local`, `experiment`, `smoke`, `probes`, `gate`. */
  command: string;
  /** The worst verdict of the checks (and ERROR when the run itself broke before judging). */
  verdict: Verdict;
  /** One line that says why, e.g. "FAIL: 12 of 41,230 requests failed in pod-kill". */
  headline: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  target: TargetRecord;
  app: AppRecord | null;
  harness: { version: string; node: string; host: string };
  /** An experiment or a suite each. */
  checks: CheckRecord[];
  /** A run-level error (the run broke before or outside any check), or null. */
  error: string | null;
  /** Optional: go-aheads given by a person (an approved plan, an overridden deploy window), with who and why. */
  approvals?: ApprovalRecord[];
  /** Files of the run directory, relative to it. */
  files: { ledger: string | null };
}

export interface ApprovalRecord {
  /** What was approved: a plan's high-risk changes, or a deploy outside its window. */
  what: 'plan-risk' | 'deploy-window';
  /** Who: `--approved-by`, or $GITHUB_ACTOR / $USER for a window override. */
  by: string;
  reason: string | null;
  at: string;
  /** E.g. the window that was closed and when it opens next. */
  detail?: string | null;
}

export interface TargetRecord {
  /** `embedded`, `kind`, `existing` (a kubeconfig context), `url` (a service URL only) or `plan` (an OpenTofu plan). */
  kind: 'embedded' | 'kind' | 'existing' | 'url' | 'plan';
  name: string;
  context: string | null;
  /** The apiserver's gitVersion, when a cluster was reached. */
  serverVersion: string | null;
  /** The Service URL the load and checks used. */
  url: string | null;
  /** Modelled endpoint-propagation lag of the embedded Service proxy, ms (null elsewhere). */
  endpointLagMs: number | null;
}

export interface AppRecord {
  name: string;
  /** Versions involved, e.g. {from: 'v1', to: 'v2'} or {expected: 'v1.0.42-abc1234'}. */
  versions: Record<string, string>;
  /** Deliberate faults switched on for this run (detector demonstrations), empty for a real verdict. */
  faults: string[];
}

export interface CheckRecord {
  name: string;
  kind: 'experiment' | 'suite' | 'probe' | 'gate' | 'plan';
  verdict: Verdict;
  /** What the check does, one sentence. */
  description: string;
  startedAt: string;
  endedAt: string;
  /** The check broke (an exception, a lost cluster): its verdict is ERROR and this says why. */
  error: string | null;
  gates: GateRecord[];
  /** Requests judged by this check (null when it sent none, e.g. a manifest lint). */
  requests: RequestCounts | null;
  /** Failed requests grouped by cause, most frequent first. */
  failures: FailureGroup[];
  /** Latency of judged requests, ms (null without requests). */
  latency: { p50: number; p90: number; p99: number; max: number } | null;
  /** One entry per second of load (empty without load). */
  series: SecondOfEvidence[];
  /** Pod, endpoint, node, event and chaos markers. */
  timeline: TimelineEvent[];
  /** Label of this check's rows in the ledger (`check` field of each ledger line), or null. */
  ledgerLabel: string | null;
  /**
   * An experiment's figures for the run history (reports/history.ts): `failed_requests`,
   * `p99_ms.<version>`, `drain_s_max`, and its own (`rollout_s`, `no_ready_endpoint_s.<dependency>`).
   */
  figures?: Record<string, number>;
  /** Replicas of the release under test (a history key), null when unknown. */
  replicas?: number | null;
}

export interface GateRecord {
  name: string;
  verdict: Verdict;
  /** One sentence: what was observed against what was required. */
  evidence: string;
  observed: Record<string, number | string | boolean | null>;
}

export interface RequestCounts {
  /** Requests that ended and were judged (succeeded + failed). */
  total: number;
  succeeded: number;
  failed: number;
  /** Arrivals the load engine could not start on time (open model): not sent, never judged. */
  dropped: number;
  /** Answers per app version (X-App-Version or the app's equivalent). */
  byVersion: Record<string, number>;
  /**
   * Requests and failures by the connection they went out on: new (opened for it) or reused (kept
   * alive), as disruption monitors sample the two apart (absent in records before it existed).
   */
  byConnection?: ByConnection;
}

/** The fixed list of causes a failed request is given (exactly one each), and their registry: see lib/evidence/causes.ts. */
export { CAUSES, FAILURE_CAUSES, type FailureCause } from '../lib/evidence/causes.ts';
export type { ByConnection, FailureCell } from '../lib/evidence/join.ts';

export interface FailureGroup {
  cause: FailureCause;
  count: number;
  /** Up to 10 examples, earliest first. */
  examples: FailureExample[];
  /** The failures of this cause by answering version × route, most first (absent in records before it existed). */
  breakdown?: FailureCell[];
}

/** Fields of a failure example that records written before them lack. */
type LaterExampleFields = 'route' | 'kind' | 'createdBy' | 'contrast' | 'connection' | 'connectionAgeMs';

/**
 * A failed request as the evidence layer joined it (lib/evidence/join.ts: when, which step, what
 * came back, the pod and how it was known, the request's kind and route, who created the resource
 * it used, another version's answer to the same kind, the rule's reason), with the pod's last
 * timeline events at or before it.
 */
export type FailureExample = Omit<JoinedFailure, 'row' | 'cause' | LaterExampleFields> &
  Partial<Pick<JoinedFailure, LaterExampleFields>> & { podHistory: TimelineEvent[] };

/**
 * One second of load: requests that ended in it, failures by cause, p50/p99 latency (ms, null when
 * none ended), answers per app version; and the pod, endpoint, node, event, chaos and phase markers, and the watch gaps.
 * Both are the evidence layer's own types (lib/evidence), recorded as they are.
 */
export type { SecondOfEvidence as SecondRecord } from '../lib/evidence/join.ts';
export type { TimelineEvent as TimelineRecord } from '../lib/evidence/timeline.ts';

/**
 * A check that sent no load of its own (a measurement, a manifest lint, a gate's query): no requests,
 * failures, latency or seconds of load; its verdict the worst of its gates (none at all: INCONCLUSIVE).
 */
export function checkWithoutLoad(o: {
  name: string;
  kind: CheckRecord['kind'];
  description: string;
  startedAt: number;
  gates: GateRecord[];
  timeline?: TimelineEvent[];
}): CheckRecord {
  return {
    name: o.name,
    kind: o.kind,
    verdict: worst(o.gates.map((g) => g.verdict)),
    description: o.description,
    startedAt: new Date(o.startedAt).toISOString(),
    endedAt: new Date().toISOString(),
    error: null,
    gates: o.gates,
    requests: null,
    failures: [],
    latency: null,
    series: [],
    timeline: o.timeline ?? [],
    ledgerLabel: null,
  };
}
