/**
 * Synthetic runs for the report tests, the screenshot and the bench: a RunRecord and its ledger
 * lines, made by one deterministic model so that the record's counts, series and failure groups are
 * exactly what the ledger says (anyone can recompute them, as with a real run).
 *
 * The model: requests arrive at a constant rate and are spread over the pods that are in the
 * Service's endpoints at that moment; fault windows make some of them fail with a given cause; the
 * latency is 2 ms plus an exponential tail. Every random draw is a hash of (seed, row, draw), so the
 * ledger can be generated twice (once for the aggregates, once for the file) without storing it.
 */
import { worst, type Verdict } from '../../lib/verdict.ts';
import { errorRateGate } from '../gates.ts';
import {
  FAILURE_CAUSES,
  RUN_RECORD_SCHEMA,
  type CheckRecord,
  type FailureCause,
  type FailureExample,
  type FailureGroup,
  type GateRecord,
  type RunRecord,
  type SecondRecord,
  type TimelineRecord,
} from '../run-record.ts';

export interface SyntheticRun {
  record: RunRecord;
  /** The ledger lines (a fresh iterator each call), or null for a run without a ledger. */
  ledgerLines: (() => Iterable<string>) | null;
}

export interface PodSpec {
  name: string;
  version: string;
  /** Seconds from the start of the load when the pod enters / leaves the Service's endpoints. */
  inFrom: number;
  inUntil: number;
}

export interface FaultWindow {
  /** Seconds from the start of the load. */
  from: number;
  until: number;
  /** Only requests sent to this pod (null: any pod). */
  pod: string | null;
  cause: FailureCause;
  /** Probability that a request in the window fails this way. */
  probability: number;
}

export interface CheckSpec {
  name: string;
  kind?: CheckRecord['kind'];
  description: string;
  /** Epoch ms when the load starts. */
  startMs: number;
  rate: number;
  durationS: number;
  steps: string[];
  pods: PodSpec[];
  faults: FaultWindow[];
  timeline: TimelineRecord[];
  /** Median latency, ms (the tail follows from it). */
  p50Ms?: number;
  /** Share of arrivals the engine could not start (open model). */
  droppedShare?: number;
  ledgerLabel: string;
  seed?: number;
  /** Gates judged on the counts; default: "no failed request" and "load as planned". */
  gates?: (c: CheckRecord) => GateRecord[];
}

// ------------------------------------------------------------------ deterministic randomness

function hash32(a: number, b: number, c: number): number {
  let h = (a ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (b + 0x7f4a7c15), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13) ^ (c * 0x27d4eb2f), 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
const uniform = (seed: number, row: number, draw: number) => hash32(seed, row, draw) / 4294967296;

// ------------------------------------------------------------------ the model

interface SimRow {
  row: number;
  step: string;
  scheduledAt: number;
  issuedAt: number;
  startedAt: number | null;
  endedAt: number | null;
  outcome: 'succeeded' | 'failed' | 'dropped';
  status: number;
  error: string | null;
  errorCode: string | null;
  servedBy: string | null;
  appVersion: string | null;
  pod: string | null;
  cause: FailureCause | null;
  connection: number | null;
  localPort: number | null;
}

interface FailureShape {
  status: number;
  error: string;
  code: string | null;
  answered: boolean;
  reason: string;
  latency: number;
}

/** A cause without a shape of its own below looks like this (a new cause needs none to be drawn). */
const DEFAULT_SHAPE: FailureShape = {
  status: 0,
  error: 'other',
  code: 'EPROTO',
  answered: false,
  reason: 'a failure of this cause (no shape of its own in the synthetic model)',
  latency: 5,
};

/** What a failure of each cause looks like on the wire, and the rule that explains it. */
const FAILURE_SHAPE: Partial<Record<FailureCause, FailureShape>> = {
  'terminating-pod': {
    status: 0,
    error: 'other_side_closed',
    code: 'UND_ERR_SOCKET',
    answered: false,
    reason: 'the connection was closed by a pod that had been told to terminate (SIGTERM before the request ended)',
    latency: 3,
  },
  'endpoint-not-yet-removed': {
    status: 0,
    error: 'conn_refused',
    code: 'ECONNREFUSED',
    answered: false,
    reason: 'the proxy still sent traffic to a deleted pod: it was terminating and its endpoint had not been removed yet',
    latency: 1,
  },
  'pod-not-ready': {
    status: 503,
    error: 'http_5xx',
    code: null,
    answered: true,
    reason: 'answered 503 by a pod whose readiness probe was failing at the time',
    latency: 4,
  },
  'reset-during-drain': {
    status: 0,
    error: 'conn_reset',
    code: 'ECONNRESET',
    answered: false,
    reason: 'the pod reset the connection while draining after SIGTERM',
    latency: 12,
  },
  'application-5xx': {
    status: 500,
    error: 'http_5xx',
    code: null,
    answered: true,
    reason: 'a 500 from a ready pod with no pod or dependency event around it',
    latency: 9,
  },
  timeout: {
    status: 0,
    error: 'timeout',
    code: 'UND_ERR_HEADERS_TIMEOUT',
    answered: false,
    reason: 'no response within the 2 s request timeout',
    latency: 2000,
  },
  'dependency-outage': {
    status: 503,
    error: 'http_5xx',
    code: null,
    answered: true,
    reason: 'answered 503 while Redis was unreachable (dependency/redis outage-start before, outage-end after)',
    latency: 6,
  },
  unknown: {
    status: 0,
    error: 'other',
    code: 'EPROTO',
    answered: false,
    reason: 'no rule matched: no pod, endpoint or dependency event explains it',
    latency: 5,
  },
  'state-not-shared': {
    status: 404,
    error: 'http_4xx',
    code: null,
    answered: true,
    reason: 'a session created by v1, pod license-api-7d9f8c-p0 is unknown to v2, pod license-api-7d9f8c-p2: HTTP 404',
    latency: 3,
  },
  'contract-break': {
    status: 400,
    error: 'http_4xx',
    code: null,
    answered: true,
    reason:
      'POST /api/v1/licenses/heartbeat {session_id:string}: v1 accepted 2,310 (e.g. HTTP 200 from v1, pod license-api-7d9f8c-p0), v2 accepted none and refused 410 with a 4xx',
    latency: 2,
  },
  'application-4xx': {
    status: 409,
    error: 'http_4xx',
    code: null,
    answered: true,
    reason:
      'HTTP 409 from pod license-api-7d9f8c-p1 (v1) to POST /api/v1/licenses/acquire {hardware_id:string,license_key:string}',
    latency: 4,
  },
};
const shapeOf = (cause: FailureCause): FailureShape => FAILURE_SHAPE[cause] ?? DEFAULT_SHAPE;

function simulate(spec: CheckSpec, row: number): SimRow {
  const seed = spec.seed ?? 1;
  const step = spec.steps[row % spec.steps.length];
  const offsetS = row / spec.rate;
  const scheduledAt = spec.startMs + offsetS * 1000;
  const issuedAt = scheduledAt + uniform(seed, row, 1) * 0.4;
  const connection = row % 32;
  const base: SimRow = {
    row,
    step,
    scheduledAt,
    issuedAt,
    startedAt: null,
    endedAt: null,
    outcome: 'dropped',
    status: 0,
    error: null,
    errorCode: null,
    servedBy: null,
    appVersion: null,
    pod: null,
    cause: null,
    connection: null,
    localPort: null,
  };
  if (uniform(seed, row, 2) < (spec.droppedShare ?? 0)) return base;
  const live = spec.pods.filter((p) => offsetS >= p.inFrom && offsetS < p.inUntil);
  const pod = live.length ? live[hash32(seed, row, 3) % live.length] : null;
  const startedAt = issuedAt + uniform(seed, row, 4) * 0.2;
  let cause: FailureCause | null = null;
  for (const [k, f] of spec.faults.entries()) {
    if (offsetS < f.from || offsetS >= f.until) continue;
    if (f.pod !== null && f.pod !== pod?.name) continue;
    if (uniform(seed, row, 10 + k) < f.probability) {
      cause = f.cause;
      break;
    }
  }
  const p50 = spec.p50Ms ?? 8;
  const b = Math.max(0.5, (p50 - 2) / Math.LN2);
  // Slower near a fault window (the surviving pods take the load).
  const near = spec.faults.some((f) => offsetS >= f.from - 1 && offsetS < f.until + 2) ? 2.5 : 1;
  let latency = 2 + -Math.log(1 - uniform(seed, row, 5)) * b * near;
  const out: SimRow = { ...base, startedAt, connection, localPort: 40000 + connection };
  if (pod === null && cause === null) cause = 'unknown';
  if (cause === null) {
    return {
      ...out,
      endedAt: startedAt + latency,
      outcome: 'succeeded',
      status: 200,
      servedBy: pod!.name,
      appVersion: pod!.version,
    };
  }
  const shape = shapeOf(cause);
  latency = shape.latency * (0.7 + 0.6 * uniform(seed, row, 6));
  return {
    ...out,
    endedAt: startedAt + latency,
    outcome: 'failed',
    status: shape.status,
    error: shape.error,
    errorCode: shape.code,
    servedBy: shape.answered ? (pod?.name ?? null) : null,
    appVersion: shape.answered ? (pod?.version ?? null) : null,
    pod: pod?.name ?? null,
    cause,
  };
}

/** Each of the 32 connections is new for its first request, reused after. */
const connectionUse = (r: SimRow): 'new' | 'reused' | null => (r.connection === null ? null : r.row < 32 ? 'new' : 'reused');

const round3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);

/** The ledger line of a row, in `Ledger.toNdjsonLine`'s field order plus `check`, `cause`, `pod`. */
function ledgerLine(r: SimRow, label: string): string {
  const o: Record<string, unknown> = {
    row: r.row,
    iteration: r.row,
    name: r.step,
    outcome: r.outcome,
    scheduled_at: round3(r.scheduledAt),
    issued_at: round3(r.issuedAt),
    started_at: round3(r.startedAt),
    ended_at: round3(r.endedAt),
    status: r.status,
    error: r.error,
    error_code: r.errorCode,
    served_by: r.servedBy,
    app_version: r.appVersion,
    connection: r.connection,
    local_port: r.localPort,
    kind: null,
    created_by: null,
    connection_use: connectionUse(r),
    connection_age_ms: null,
    check: label,
  };
  if (r.outcome === 'failed') {
    o.cause = r.cause;
    o.pod = r.pod;
  }
  return JSON.stringify(o);
}

function rowCount(spec: CheckSpec): number {
  return Math.round(spec.rate * spec.durationS);
}

function quantile(sorted: Float64Array | number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Builds a CheckRecord from the model, streaming over its rows once. */
export function buildCheck(spec: CheckSpec): CheckRecord {
  const n = rowCount(spec);
  let succeeded = 0,
    failed = 0,
    dropped = 0;
  const byVersion: Record<string, number> = {};
  const byConnection = { new: { total: 0, failed: 0 }, reused: { total: 0, failed: 0 }, unknown: { total: 0, failed: 0 } };
  const groups = new Map<FailureCause, FailureGroup>();
  const latencies = new Float64Array(n);
  let judged = 0;
  const firstSecond = Math.floor(spec.startMs / 1000);
  const buckets: {
    requests: number;
    failed: Partial<Record<FailureCause, number>>;
    lat: number[];
    versions: Record<string, number>;
  }[] = [];
  let lastEnd = spec.startMs;
  for (let i = 0; i < n; i++) {
    const r = simulate(spec, i);
    if (r.outcome === 'dropped') {
      dropped++;
      continue;
    }
    const end = r.endedAt!;
    lastEnd = Math.max(lastEnd, end);
    const lat = end - r.scheduledAt;
    latencies[judged++] = lat;
    const s = Math.floor(end / 1000) - firstSecond;
    while (buckets.length <= s) buckets.push({ requests: 0, failed: {}, lat: [], versions: {} });
    const b = buckets[s];
    b.requests++;
    b.lat.push(lat);
    if (r.appVersion) {
      byVersion[r.appVersion] = (byVersion[r.appVersion] ?? 0) + 1;
      b.versions[r.appVersion] = (b.versions[r.appVersion] ?? 0) + 1;
    }
    const conn = byConnection[connectionUse(r) ?? 'unknown'];
    conn.total++;
    if (r.outcome === 'succeeded') {
      succeeded++;
      continue;
    }
    failed++;
    conn.failed++;
    const cause = r.cause!;
    b.failed[cause] = (b.failed[cause] ?? 0) + 1;
    let g = groups.get(cause);
    if (!g) {
      g = { cause, count: 0, examples: [], breakdown: [] };
      groups.set(cause, g);
    }
    g.count++;
    if (g.examples.length < 10) g.examples.push(example(spec, r));
    const version = r.appVersion ?? spec.pods.find((p) => p.name === r.pod)?.version ?? null;
    const cell = g.breakdown!.find((x) => x.version === version && x.route === routeOf(r.step));
    if (cell) cell.count++;
    else g.breakdown!.push({ version, route: routeOf(r.step), count: 1 });
  }
  const sorted = latencies.subarray(0, judged).sort();
  const series: SecondRecord[] = buckets.map((b, k) => {
    const lat = b.lat.sort((x, y) => x - y);
    return {
      t: (firstSecond + k) * 1000,
      requests: b.requests,
      failed: b.failed,
      p50: lat.length ? round3(quantile(lat, 0.5)) : null,
      p99: lat.length ? round3(quantile(lat, 0.99)) : null,
      versions: b.versions,
    };
  });
  for (const g of groups.values()) g.breakdown!.sort((a, b) => b.count - a.count);
  const failures = [...groups.values()].sort(
    (a, b) => b.count - a.count || FAILURE_CAUSES.indexOf(a.cause) - FAILURE_CAUSES.indexOf(b.cause),
  );
  const check: CheckRecord = {
    name: spec.name,
    kind: spec.kind ?? 'experiment',
    verdict: 'PASS',
    description: spec.description,
    startedAt: iso(spec.startMs),
    endedAt: iso(Math.max(lastEnd, spec.startMs + spec.durationS * 1000)),
    error: null,
    gates: [],
    requests: { total: succeeded + failed, succeeded, failed, dropped, byVersion, byConnection },
    failures,
    latency: judged
      ? {
          p50: round3(quantile(sorted, 0.5))!,
          p90: round3(quantile(sorted, 0.9))!,
          p99: round3(quantile(sorted, 0.99))!,
          max: round3(sorted[judged - 1])!,
        }
      : null,
    series,
    timeline: spec.timeline,
    ledgerLabel: spec.ledgerLabel,
  };
  check.gates = (spec.gates ?? defaultGates(spec))(check);
  check.verdict = worst(check.gates.map((g) => g.verdict));
  return check;
}

/** The route the synthetic license load uses for a step. */
const routeOf = (step: string) =>
  step === 'ready' ? 'GET /health/ready' : `POST /api/v1/licenses/${step.replace(/-live$/, '')}`;

function example(spec: CheckSpec, r: SimRow): FailureExample {
  const history = r.pod ? spec.timeline.filter((e) => e.object === `pod/${r.pod}` && e.at <= r.scheduledAt).slice(-3) : [];
  return {
    at: round3(r.scheduledAt)!,
    step: r.step,
    status: r.status,
    error: r.error,
    pod: r.pod,
    version: r.appVersion ?? spec.pods.find((p) => p.name === r.pod)?.version ?? null,
    attributedBy: r.pod === null ? null : r.servedBy ? 'response-header' : 'proxy-connection',
    route: routeOf(r.step),
    kind: null,
    createdBy: null,
    contrast: null,
    connection: connectionUse(r),
    connectionAgeMs: null,
    reason: shapeOf(r.cause!).reason,
    podHistory: history,
  };
}

function defaultGates(spec: CheckSpec) {
  return (c: CheckRecord): GateRecord[] => {
    const q = c.requests!;
    const noFail = errorRateGate({ name: 'no failed request', failed: q.failed, total: q.total, maxRate: 0, minRequests: 300 });
    const planned = rowCount(spec);
    const started = planned - q.dropped;
    const share = planned ? started / planned : 0;
    return [
      { name: noFail.name, verdict: noFail.verdict, evidence: noFail.evidence, observed: noFail.observed ?? {} },
      {
        name: 'load as planned',
        verdict: share >= 0.99 ? 'PASS' : 'INCONCLUSIVE',
        evidence: `${(started / spec.durationS).toFixed(1)} of ${spec.rate.toFixed(1)} req/s started (${(share * 100).toFixed(1)}%, need 99%), ${q.dropped} dropped`,
        observed: { achieved: started / spec.durationS, target: spec.rate, dropped: q.dropped },
      },
    ];
  };
}

/** Every ledger line of a check, generated again from the model (same seed, same rows). */
export function* checkLedgerLines(spec: CheckSpec): Generator<string> {
  const n = rowCount(spec);
  for (let i = 0; i < n; i++) yield ledgerLine(simulate(spec, i), spec.ledgerLabel);
}

export interface RunSpec {
  command: string;
  checks: CheckSpec[];
  headline?: (r: RunRecord) => string;
  faults?: string[];
  versions?: Record<string, string>;
  /** Extra checks without load (lint, probes), appended as they are. */
  extraChecks?: CheckRecord[];
}

function defaultHeadline(r: RunRecord): string {
  const bad = r.checks.filter((c) => c.verdict !== 'PASS');
  const total = r.checks.reduce((s, c) => s + (c.requests?.total ?? 0), 0);
  const failed = r.checks.reduce((s, c) => s + (c.requests?.failed ?? 0), 0);
  if (r.verdict === 'PASS')
    return `PASS: ${r.checks.length} check${r.checks.length === 1 ? '' : 's'} passed, ${total.toLocaleString('en-US')} requests, none failed`;
  return `${r.verdict}: ${failed.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} requests failed in ${bad.map((c) => c.name).join(', ')}`;
}

export function buildRun(spec: RunSpec): SyntheticRun {
  const checks = [...spec.checks.map(buildCheck), ...(spec.extraChecks ?? [])];
  const start = Math.min(...spec.checks.map((c) => c.startMs));
  const end = Math.max(...checks.map((c) => Date.parse(c.endedAt)));
  const verdict: Verdict = worst(checks.map((c) => c.verdict));
  const record: RunRecord = {
    schema: RUN_RECORD_SCHEMA,
    command: spec.command,
    verdict,
    headline: '',
    startedAt: iso(start - 4_000),
    endedAt: iso(end + 3_000),
    durationMs: end + 3_000 - (start - 4_000),
    target: {
      kind: 'embedded',
      name: 'verdict',
      context: 'verdict-embedded',
      serverVersion: 'v1.37.2',
      url: 'http://127.0.0.1:30080',
      endpointLagMs: 1500,
    },
    app: { name: 'license-api', versions: spec.versions ?? { expected: 'v1.4.2' }, faults: spec.faults ?? [] },
    harness: { version: '0.1.0', node: 'v24.21.0', host: 'ci-runner-1' },
    checks,
    error: null,
    files: { ledger: 'ledger.ndjson.gz' },
  };
  record.headline = (spec.headline ?? defaultHeadline)(record);
  return {
    record,
    ledgerLines: () =>
      (function* () {
        for (const c of spec.checks) yield* checkLedgerLines(c);
      })(),
  };
}

// ------------------------------------------------------------------ the runs the tests use

const T0 = Date.UTC(2026, 2, 3, 14, 0, 0);
const POD = (s: string) => `license-api-7d9f8c-${s}`;

function ev(
  at: number,
  kind: TimelineRecord['kind'],
  object: string,
  change: string,
  detail: string | null = null,
): TimelineRecord {
  return { at, kind, object, change, detail };
}

/**
 * A pod-kill experiment at `rate` req/s for `durationS` s: two pods deleted (at 30 % and 63 % of the
 * run), each failing requests while its endpoint is still listed (endpoint-not-yet-removed) and
 * resetting some in-flight ones while it drains (reset-during-drain). About 30 failures at 200 req/s
 * for 60 s: FAIL. Replacements come up and take traffic.
 */
export function podKillSpec(
  opts: { rate?: number; durationS?: number; startMs?: number; seed?: number; failureScale?: number } = {},
): CheckSpec {
  const rate = opts.rate ?? 200;
  const durationS = opts.durationS ?? 60;
  const start = opts.startMs ?? T0;
  const scale = opts.failureScale ?? 1;
  const d1 = durationS * 0.3,
    d2 = durationS * 0.63;
  const lag = 1.5;
  const at = (s: number) => start + s * 1000;
  const pods: PodSpec[] = [
    { name: POD('x2kqp'), version: 'v1.4.2', inFrom: -1, inUntil: d1 + lag },
    { name: POD('mv9tw'), version: 'v1.4.2', inFrom: -1, inUntil: d2 + lag },
    { name: POD('h4zrc'), version: 'v1.4.2', inFrom: -1, inUntil: Infinity },
    { name: POD('q8bnd'), version: 'v1.4.2', inFrom: d1 + 6.2, inUntil: Infinity },
    { name: POD('t5wlf'), version: 'v1.4.2', inFrom: d2 + 5.8, inUntil: Infinity },
  ];
  // Per deletion, at 200 req/s a third of the traffic reaches the pod: ~100 requests in the lag.
  const faults: FaultWindow[] = [
    {
      from: d1 + 0.05,
      until: d1 + lag,
      pod: pods[0].name,
      cause: 'endpoint-not-yet-removed',
      probability: Math.min(1, 0.09 * scale),
    },
    { from: d1, until: d1 + 0.35, pod: pods[0].name, cause: 'reset-during-drain', probability: Math.min(1, 0.3 * scale) },
    {
      from: d2 + 0.05,
      until: d2 + lag,
      pod: pods[1].name,
      cause: 'endpoint-not-yet-removed',
      probability: Math.min(1, 0.09 * scale),
    },
    { from: d2, until: d2 + 0.35, pod: pods[1].name, cause: 'reset-during-drain', probability: Math.min(1, 0.3 * scale) },
  ];
  const timeline: TimelineRecord[] = [
    ev(at(-3), 'phase', 'experiment/pod-kill', 'load-start', `${rate} req/s open model for ${durationS} s`),
    ...[0, 1, 2].map((i) => ev(at(-20 + i), 'pod', `pod/${pods[i].name}`, 'ready', 'v1.4.2')),
    ev(at(d1), 'chaos', `pod/${pods[0].name}`, 'delete', 'chaos: kubectl delete pod (grace 30 s)'),
    ev(at(d1 + 0.04), 'pod', `pod/${pods[0].name}`, 'terminating', 'SIGTERM sent'),
    ev(at(d1 + 0.1), 'pod', `pod/${pods[3].name}`, 'created', 'ReplicaSet license-api-7d9f8c'),
    ev(at(d1 + lag), 'endpoint', `pod/${pods[0].name}`, 'endpoint-removed', 'EndpointSlice license-api-2kx7f'),
    ev(at(d1 + 5.6), 'pod', `pod/${pods[3].name}`, 'ready', 'v1.4.2'),
    ev(at(d1 + 6.2), 'endpoint', `pod/${pods[3].name}`, 'endpoint-added', 'EndpointSlice license-api-2kx7f'),
    ev(at(d1 + 8.1), 'pod', `pod/${pods[0].name}`, 'gone', 'exit 0 after drain'),
    ev(at(d2), 'chaos', `pod/${pods[1].name}`, 'delete', 'chaos: kubectl delete pod (grace 30 s)'),
    ev(at(d2 + 0.03), 'pod', `pod/${pods[1].name}`, 'terminating', 'SIGTERM sent'),
    ev(at(d2 + 0.1), 'pod', `pod/${pods[4].name}`, 'created', 'ReplicaSet license-api-7d9f8c'),
    ev(at(d2 + lag), 'endpoint', `pod/${pods[1].name}`, 'endpoint-removed', 'EndpointSlice license-api-2kx7f'),
    ev(at(d2 + 5.2), 'pod', `pod/${pods[4].name}`, 'ready', 'v1.4.2'),
    ev(at(d2 + 5.8), 'endpoint', `pod/${pods[4].name}`, 'endpoint-added', 'EndpointSlice license-api-2kx7f'),
    ev(at(d2 + 7.9), 'pod', `pod/${pods[1].name}`, 'gone', 'exit 0 after drain'),
    ev(at(durationS + 0.5), 'phase', 'experiment/pod-kill', 'load-end', null),
  ];
  return {
    name: 'pod-kill',
    description: `delete two license-api pods while ${rate} req/s of license-flow traffic runs; no request may fail`,
    startMs: start,
    rate,
    durationS,
    steps: ['acquire', 'heartbeat', 'heartbeat', 'release'],
    pods,
    faults,
    timeline,
    p50Ms: 7,
    ledgerLabel: 'pod-kill',
    seed: opts.seed ?? 7,
    gates: (c) => {
      const q = c.requests!;
      const g = errorRateGate({ name: 'no failed request', failed: q.failed, total: q.total, maxRate: 0, minRequests: 300 });
      return [
        { name: g.name, verdict: g.verdict, evidence: g.evidence, observed: g.observed ?? {} },
        {
          name: 'load as planned',
          verdict: 'PASS',
          evidence: `${rate.toFixed(1)} of ${rate.toFixed(1)} req/s started (100.0%, need 99%), ${q.dropped} dropped; engine lateness p99 1.2 ms (need <= 50)`,
          observed: { achieved: rate, target: rate, dropped: q.dropped, schedule_delay_p99_ms: 1.2 },
        },
        {
          name: 'capacity held',
          verdict: 'PASS',
          evidence: 'ready pods never below 2 (required 2 during a deletion); at most 4 active (allowed 4); 122 samples',
          observed: { minReady: 2, maxActive: 4, samples: 122 },
        },
        {
          name: 'deleted pods replaced',
          verdict: 'PASS',
          evidence: 'both deleted pods were replaced by ready pods within 6.2 s (allowed 30 s)',
          observed: { replaced: 2, slowest_s: 6.2, allowed_s: 30 },
        },
      ];
    },
  };
}

/** The FAIL run of the screenshot: pod-kill at 200 req/s for 60 s, ~30 failures. */
export function podKillRun(opts: Parameters<typeof podKillSpec>[0] = {}): SyntheticRun {
  return buildRun({ command: 'experiment', checks: [podKillSpec(opts)] });
}

/** A PASS run: a v1 → v2 rolling update under 100 req/s for 40 s, every request answered. */
export function rolloutPassRun(): SyntheticRun {
  const start = T0;
  const at = (s: number) => start + s * 1000;
  const old = ['a1b2c', 'd3e4f', 'g5h6i'].map((s) => `license-api-6c5b4-${s}`);
  const neu = ['j7k8l', 'm9n0p', 'q1r2s'].map((s) => `license-api-8f7e6-${s}`);
  const pods: PodSpec[] = [
    ...old.map((name, i) => ({ name, version: 'v1', inFrom: -1, inUntil: 10 + i * 8 })),
    ...neu.map((name, i) => ({ name, version: 'v2', inFrom: 6 + i * 8, inUntil: Infinity })),
  ];
  const timeline: TimelineRecord[] = [ev(at(2), 'phase', 'rollout', 'rollout-start', 'v1 → v2')];
  pods.forEach((p) => {
    if (p.version === 'v2') {
      timeline.push(
        ev(at(p.inFrom - 4), 'pod', `pod/${p.name}`, 'created', 'v2'),
        ev(at(p.inFrom - 0.4), 'pod', `pod/${p.name}`, 'ready', 'v2'),
        ev(at(p.inFrom), 'endpoint', `pod/${p.name}`, 'endpoint-added', null),
      );
    } else {
      timeline.push(
        ev(at(p.inUntil - 1.5), 'pod', `pod/${p.name}`, 'terminating', 'SIGTERM sent'),
        ev(at(p.inUntil), 'endpoint', `pod/${p.name}`, 'endpoint-removed', null),
        ev(at(p.inUntil + 6), 'pod', `pod/${p.name}`, 'gone', 'exit 0'),
      );
    }
  });
  timeline.push(ev(at(30.5), 'phase', 'rollout', 'rollout-complete', '3 of 3 updated, available'));
  timeline.sort((a, b) => a.at - b.at);
  return buildRun({
    command: 'verify-local',
    versions: { from: 'v1', to: 'v2' },
    checks: [
      {
        name: 'rollout-under-load',
        description: 'roll license-api v1 → v2 out while 100 req/s of license-flow traffic runs',
        startMs: start,
        rate: 100,
        durationS: 40,
        steps: ['acquire', 'heartbeat', 'release'],
        pods,
        faults: [],
        timeline,
        ledgerLabel: 'rollout',
        seed: 3,
        gates: (c) => {
          const q = c.requests!;
          const g = errorRateGate({ name: 'no failed request', failed: q.failed, total: q.total, maxRate: 0, minRequests: 300 });
          return [
            { name: 'rollout completed', verdict: 'PASS', evidence: 'v1 → v2 rolled out in 28.5 s', observed: { seconds: 28.5 } },
            { name: g.name, verdict: g.verdict, evidence: g.evidence, observed: g.observed ?? {} },
            {
              name: 'traffic crossed the rollout',
              verdict: 'PASS',
              evidence: `${q.byVersion.v1} answers from v1, ${q.byVersion.v2} from v2`,
              observed: { v1: q.byVersion.v1, v2: q.byVersion.v2 },
            },
          ];
        },
      },
    ],
  });
}

/** A FAIL run with a failure of every cause, each in its own window and on its own pod. */
export function everyCauseRun(): SyntheticRun {
  const pods: PodSpec[] = ['p0', 'p1', 'p2', 'p3'].map((s, i) => ({
    name: POD(s),
    version: i < 2 ? 'v1' : 'v2',
    inFrom: -1,
    inUntil: Infinity,
  }));
  const faults: FaultWindow[] = FAILURE_CAUSES.map((cause, i) => ({
    from: 2 + i * 3,
    until: 4 + i * 3,
    pod: cause === 'unknown' ? null : pods[i % 4].name,
    cause,
    probability: 0.2 + 0.05 * i,
  }));
  const timeline = faults.map((f, i) =>
    ev(
      T0 + f.from * 1000,
      (['pod', 'endpoint', 'pod', 'pod', 'event', 'event', 'chaos', 'node'] as const)[i % 8],
      f.pod ? `pod/${f.pod}` : 'node/verdict-node-2',
      `${f.cause}-start`,
      `window for ${f.cause}`,
    ),
  );
  return buildRun({
    command: 'experiment',
    checks: [
      {
        name: 'every-cause',
        description: 'one window of failures for each cause',
        startMs: T0,
        rate: 50,
        durationS: 4 + 3 * FAILURE_CAUSES.length,
        steps: ['acquire', 'heartbeat'],
        pods,
        faults,
        timeline,
        ledgerLabel: 'every-cause',
        seed: 11,
      },
    ],
  });
}

/** A run whose checks sent no request: a manifest lint (PASS) and a smoke suite that judged nothing. */
export function noRequestsRun(): SyntheticRun {
  const base = {
    startedAt: iso(T0),
    endedAt: iso(T0 + 1200),
    error: null,
    failures: [],
    latency: null,
    series: [],
    timeline: [],
  };
  const lint: CheckRecord = {
    ...base,
    name: 'manifest lint',
    kind: 'probe',
    verdict: 'PASS',
    description: 'the kustomize overlays render and pass the probe rules',
    gates: [
      {
        name: 'probes declared',
        verdict: 'PASS',
        evidence: 'startup, liveness and readiness probes on every container of 3 overlays',
        observed: { overlays: 3 },
      },
    ],
    requests: null,
    ledgerLabel: null,
  };
  const smoke: CheckRecord = {
    ...base,
    name: 'smoke',
    kind: 'suite',
    verdict: 'INCONCLUSIVE',
    description: 'acquire → heartbeat → release once against the Service',
    gates: [
      {
        name: 'enough requests',
        verdict: 'INCONCLUSIVE',
        evidence: 'only 0 requests (at least 3 needed to judge)',
        observed: { total: 0, min_requests: 3 },
      },
    ],
    requests: { total: 0, succeeded: 0, failed: 0, dropped: 0, byVersion: {} },
    ledgerLabel: 'smoke',
  };
  const record: RunRecord = {
    schema: RUN_RECORD_SCHEMA,
    command: 'smoke',
    verdict: 'INCONCLUSIVE',
    headline: 'INCONCLUSIVE: the smoke suite sent no request (the Service had no endpoints)',
    startedAt: iso(T0 - 500),
    endedAt: iso(T0 + 1500),
    durationMs: 2000,
    target: {
      kind: 'url',
      name: 'staging',
      context: null,
      serverVersion: null,
      url: 'http://127.0.0.1:30080',
      endpointLagMs: null,
    },
    app: null,
    harness: { version: '0.1.0', node: 'v24.21.0', host: 'ci-runner-1' },
    checks: [lint, smoke],
    error: null,
    files: { ledger: 'ledger.ndjson.gz' },
  };
  return { record, ledgerLines: () => [] };
}

/**
 * A run that broke before judging anything: ERROR, no checks, no ledger. Its error text carries what
 * renderers must escape: XML/HTML specials, a `</script>`, control characters XML 1.0 forbids.
 */
export function errorRun(): SyntheticRun {
  const record: RunRecord = {
    schema: RUN_RECORD_SCHEMA,
    command: 'experiment',
    verdict: 'ERROR',
    headline: 'ERROR: the cluster was lost before any check ran (<no verdict> & "no evidence")',
    startedAt: iso(T0),
    endedAt: iso(T0 + 42_000),
    durationMs: 42_000,
    target: {
      kind: 'existing',
      name: 'gke-staging',
      context: 'gke_proj_europe-west1_staging',
      serverVersion: null,
      url: null,
      endpointLagMs: null,
    },
    app: { name: 'license-api', versions: { expected: 'v1.4.2' }, faults: [] },
    harness: { version: '0.1.0', node: 'v24.21.0', host: 'ci-runner-1' },
    checks: [],
    error:
      'kube-apiserver unreachable: connect ECONNREFUSED 10.0.0.1:443 after 5 tries\n\x1b[31mraw\x1b[0m bytes \x00\x07 & <tags> "quotes" </script><!-- ]]> \uFFFE end',
    files: { ledger: null },
  };
  return { record, ledgerLines: null };
}

/**
 * A long run: `rate` req/s for `durationS` s (defaults: 500 req/s for 10 minutes = 300,000 rows),
 * with about `failureShare` of requests failing in three incidents (a pod deletion, a Redis outage,
 * a bad pod answering 500s).
 */
export function longRunSpec(
  opts: { rate?: number; durationS?: number; failureShare?: number; startMs?: number } = {},
): CheckSpec {
  const rate = opts.rate ?? 500;
  const durationS = opts.durationS ?? 600;
  const share = opts.failureShare ?? 0.005;
  const spec = podKillSpec({ rate, durationS, startMs: opts.startMs ?? T0, seed: 5 });
  // The pod-kill windows last ~1.5 s each; add a Redis outage and an application-5xx episode sized
  // so that the total share is about `share`.
  const outage = Math.max(1, (share * durationS) / 2);
  spec.faults.push(
    { from: durationS * 0.45, until: durationS * 0.45 + outage, pod: null, cause: 'dependency-outage', probability: 0.5 },
    {
      from: durationS * 0.8,
      until: durationS * 0.8 + outage * 2,
      pod: spec.pods[2].name,
      cause: 'application-5xx',
      probability: 0.75,
    },
    { from: durationS * 0.2, until: durationS * 0.2 + 0.8, pod: null, cause: 'timeout', probability: 0.3 },
  );
  spec.timeline.push(
    ev(spec.startMs + durationS * 450, 'chaos', 'dependency/redis', 'outage-start', 'chaos: Redis stopped'),
    ev(spec.startMs + (durationS * 0.45 + outage) * 1000, 'chaos', 'dependency/redis', 'outage-end', 'chaos: Redis started'),
    ev(
      spec.startMs + durationS * 800,
      'event',
      `pod/${spec.pods[2].name}`,
      'Unhealthy',
      'Readiness probe failed: HTTP probe failed with statuscode: 500',
    ),
  );
  spec.timeline.sort((a, b) => a.at - b.at);
  spec.name = 'pod-kill-long';
  spec.ledgerLabel = 'pod-kill-long';
  spec.description = `${durationS / 60}-minute soak at ${rate} req/s with two pod deletions, a Redis outage and a bad pod`;
  return spec;
}

export function longRun(opts: Parameters<typeof longRunSpec>[0] = {}): SyntheticRun {
  return buildRun({ command: 'experiment', checks: [longRunSpec(opts)] });
}
