/**
 * The load engine: runs a scenario under an executor against one vetted target, writes every request
 * into the ledger, and stops by itself (duration, request cap, or abort).
 *
 * Open model: a pump issues each arrival at its exact due time (a timer for the next due time, plus a
 * check after every completed request, so a busy engine rarely waits for a timer tick). An arrival
 * that finds `maxVUs` iterations in flight is recorded as dropped. Closed model: each VU starts its
 * next iteration as soon as the previous one ends. Nothing is ever retried.
 */
import { ConnectionPool } from './connection-pool.ts';
import { ErrorClass } from './error-class.ts';
import { Exchange, type ExchangeOwner } from './exchange.ts';
import { planExecutor, type ClosedPlan, type ExecutorConfig, type OpenPlan, type Plan } from './executors.ts';
import { ConnectionUse, Ledger, Outcome, type OutcomeId } from './ledger.ts';
import { LedgerNdjsonWriter } from './ndjson-writer.ts';
import { RingQueue } from './ring-queue.ts';
import { compileScenario, singleRequest, type CompiledFlow, type IterationContext, type Scenario } from './scenario.ts';
import { RequestStatistics } from './statistics.ts';
import { checkRemoteLoad, vetTarget, type TargetPolicy, type VettedTarget } from './target-guard.ts';
import { evaluate, parseThresholds, type Threshold, type ThresholdConfig, type ThresholdResult } from './thresholds.ts';
import { parseDuration } from './units.ts';
import { warmUpHttpClient } from './warm-up.ts';
import type { LoadSummary } from './summary.ts';
import type { Assessment } from './assessment.ts';
import { ingestRows, judgeRun, thresholdStatistics, type ThresholdStatistics } from './judge.ts';
import type { Writable } from 'node:stream';

export interface LoadOptions {
  /** Target URL; its path is the request path when no scenario is given. */
  url: string;
  executor: ExecutorConfig;
  /** What each iteration does. Default: GET the URL's path. */
  scenario?: Scenario;
  /** Keep-alive connections. Default: 32 for arrival-rate executors, one per VU for VU executors. */
  connections?: number;
  /** Per-request timeout, from when the request is issued. Default 10s. */
  timeout?: string | number;
  /** Hard cap on ledger rows (scheduled requests). Default 5,000,000. */
  maxRequests?: number;
  /** Fewer finished requests than this makes the run INCONCLUSIVE. Default 100. */
  minRequests?: number;
  /**
   * The engine's own lateness (schedule_delay p99) above which the run is INCONCLUSIVE: its machine
   * was too busy for its numbers to be trusted. Default 50ms.
   */
  maxScheduleDelay?: string | number;
  thresholds?: ThresholdConfig;
  target?: TargetPolicy;
  /** Verify TLS certificates (default true). */
  rejectUnauthorized?: boolean;
  /** Stream ledger rows as NDJSON to this path or stream. */
  ndjson?: string | Writable;
  /** How often `onProgress` is called (ms). Default 1000. */
  progressIntervalMs?: number;
  onProgress?: (p: Progress) => void;
  /** Aborting it stops the run (in-flight requests are recorded as aborted). */
  signal?: AbortSignal;
  /**
   * 'timer' (default): due times are met within about a millisecond using timers; little CPU at low
   * rates. 'spin': busy-waits the last millisecond for sub-millisecond scheduling (costs a core).
   */
  precision?: 'timer' | 'spin';
  /**
   * Response headers that name the backend (pod) that answered and the app version, recorded in
   * the ledger for failure attribution. The engine knows no app: without this nothing is recorded.
   * The license API's are `x-served-by` and `x-app-version` (its profile says so).
   */
  identityHeaders?: IdentityHeaders;
  /**
   * Wall-clock instant (epoch ms) at which the run's clock starts: the target is vetted and the client
   * warmed up first, then the engine waits for it (distributed load agents start together this way).
   * When it has passed already, the run starts at once and `LoadRun.startLateMs` says how late.
   */
  startAt?: number;
  /**
   * Iteration numbers `offset`, `offset + stride`, ... instead of 0, 1, ...: the agents of a
   * distributed run (agent k of N: offset k, stride N) keep them unique across the whole run.
   */
  iterationNumbers?: { offset: number; stride: number };
}

export interface IdentityHeaders {
  backend?: string;
  version?: string;
}

export interface Progress {
  elapsedMs: number;
  phase: 'running' | 'stopping' | 'done';
  /** Planned rate now (open model) or wanted VUs (closed model). */
  targetRate: number | null;
  targetVUs: number | null;
  scheduled: number;
  succeeded: number;
  failed: number;
  dropped: number;
  inFlight: number;
  /** Requests waiting for a free connection. */
  waiting: number;
  activeIterations: number;
  /** Requests that ended per second over the last interval. */
  recentRate: number;
  recentFailed: number;
  /** p99 of http_req_duration over the last interval and over the whole run (ms). */
  recentP99: number | null;
  p99: number | null;
}

export interface LoadResult {
  ledger: Ledger;
  summary: LoadSummary;
  thresholds: ThresholdResult[];
  assessment: Assessment;
}

export interface LoadRun extends AsyncDisposable {
  readonly ledger: Ledger;
  readonly plan: Plan;
  readonly target: VettedTarget;
  /** How long after `startAt` the clock started (0 without `startAt`, or when on time). */
  readonly startLateMs: number;
  /** A snapshot of the run so far. */
  progress(): Progress;
  /** Stops the run now; in-flight requests are recorded as aborted. */
  abort(reason?: string): void;
  /**
   * Ends the run early but gracefully: no new iteration starts, those running finish their steps
   * (bounded by the executor's gracefulStop, then aborted). A flow that opened something (a session)
   * gets to close it. Not an abort: the run's verdict is not made INCONCLUSIVE by it.
   */
  stop(reason?: string): void;
  /** Settles when the run has stopped and every connection is closed. */
  readonly result: Promise<LoadResult>;
}

interface Iteration {
  flow: CompiledFlow;
  step: number;
  ctx: IterationContext<unknown>;
  /** VU index in the closed model, -1 in the open model. */
  vu: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_REQUESTS = 5_000_000;
/** The pump issues at most this many late arrivals before yielding to I/O. */
const PUMP_BATCH = 512;

/** Vets the target, plans the executor and starts the run. Configuration errors reject here. */
export async function startLoad(options: LoadOptions): Promise<LoadRun> {
  const timeoutMs = options.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(options.timeout);
  if (!(timeoutMs > 0)) throw new RangeError('timeout must be > 0');
  const plan = planExecutor(options.executor, { timeoutMs });
  const thresholds = parseThresholds(options.thresholds);
  if (options.maxScheduleDelay !== undefined) parseDuration(options.maxScheduleDelay);
  const target = await vetTarget(options.url, options.target);
  checkRemoteLoad(
    target,
    plan.model === 'open' ? { model: 'open', peakRate: plan.peakRate } : { model: 'closed' },
    options.target,
  );
  const numbers = options.iterationNumbers ?? { offset: 0, stride: 1 };
  if (!Number.isInteger(numbers.offset) || numbers.offset < 0 || !Number.isInteger(numbers.stride) || numbers.stride < 1) {
    throw new RangeError('iterationNumbers: offset must be a whole number >= 0 and stride >= 1');
  }
  await warmUpHttpClient();
  const startLateMs = options.startAt === undefined ? 0 : await waitForInstant(options.startAt, options.signal);
  const engine = new LoadEngine(options, plan, target, thresholds, timeoutMs, startLateMs);
  engine.start();
  return engine.handle;
}

const epochNow = () => performance.timeOrigin + performance.now();

/**
 * Waits until the wall clock reaches `at` (epoch ms): a timer to within 2 ms of it, then a short spin,
 * so that agents started by different processes begin within about a millisecond of each other.
 * Returns how late it is when it returns (0 when on time). An abort ends the wait early.
 */
async function waitForInstant(at: number, signal?: AbortSignal): Promise<number> {
  if (!Number.isFinite(at)) throw new RangeError('startAt must be an epoch time in milliseconds');
  const ahead = at - epochNow();
  if (ahead > 24 * 3_600_000) throw new RangeError(`startAt is ${Math.round(ahead / 1000)} s away: more than a day`);
  if (ahead > 2) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ahead - 2);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
  while (!signal?.aborted && epochNow() < at) {
    /* the last 2 ms: spin */
  }
  return Math.max(0, epochNow() - at);
}

/** Starts a run and waits for its result. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  return await (
    await startLoad(options)
  ).result;
}

class LoadEngine implements ExchangeOwner {
  readonly ledger: Ledger;
  readonly backendHeader: string | null;
  readonly versionHeader: string | null;
  readonly plan: Plan;
  readonly target: VettedTarget;
  readonly handle: LoadRun;
  readonly #options: LoadOptions;
  readonly #timeoutMs: number;
  readonly #maxRequests: number;
  /** The main pool first, then the scenario's own pools; connections are numbered across them. */
  readonly #pools: ConnectionPool[];
  /** Pool index of every connection number. */
  readonly #poolOf: Uint8Array;
  readonly #pick: () => CompiledFlow;
  readonly #stats = new RequestStatistics();
  readonly #thresholds: ThresholdStatistics[];
  readonly #iterationOffset: number;
  readonly #iterationStride: number;
  readonly #ndjson: LedgerNdjsonWriter | null;
  readonly #t0: number;

  /** Exchanges in issue order, for timeouts and aborts. */
  readonly #active = new RingQueue<Exchange>(1024);
  /** Rows recorded since the last ingest (fed to statistics and NDJSON). */
  #recorded: number[] = [];
  readonly #thinkTimers = new Map<ReturnType<typeof setTimeout>, Iteration>();

  #iterationSeq = 0;
  #activeIterations = 0;
  #iterationsCompleted = 0;
  #iterationsFailed = 0;
  #iterationsDropped = 0;
  #iterationsInterrupted = 0;
  #inFlight = 0;

  // open model
  #arrivalIndex = 0;
  #nextDue = Infinity;
  #pumpTimer: ReturnType<typeof setTimeout> | null = null;
  #pumpTimerDue = NaN;
  #pumpImmediate: ReturnType<typeof setImmediate> | null = null;
  // closed model
  #vuRunning: boolean[] = [];
  #vuTarget = 0;
  #vuTimer: ReturnType<typeof setInterval> | null = null;

  #phase: 'running' | 'stopping' | 'done' = 'running';
  #schedulingEndedAt = NaN;
  #stopReason = '';
  #abortReason: string | null = null;
  #abortedByThreshold = false;
  #aborting = false;
  #lastIssuedAt = NaN;
  #endTimer: ReturnType<typeof setTimeout> | null = null;
  #graceTimer: ReturnType<typeof setTimeout> | null = null;
  #sweepTimer: ReturnType<typeof setInterval> | null = null;
  #ingestTimer: ReturnType<typeof setInterval> | null = null;
  #progressTimer: ReturnType<typeof setInterval> | null = null;
  #lastProgress: Progress | null = null;
  #finishing = false;
  #resolve!: (r: LoadResult) => void;
  #reject!: (e: unknown) => void;
  #removeAbortListener: (() => void) | null = null;

  constructor(
    options: LoadOptions,
    plan: Plan,
    target: VettedTarget,
    thresholds: Threshold[],
    timeoutMs: number,
    startLateMs = 0,
  ) {
    this.#options = options;
    this.plan = plan;
    this.target = target;
    this.#timeoutMs = timeoutMs;
    this.#maxRequests = options.maxRequests ?? DEFAULT_MAX_REQUESTS;
    if (!(this.#maxRequests >= 1)) throw new RangeError('maxRequests must be >= 1');
    this.#t0 = performance.now();
    this.ledger = new Ledger(this.#t0);
    this.backendHeader = options.identityHeaders?.backend?.toLowerCase() ?? null;
    this.versionHeader = options.identityHeaders?.version?.toLowerCase() ?? null;
    const scenario =
      options.scenario ?? singleRequest({ path: target.url.pathname + target.url.search, name: `GET ${target.url.pathname}` });
    const compiled = compileScenario(scenario, this.ledger.names, target.hostHeader, this.ledger.kinds);
    this.#pick = compiled.pick;
    const connections =
      options.connections ?? (plan.model === 'open' ? Math.min(32, plan.maxVUs) : Math.min(1024, plan.vus.peakVUs));
    if (compiled.pools.length > 255) throw new RangeError('a scenario may declare at most 254 connection pools');
    this.#pools = [];
    let first = 0;
    for (const p of compiled.pools) {
      const pool = new ConnectionPool({
        origin: target.origin,
        connections: p.name === '' ? connections : p.connections,
        servername: target.servername,
        rejectUnauthorized: options.rejectUnauthorized,
        connectTimeoutMs: Math.min(timeoutMs, 10_000),
        idleTimeoutMs: timeoutMs + 5_000,
        firstIndex: first,
        watchIdle: p.watchIdle,
      });
      first += pool.size;
      this.#pools.push(pool);
    }
    this.#poolOf = new Uint8Array(first);
    this.#pools.forEach((p, k) => this.#poolOf.fill(k, p.first, p.first + p.size));
    this.#thresholds = thresholdStatistics(thresholds, this.#stats);
    this.#iterationOffset = options.iterationNumbers?.offset ?? 0;
    this.#iterationStride = options.iterationNumbers?.stride ?? 1;
    this.#ndjson = options.ndjson ? new LedgerNdjsonWriter(this.ledger, options.ndjson) : null;
    const result = new Promise<LoadResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    result.catch(() => {}); // the caller sees the rejection through `result`
    this.handle = {
      ledger: this.ledger,
      plan,
      target,
      startLateMs,
      progress: () => {
        if (this.#phase !== 'done') this.#ingest();
        return this.#snapshot(false);
      },
      abort: (reason?: string) => this.abort(reason ?? 'aborted by caller'),
      stop: (reason?: string) => this.#endScheduling(reason ?? 'stopped by caller'),
      result,
      [Symbol.asyncDispose]: async () => {
        this.abort('disposed');
        await result.catch(() => {});
      },
    };
  }

  now(): number {
    return performance.now() - this.#t0;
  }

  release(connection: number): void {
    this.#pools[this.#poolOf[connection]].release(connection);
  }

  localPort(connection: number): number {
    return connection >= 0 ? this.#pools[this.#poolOf[connection]].localPort(connection) : 0;
  }

  connectionUsed(row: number, connection: number): void {
    const pool = this.#pools[this.#poolOf[connection]];
    const before = pool.use(connection);
    this.ledger.markConnection(
      row,
      before === 0 ? ConnectionUse.new : ConnectionUse.reused,
      pool.socketAge(connection, performance.now()),
    );
  }

  connectionUnwritten(row: number, _connection: number): void {
    // It waited for a connection being opened for it (undici writes at once on a live idle one).
    this.ledger.markConnection(row, ConnectionUse.new, NaN);
  }

  start(): void {
    const signal = this.#options.signal;
    if (signal) {
      const onAbort = () => this.abort(`signal: ${String(signal.reason ?? 'aborted')}`);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#removeAbortListener = () => signal.removeEventListener('abort', onAbort);
      if (signal.aborted) queueMicrotask(onAbort);
    }
    const sweepMs = Math.max(5, Math.min(100, this.#timeoutMs / 20));
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepMs);
    this.#ingestTimer = setInterval(() => this.#ingest(), 200);
    if (this.#options.onProgress) {
      this.#progressTimer = setInterval(() => this.#report(), this.#options.progressIntervalMs ?? 1000);
    }
    // The closed model ends on this timer; the open model's schedule ends by itself, and this timer
    // (a second later) only bounds a run whose engine fell far behind.
    const endAfter = this.plan.model === 'open' ? this.plan.durationMs + 1000 : this.plan.durationMs;
    this.#endTimer = setTimeout(() => this.#endScheduling('duration reached'), endAfter);
    if (this.plan.model === 'open') {
      this.#nextDue = this.plan.arrivals.timeOf(0);
      this.#pump();
    } else {
      this.#vuRunning = new Array(this.plan.vus.peakVUs).fill(false);
      this.#adjustVUs();
      if (this.plan.executor === 'ramping-vus') this.#vuTimer = setInterval(() => this.#adjustVUs(), 50);
    }
  }

  // ---------------------------------------------------------------- open model

  #pump = (): void => {
    this.#pumpImmediate = null;
    if (this.#phase !== 'running') return;
    const plan = this.plan as OpenPlan;
    const now = this.now();
    let issued = 0;
    while (this.#nextDue <= now) {
      if (this.ledger.length >= this.#maxRequests) {
        this.#endScheduling('request cap reached');
        return;
      }
      if (issued++ === PUMP_BATCH) {
        // Far behind (the process was stalled): let I/O run, then continue.
        this.#pumpImmediate = setImmediate(this.#pump);
        return;
      }
      const due = this.#nextDue;
      const flow = this.#pick();
      const iteration = this.#nextIteration();
      const t = issued === 1 ? now : this.now();
      if (this.#activeIterations >= plan.maxVUs) {
        this.#iterationsDropped++;
        this.#recorded.push(this.ledger.addDropped(due, t, flow.steps[0].nameId, iteration));
      } else {
        this.#startIteration(flow, iteration, due, t, -1);
      }
      this.#nextDue = plan.arrivals.timeOf(++this.#arrivalIndex);
    }
    if (this.#nextDue === Infinity) {
      this.#endScheduling('schedule complete');
      return;
    }
    this.#armPump();
  };

  #armPump(): void {
    const delay = this.#nextDue - this.now();
    if (delay <= 0 || (this.#options.precision === 'spin' && delay < 1.5)) {
      if (!this.#pumpImmediate) this.#pumpImmediate = setImmediate(this.#pump);
      return;
    }
    // Due times only grow: a timer armed for an earlier due time fires no later than needed (the pump
    // then re-arms), so keep it instead of replacing a timer on every pump (at high rates the pump
    // runs after every response, and replacing the timer each time cost a timer per request).
    if (this.#pumpTimer && this.#pumpTimerDue <= this.#nextDue) return;
    if (this.#pumpTimer) clearTimeout(this.#pumpTimer);
    this.#pumpTimerDue = this.#nextDue;
    const wait = this.#options.precision === 'spin' ? delay - 1 : delay;
    this.#pumpTimer = setTimeout(
      () => {
        this.#pumpTimer = null;
        this.#pump();
      },
      Math.max(1, Math.floor(wait)),
    );
  }

  // ---------------------------------------------------------------- closed model

  #adjustVUs(): void {
    if (this.#phase !== 'running') return;
    const plan = this.plan as ClosedPlan;
    this.#vuTarget = plan.vus.vusAt(this.now());
    const now = this.now();
    for (let vu = 0; vu < this.#vuTarget; vu++) {
      if (this.#vuRunning[vu]) continue;
      if (this.ledger.length >= this.#maxRequests) {
        this.#endScheduling('request cap reached');
        return;
      }
      this.#vuRunning[vu] = true;
      this.#startIteration(this.#pick(), this.#nextIteration(), now, now, vu);
    }
  }

  // ---------------------------------------------------------------- iterations

  /** The next iteration's number (`#iterationSeq` counts them). */
  #nextIteration(): number {
    return this.#iterationOffset + this.#iterationStride * this.#iterationSeq++;
  }

  #startIteration(flow: CompiledFlow, iteration: number, scheduledAt: number, now: number, vu: number): void {
    this.#activeIterations++;
    let data: unknown;
    try {
      data = flow.flow.data?.(iteration);
    } catch (err) {
      this.#scenarioError(err);
      data = undefined;
    }
    const it: Iteration = { flow, step: 0, ctx: { iteration, data, vars: {} }, vu };
    this.#issue(it, scheduledAt, now);
  }

  #issue(it: Iteration, scheduledAt: number, now: number): void {
    const step = it.flow.steps[it.step];
    const row = this.ledger.add(scheduledAt, now, step.nameId, it.ctx.iteration);
    this.#lastIssuedAt = now;
    let ex: Exchange;
    try {
      ex = new Exchange(this, row, step, it.ctx, now, it);
    } catch (err) {
      // The step's path/headers/body function threw: a scenario bug, recorded against this request.
      // The iteration ends on the next turn of the event loop, so a VU that keeps hitting the bug
      // cannot recurse or starve the timers that end the run.
      this.ledger.finish(row, now, Outcome.failed, 0, ErrorClass.other, this.ledger.errorCodes.id('SCENARIO_ERROR'), 0, 0);
      this.#recorded.push(row);
      this.#scenarioError(err);
      setImmediate(() => this.#endIteration(it, false));
      return;
    }
    this.#inFlight++;
    this.#active.push(ex);
    this.#pools[it.flow.pool].submit(ex);
  }

  recorded(ex: Exchange, outcome: OutcomeId): void {
    this.#inFlight--;
    this.#recorded.push(ex.row);
    const it = ex.iteration as Iteration;
    const more = it.step + 1 < it.flow.steps.length;
    const think = ex.step.step.thinkTimeMs ?? 0;
    if (outcome !== Outcome.succeeded) {
      // Later steps depend on this one (captured values): the iteration ends here.
      this.#endIteration(it, false);
    } else if (this.#aborting) {
      if (more) this.#iterationsInterrupted++;
      this.#endIteration(it, !more, more);
    } else if (think > 0) {
      const resumeAt = this.now() + think;
      const timer = setTimeout(() => {
        this.#thinkTimers.delete(timer);
        this.#continue(it, more, resumeAt);
      }, think);
      this.#thinkTimers.set(timer, it);
    } else {
      this.#continue(it, more, this.now());
    }
    if (this.plan.model === 'open' && this.#phase === 'running' && !this.#pumpImmediate) {
      this.#pumpImmediate = setImmediate(this.#pump);
    }
  }

  /** After a successful step (and its think time): issue the next step, or end the iteration. */
  #continue(it: Iteration, more: boolean, scheduledAt: number): void {
    if (!more) {
      this.#endIteration(it, true);
      return;
    }
    if (this.#aborting || this.ledger.length >= this.#maxRequests) {
      this.#iterationsInterrupted++;
      this.#endIteration(it, false, true);
      return;
    }
    it.step++;
    this.#issue(it, scheduledAt, this.now());
  }

  #endIteration(it: Iteration, ok: boolean, counted = false): void {
    this.#activeIterations--;
    if (!counted) {
      if (ok) this.#iterationsCompleted++;
      else this.#iterationsFailed++;
    }
    if (it.vu >= 0) {
      // Closed model: the VU goes round again unless the run is ending or the VU was ramped away.
      if (this.#phase === 'running' && it.vu < this.#vuTarget && this.ledger.length < this.#maxRequests) {
        const now = this.now();
        this.#startIteration(this.#pick(), this.#nextIteration(), now, now, it.vu);
        return;
      }
      this.#vuRunning[it.vu] = false;
      if (this.#phase === 'running' && this.ledger.length >= this.#maxRequests) this.#endScheduling('request cap reached');
    }
    if (this.#phase === 'stopping' && this.#activeIterations === 0) this.#finishSoon();
  }

  #scenarioErrors = 0;

  /** Warns once per run (the ledger counts every occurrence as SCENARIO_ERROR). */
  #scenarioError(err: unknown): void {
    if (this.#scenarioErrors++ === 0)
      process.emitWarning(`load scenario (reported once per run): ${(err as Error)?.stack ?? String(err)}`);
  }

  // ---------------------------------------------------------------- timeouts, ingest, progress

  #sweep(): void {
    const deadline = this.now() - this.#timeoutMs;
    for (let ex = this.#active.peek(); ex !== undefined; ex = this.#active.peek()) {
      if (ex.recorded) {
        this.#active.shift();
        continue;
      }
      if (ex.issuedAt > deadline) break;
      this.#active.shift();
      ex.timeout();
    }
    for (const p of this.#pools) p.pruneWaiting();
  }

  #ingest(): void {
    const rows = this.#recorded;
    if (rows.length === 0) return;
    this.#recorded = [];
    ingestRows(this.ledger, rows, this.#stats, this.#thresholds);
    this.#ndjson?.write(rows);
    this.#checkAbortThresholds();
  }

  #checkAbortThresholds(): void {
    if (this.#phase !== 'running') return;
    const elapsed = this.now();
    for (const { t, stats } of this.#thresholds) {
      if (!t.abortOnFail || elapsed < t.delayAbortEvalMs) continue;
      const r = evaluate(t, stats, this.#iterationsCompleted + this.#iterationsFailed, elapsed);
      if (r.ok === false) {
        this.abort(`threshold ${t.metric}: ${t.expression} breached (observed ${r.observed})`, true);
        return;
      }
    }
  }

  #snapshot(takeRecent: boolean): Progress {
    const s = this.#stats;
    const elapsedMs = this.#phase === 'done' && this.#lastProgress ? this.#lastProgress.elapsedMs : this.now();
    let recentRate = 0,
      recentFailed = 0,
      recentP99: number | null = null;
    if (takeRecent) {
      const prev = this.#lastProgress?.elapsedMs ?? 0;
      const recent = s.takeRecent();
      recentRate = recent.ended / (Math.max(1, elapsedMs - prev) / 1000);
      recentFailed = recent.failed;
      recentP99 = recent.histogram.totalCount ? recent.histogram.getValueAtPercentile(99) / 1000 : null;
    } else if (this.#lastProgress) {
      ({ recentRate, recentFailed, recentP99 } = this.#lastProgress);
    }
    const open = this.plan.model === 'open';
    return {
      elapsedMs,
      phase: this.#phase,
      targetRate: open ? (this.plan as OpenPlan).arrivals.rateAt(elapsedMs) : null,
      targetVUs: open ? null : this.#vuTarget,
      scheduled: this.ledger.length,
      succeeded: s.succeeded,
      failed: s.failed,
      dropped: s.dropped,
      inFlight: this.#inFlight,
      waiting: this.#waiting(),
      activeIterations: this.#activeIterations,
      recentRate,
      recentFailed,
      recentP99,
      p99: s.duration.totalCount ? s.duration.getValueAtPercentile(99) / 1000 : null,
    };
  }

  #waiting(): number {
    let n = 0;
    for (const p of this.#pools) n += p.waiting;
    return n;
  }

  #report(): void {
    this.#ingest();
    const p = this.#snapshot(true);
    this.#lastProgress = p;
    try {
      this.#options.onProgress?.(p);
    } catch (err) {
      process.emitWarning(`load onProgress callback threw: ${(err as Error).message}`);
    }
  }

  // ---------------------------------------------------------------- stopping

  #endScheduling(reason: string): void {
    if (this.#phase !== 'running') return;
    this.#phase = 'stopping';
    this.#stopReason = reason;
    this.#schedulingEndedAt = this.now();
    if (this.#pumpTimer) clearTimeout(this.#pumpTimer);
    if (this.#pumpImmediate) clearImmediate(this.#pumpImmediate);
    if (this.#vuTimer) clearInterval(this.#vuTimer);
    if (this.#endTimer) clearTimeout(this.#endTimer);
    this.#pumpTimer = this.#pumpImmediate = this.#vuTimer = this.#endTimer = null;
    if (this.#activeIterations === 0) {
      this.#finishSoon();
      return;
    }
    this.#graceTimer = setTimeout(() => this.#abortInFlight(), this.plan.gracefulStopMs);
  }

  abort(reason: string, byThreshold = false): void {
    if (this.#phase === 'done' || this.#abortReason !== null) return;
    this.#abortReason = reason;
    this.#abortedByThreshold = byThreshold;
    this.#endScheduling(`aborted: ${reason}`);
    this.#abortInFlight();
  }

  #abortInFlight(): void {
    this.#aborting = true;
    for (const [timer, it] of this.#thinkTimers) {
      clearTimeout(timer);
      this.#iterationsInterrupted++;
      this.#endIteration(it, false, true);
    }
    this.#thinkTimers.clear();
    for (let ex = this.#active.shift(); ex !== undefined; ex = this.#active.shift()) ex.abort();
    if (this.#activeIterations === 0) this.#finishSoon();
  }

  #finishSoon(): void {
    if (this.#finishing) return;
    this.#finishing = true;
    // Leave the undici callback we may be in before tearing the connections down.
    setImmediate(() => {
      this.#finish().catch((err) => this.#reject(err));
    });
  }

  async #finish(): Promise<void> {
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    for (const t of [this.#sweepTimer, this.#ingestTimer, this.#progressTimer]) if (t) clearInterval(t);
    this.#removeAbortListener?.();
    const endedAt = this.now();
    this.#ingest();
    await Promise.all(this.#pools.map((p) => p.destroy()));
    let ndjsonError: unknown = null;
    await this.#ndjson?.close().catch((err) => {
      ndjsonError = err;
    });
    const lastProgress = this.#snapshot(true);
    this.#phase = 'done';
    this.#lastProgress = { ...lastProgress, phase: 'done', elapsedMs: endedAt };
    if (this.#options.onProgress) {
      try {
        this.#options.onProgress(this.#lastProgress);
      } catch {
        /* reported on ticks */
      }
    }
    const iterations = {
      started: this.#iterationSeq - this.#iterationsDropped,
      completed: this.#iterationsCompleted,
      failed: this.#iterationsFailed,
      interrupted: this.#iterationsInterrupted,
      dropped: this.#iterationsDropped,
    };
    const {
      summary,
      thresholds: thresholdResults,
      assessment,
    } = judgeRun({
      ledger: this.ledger,
      stats: this.#stats,
      plan: this.plan,
      target: this.target,
      iterations,
      connections: this.#pools.reduce((n, p) => n + p.size, 0),
      timeoutMs: this.#timeoutMs,
      maxRequests: this.#maxRequests,
      schedulingEndedAt: this.#schedulingEndedAt,
      lastIssuedAt: this.#lastIssuedAt,
      endedAt,
      stopReason: this.#stopReason,
      abortReason: this.#abortReason,
      ndjsonRows: this.#ndjson?.rowsWritten ?? null,
      thresholds: this.#thresholds,
      minRequests: this.#options.minRequests ?? 100,
      abortedByThreshold: this.#abortedByThreshold,
      maxScheduleDelayMs:
        this.#options.maxScheduleDelay === undefined ? undefined : parseDuration(this.#options.maxScheduleDelay),
    });
    if (ndjsonError) assessment.reasons.push(`the NDJSON ledger could not be written: ${(ndjsonError as Error).message}`);
    this.#resolve({ ledger: this.ledger, summary, thresholds: thresholdResults, assessment });
  }
}
