/**
 * One result from the agents of a distributed run: their ledgers merged into one (rows in issue order,
 * times re-based on one origin, iteration numbers already unique, connections numbered apart), then
 * the same statistics, summary, thresholds and assessment as a single-process run (judge.ts). An
 * agent that did not report is missing evidence: the result is INCONCLUSIVE with its reason, never
 * PASS; so is an agent that started late.
 */
import type { LoadResult } from '../engine.ts';
import type { Plan } from '../executors.ts';
import { ingestRows, judgeRun, thresholdStatistics } from '../judge.ts';
import { Ledger, Outcome } from '../ledger.ts';
import { RequestStatistics } from '../statistics.ts';
import type { IterationCounts } from '../summary.ts';
import type { VettedTarget } from '../target-guard.ts';
import type { Threshold } from '../thresholds.ts';
import type { AgentReport } from './collector.ts';

/** What became of one agent. */
export interface AgentOutcome {
  index: number;
  /** Pod (or host) it ran on, when known. */
  pod: string | null;
  reported: boolean;
  /** Why it did not report, or why its part is doubtful (late start, aborted). */
  problem: string | null;
  /** Its rows in the merged ledger, and its own verdict on its share (not the run's). */
  rows: number;
  ownVerdict: string | null;
  startLateMs: number | null;
}

export interface DistributedLoadResult extends LoadResult {
  agents: AgentOutcome[];
}

export interface MergeInput {
  agents: number;
  reports: ReadonlyMap<number, AgentReport>;
  /** Why each agent that did not report did not (pod deleted, exit code, no report in time...). */
  missing: ReadonlyMap<number, string>;
  pods?: ReadonlyMap<number, string>;
  /** The plan of the whole run, and the arrivals the agents' plans hold together (open model). */
  plan: Plan;
  plannedArrivals: number | null;
  target: VettedTarget;
  thresholds: Threshold[];
  timeoutMs: number;
  minRequests: number;
  maxScheduleDelayMs?: number;
  /** An agent whose clock started later than this after its start instant makes the run INCONCLUSIVE. */
  maxStartLatenessMs: number;
  /** The shared start instant (epoch ms): the merged ledger's origin. */
  originEpochMs: number;
  /** Set when the harness itself cut the run short (Ctrl-C). */
  abortReason?: string | null;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** One agent's ledger as the merge reads it: the next row, its time shift, its ids mapped into the merged ledger's. */
interface MergePart {
  ledger: Ledger;
  connectionOffset: number;
  next: number;
  shift: number;
  names: Map<number, number>;
  served: Map<number, number>;
  versions: Map<number, number>;
  codes: Map<number, number>;
  kinds: Map<number, number>;
  creators: Map<number, number>;
}

/** Merges agent ledgers into one on `originEpochMs`, in issue order; connection numbers offset per agent. */
export function mergeLedgers(parts: Array<{ ledger: Ledger; connectionOffset: number }>, originEpochMs: number): Ledger {
  const out = new Ledger(originEpochMs - performance.timeOrigin);
  const state: MergePart[] = parts.map(({ ledger, connectionOffset }) => ({
    ledger,
    connectionOffset,
    next: 0,
    shift: ledger.origin.epochMs - originEpochMs,
    names: new Map(),
    served: new Map(),
    versions: new Map(),
    codes: new Map(),
    kinds: new Map(),
    creators: new Map(),
  }));
  for (;;) {
    // k-way merge by issue time: each agent's rows are in its own issue order.
    let best = -1;
    let bestAt = Infinity;
    for (let k = 0; k < state.length; k++) {
      const s = state[k];
      if (s.next >= s.ledger.length) continue;
      const at = s.ledger.issuedAt(s.next) + s.shift;
      if (at < bestAt) {
        bestAt = at;
        best = k;
      }
    }
    if (best < 0) break;
    copyRow(out, state[best], bestAt);
  }
  return out;
}

/** An id of one ledger's string table as the merged ledger's id of the same string (0 stays 0). */
function mapId(
  cache: Map<number, number>,
  id: number,
  from: (id: number) => string | undefined,
  to: (v: string | undefined) => number,
) {
  if (id === 0) return 0;
  let m = cache.get(id);
  if (m === undefined) {
    m = to(from(id));
    cache.set(id, m);
  }
  return m;
}

/** Appends the part's next row to `out`, issued at `issuedAt` on the merged clock. */
function copyRow(out: Ledger, s: MergePart, issuedAt: number): void {
  const l = s.ledger;
  const r = s.next++;
  const name = mapId(
    s.names,
    l.nameId(r),
    (id) => l.names.value(id),
    (v) => out.names.id(v),
  );
  const outcome = l.outcome(r);
  const scheduled = l.scheduledAt(r) + s.shift;
  if (outcome === Outcome.dropped) {
    out.addDropped(scheduled, issuedAt, name, l.iteration(r));
    return;
  }
  const row = out.add(scheduled, issuedAt, name, l.iteration(r));
  out.describe(
    row,
    mapId(
      s.kinds,
      l.kindId(r),
      (id) => l.kinds.value(id),
      (v) => out.kinds.id(v),
    ),
    mapId(
      s.creators,
      l.createdById(r),
      (id) => l.creators.value(id),
      (v) => out.creators.id(v),
    ),
  );
  const use = l.connectionUse(r);
  if (use) out.markConnection(row, use, l.connectionAge(r));
  const started = l.startedAt(r);
  const conn = l.connection(r);
  if (!Number.isNaN(started))
    out.markStarted(row, started + s.shift, conn === 0xffff ? 0xffff : Math.min(0xfffe, conn + s.connectionOffset));
  if (outcome === Outcome.pending) return;
  out.finish(
    row,
    l.endedAt(r) + s.shift,
    outcome,
    l.status(r),
    l.errorClass(r),
    mapId(
      s.codes,
      l.errorCodeId(r),
      (id) => l.errorCodes.value(id),
      (v) => out.errorCodes.id(v),
    ),
    mapId(
      s.served,
      l.servedById(r),
      (id) => l.servedBy.value(id),
      (v) => out.servedBy.id(v),
    ),
    mapId(
      s.versions,
      l.appVersionId(r),
      (id) => l.appVersions.value(id),
      (v) => out.appVersions.id(v),
    ),
    l.localPort(r),
  );
}

export function mergeAgentResults(m: MergeInput): DistributedLoadResult {
  const indexes = Array.from({ length: m.agents }, (_, i) => i);
  const reported = indexes.filter((i) => m.reports.has(i)).map((i) => m.reports.get(i)!);
  let offset = 0;
  const parts = reported.map((r) => {
    const part = { ledger: r.ledger, connectionOffset: offset };
    offset += r.header.summary.run.connections;
    return part;
  });
  const ledger = mergeLedgers(parts, m.originEpochMs);

  const problems: string[] = [];
  const agents = indexes.map((index) => agentOutcome(m, index, problems));

  const stats = new RequestStatistics();
  const thresholds = thresholdStatistics(m.thresholds, stats);
  const all = new Uint32Array(ledger.length);
  for (let i = 0; i < all.length; i++) all[i] = i;
  ingestRows(ledger, all, stats, thresholds);

  const { iterations, endedAt, schedulingEndedAt, stopReason, aborts, abortedByThreshold, plan, maxRequests } = runTotals(
    m,
    reported,
  );

  const judged = judgeRun({
    ledger,
    stats,
    plan,
    target: m.target,
    iterations,
    connections: offset,
    timeoutMs: m.timeoutMs,
    maxRequests: reported.length === m.agents ? maxRequests : Number.MAX_SAFE_INTEGER,
    schedulingEndedAt,
    lastIssuedAt: ledger.length ? ledger.issuedAt(ledger.length - 1) : NaN,
    endedAt,
    stopReason,
    abortReason: aborts.length ? aborts.join('; ') : null,
    ndjsonRows: null,
    thresholds,
    minRequests: m.minRequests,
    maxScheduleDelayMs: m.maxScheduleDelayMs,
    abortedByThreshold,
    inconclusive: problems,
  });
  return { ledger, ...judged, agents };
}

/** What happened to agent `index`: reported (maybe late), or lost; each problem is added to `problems`. */
function agentOutcome(m: MergeInput, index: number, problems: string[]): AgentOutcome {
  const r = m.reports.get(index);
  if (!r) {
    const why = m.missing.get(index) ?? 'no report arrived';
    problems.push(
      `agent ${index}${m.pods?.get(index) ? ` (${m.pods.get(index)})` : ''} did not report: ${why}; its share of the load is missing`,
    );
    return {
      index,
      pod: m.pods?.get(index) ?? null,
      reported: false,
      problem: why,
      rows: 0,
      ownVerdict: null,
      startLateMs: null,
    };
  }
  let problem: string | null = null;
  if (r.header.startLateMs > m.maxStartLatenessMs) {
    problem = `started ${Math.round(r.header.startLateMs)} ms after its start instant`;
    problems.push(
      `agent ${index} (${r.header.host}) ${problem} (at most ${m.maxStartLatenessMs} ms): the agents did not start together`,
    );
  }
  return {
    index,
    pod: m.pods?.get(index) ?? r.header.host,
    reported: true,
    problem,
    rows: r.header.rows,
    ownVerdict: r.header.assessment.verdict,
    startLateMs: r.header.startLateMs,
  };
}

/** The run as a whole from the agents' summaries: iterations, when it ended and why, the plan as planned over all agents. */
function runTotals(m: MergeInput, reported: AgentReport[]) {
  const rel = (r: AgentReport, t: number) => t + r.header.originEpochMs - m.originEpochMs;
  const counts = (k: keyof IterationCounts) => sum(reported.map((r) => r.header.summary.counts.iterations[k]));
  const iterations: IterationCounts = {
    started: counts('started'),
    completed: counts('completed'),
    failed: counts('failed'),
    interrupted: counts('interrupted'),
    dropped: counts('dropped'),
  };
  const ended = reported.map((r) => rel(r, r.header.summary.run.elapsedMs));
  const endedAt = Math.max(0, ...ended);
  const schedulingEndedAt = reported.length
    ? Math.max(...reported.map((r) => rel(r, r.header.summary.run.schedulingEndedAtMs)))
    : NaN;
  const stops = [...new Set(reported.map((r) => r.header.summary.run.stopReason))];
  const stopReason =
    stops.length === 1 ? stops[0] : reported.map((r) => `agent ${r.header.index}: ${r.header.summary.run.stopReason}`).join('; ');
  const aborts = reported
    .filter((r) => r.header.summary.run.abortReason)
    .map((r) => `agent ${r.header.index}: ${r.header.summary.run.abortReason}`);
  // An agent's abort-on-fail threshold fired on its share: a breach, as in one process.
  const abortedByThreshold =
    !m.abortReason && reported.some((r) => r.header.assessment.reasons.some((x) => x.startsWith('run aborted on breach')));
  if (m.abortReason) aborts.unshift(m.abortReason);
  const plan: Plan =
    m.plan.model === 'open' && m.plannedArrivals !== null
      ? { ...m.plan, arrivals: { ...m.plan.arrivals, count: m.plannedArrivals } }
      : m.plan;
  const maxRequests = sum(reported.map((r) => r.header.summary.run.maxRequests)) || 1;
  return { iterations, endedAt, schedulingEndedAt, stopReason, aborts, abortedByThreshold, plan, maxRequests };
}
