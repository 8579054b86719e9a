/**
 * The suite runner: a list of checks run in order against one service, each with a latency budget,
 * recorded with its verdict, evidence, duration and attempts. It knows no app: the checks come from
 * an app profile (`apps/<app>/smoke.ts`) or from `probes/`.
 *
 * - A check returns PASS/FAIL/INCONCLUSIVE with one sentence of evidence, or throws: an
 *   {@link UnreachableError} (nothing answered) is ERROR and stops the suite (every later check is
 *   ERROR "not run"), a {@link CheckFailed}, a timeout or a broken connection is FAIL, anything else
 *   is ERROR (a bug, said as such). Never PASS by default.
 * - Each request of a check must end within the check's budget; the slowest one is the evidence.
 * - `retries` re-runs a check that did not pass up to that many more times, and says so: a check
 *   that passed on its second attempt reads "passed on retry 1" in its evidence and observed values.
 * - `writes: true` marks checks that change the service's state; `readOnly` leaves them out (and
 *   the record says which).
 * - The cleanup registry always runs, in reverse order, after the last check or when the signal
 *   fires (SIGINT/SIGTERM from the command), each step bounded in time and with its own signal, so
 *   what a check acquired is given back even when the run is interrupted.
 * - `secrets` (a token) are redacted from every string the runner returns, and from every body
 *   and recorded header as the client reads it, before any check can cut it (`./redact.ts`).
 */
import { worst, type Verdict } from '../verdict.ts';
import { ConnectionError, HttpClient, RequestTimeoutError, UnreachableError, type HttpExchange } from './http.ts';
import { redactDeep, redactor } from './redact.ts';
import { safeText } from '../safe-text.ts';

export { redactDeep, redactor } from './redact.ts';

export type Scalar = number | string | boolean | null;

export interface CheckOutcome {
  verdict: 'PASS' | 'FAIL' | 'INCONCLUSIVE';
  /** One sentence: what was observed against what was required. */
  evidence: string;
  observed?: Record<string, Scalar>;
}

export const pass = (evidence: string, observed?: Record<string, Scalar>): CheckOutcome => ({
  verdict: 'PASS',
  evidence,
  observed,
});
export const fail = (evidence: string, observed?: Record<string, Scalar>): CheckOutcome => ({
  verdict: 'FAIL',
  evidence,
  observed,
});
export const inconclusive = (evidence: string, observed?: Record<string, Scalar>): CheckOutcome => ({
  verdict: 'INCONCLUSIVE',
  evidence,
  observed,
});

/** Thrown by a check to FAIL with this evidence (an assertion about what the service answered). */
export class CheckFailed extends Error {
  override name = 'CheckFailed';
  readonly observed?: Record<string, Scalar>;
  constructor(evidence: string, observed?: Record<string, Scalar>) {
    super(evidence);
    this.observed = observed;
  }
}

export interface CheckContext {
  /** A client for the service's base URL; every request is recorded under this check. */
  http: HttpClient;
  /** The run's signal (aborted on SIGINT/SIGTERM). */
  signal: AbortSignal;
  /** Register what must be undone (a session to release): it runs whatever happens. */
  cleanup: CleanupRegistry;
  /** 1 for the first attempt, 2 for the first retry, ... */
  attempt: number;
  /** Values checks hand to later checks (e.g. the session an acquire opened). */
  state: Map<string, unknown>;
  /** Every exchange of the run so far, every check's. */
  exchanges(): readonly HttpExchange[];
  /** The run's secrets out of a string (for a client a check makes itself, e.g. in a cleanup step). */
  redact: (s: string) => string;
}

export interface SuiteCheck {
  name: string;
  /** What it verifies, one sentence. */
  verifies: string;
  /** It changes the service's state (left out by read-only runs). */
  writes?: boolean;
  /** Every request of the check must be answered within this many ms. */
  budgetMs: number;
  /** Why this check cannot run in this run (e.g. no token was given): left out, not judged, and named in the record. */
  skip?: string;
  /** Checks that must have passed first; if one did not, this check is not run (INCONCLUSIVE, saying why). */
  needs?: string[];
  run(ctx: CheckContext): Promise<CheckOutcome>;
}

export interface CheckResult {
  name: string;
  verifies: string;
  writes: boolean;
  verdict: Verdict;
  evidence: string;
  observed: Record<string, Scalar>;
  budgetMs: number;
  /** The slowest request of the deciding attempt, ms (null when it sent none). */
  slowestMs: number | null;
  /** Wall time of all attempts, ms. */
  durationMs: number;
  attempts: number;
  /** The retry that passed (1 = the first retry), or null. */
  passedOnRetry: number | null;
  startedAt: number;
  endedAt: number;
}

export interface CleanupResult {
  label: string;
  ok: boolean;
  /** What the step said (e.g. "released session ...") or why it failed. */
  detail: string;
  durationMs: number;
}

type CleanupFn = (signal: AbortSignal) => Promise<string | void>;

/** Undo steps registered while checks run; {@link CleanupRegistry.runAll} runs those still registered, newest first. */
export class CleanupRegistry {
  readonly #steps = new Map<number, { label: string; fn: CleanupFn }>();
  #next = 0;

  /** Registers a step; the returned function unregisters it (the check undid it itself). */
  add(label: string, fn: CleanupFn): () => void {
    const id = this.#next++;
    this.#steps.set(id, { label, fn });
    return () => {
      this.#steps.delete(id);
    };
  }

  get pending(): number {
    return this.#steps.size;
  }

  /** Runs every registered step once, newest first, each bounded by `stepTimeoutMs` and with its own signal. Never throws. */
  async runAll(stepTimeoutMs = 10_000): Promise<CleanupResult[]> {
    const steps = [...this.#steps.entries()].reverse();
    this.#steps.clear();
    const out: CleanupResult[] = [];
    for (const [, s] of steps) {
      const t0 = performance.now();
      const signal = AbortSignal.timeout(stepTimeoutMs);
      try {
        const said = await Promise.race([
          s.fn(signal),
          new Promise<never>((_, reject) =>
            signal.addEventListener('abort', () => reject(new Error(`did not finish within ${stepTimeoutMs} ms`)), {
              once: true,
            }),
          ),
        ]);
        out.push({ label: s.label, ok: true, detail: said || 'done', durationMs: performance.now() - t0 });
      } catch (err) {
        out.push({
          label: s.label,
          ok: false,
          detail: (err as Error)?.message ?? String(err),
          durationMs: performance.now() - t0,
        });
      }
    }
    return out;
  }
}

export interface SuiteOptions {
  /** The suite's name in the record, e.g. `smoke`. */
  name: string;
  description: string;
  checks: SuiteCheck[];
  /** Base URL of the service. */
  url: string;
  /** Leave out the checks that write. */
  readOnly?: boolean;
  /** Re-run a check that did not pass up to this many more times. Default 0. */
  retries?: number;
  /** Aborted by the command on SIGINT/SIGTERM. */
  signal?: AbortSignal;
  /** Strings that must never appear in anything the runner returns (a bearer token). */
  secrets?: string[];
  /** Per-request timeout, ms. Default: each check's budget × 4, at least 5 s. */
  requestTimeoutMs?: number;
  /** Response headers recorded per request (e.g. the app version header). */
  recordHeaders?: string[];
  /** The header that names the app version (for the record's answers per version). */
  versionHeader?: string;
  /** Progress lines (already redacted and sanitised). */
  say?: (line: string) => void;
  /** Pause between retries, ms. Default 500. */
  retryDelayMs?: number;
  /** Bound of each cleanup step, ms. Default 10 s. */
  cleanupStepTimeoutMs?: number;
}

export interface SuiteRun {
  name: string;
  description: string;
  url: string;
  checks: CheckResult[];
  /** Checks left out (read-only, or their own `skip`), with why. */
  leftOut: Array<{ name: string; why: string }>;
  cleanup: CleanupResult[];
  exchanges: HttpExchange[];
  /** The run broke or was interrupted (the checks say where), else null. */
  error: string | null;
  verdict: Verdict;
  startedAt: number;
  endedAt: number;
  versionHeader: string | null;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/** Runs the suite; resolves with every check's result and the cleanup's (never rejects for a check's failure). */
export async function runSuite(o: SuiteOptions): Promise<SuiteRun> {
  const startedAt = Date.now();
  const signal = o.signal ?? new AbortController().signal;
  const redact = redactor(o.secrets ?? []);
  // What the service answered reaches these lines and the record: redacted, then sanitised (../safe-text.ts).
  const say = (m: string) => o.say?.(safeText(redact(m)));
  const retries = Math.max(0, Math.floor(o.retries ?? 0));
  const leftOut = o.checks.flatMap((c) =>
    c.skip ? [{ name: c.name, why: c.skip }] : o.readOnly && c.writes ? [{ name: c.name, why: 'read-only' }] : [],
  );
  const checks = o.checks.filter((c) => !leftOut.some((l) => l.name === c.name));
  const exchanges: HttpExchange[] = [];
  const cleanup = new CleanupRegistry();
  const state = new Map<string, unknown>();
  const results: CheckResult[] = [];
  let error: string | null = null;
  let unreachable: string | null = null;

  const interrupted = () => {
    const why = String((signal.reason as Error)?.message ?? signal.reason ?? 'aborted');
    return why.startsWith('interrupted') ? why : `interrupted: ${why}`;
  };
  for (const check of checks) {
    const t0 = Date.now();
    const notRun = (verdict: Verdict, why: string): CheckResult => ({
      name: check.name,
      verifies: check.verifies,
      writes: !!check.writes,
      verdict,
      evidence: why,
      observed: { run: false },
      budgetMs: check.budgetMs,
      slowestMs: null,
      durationMs: 0,
      attempts: 0,
      passedOnRetry: null,
      startedAt: t0,
      endedAt: t0,
    });
    if (signal.aborted) {
      results.push(notRun('ERROR', `not run: ${interrupted()}`));
      continue;
    }
    if (unreachable) {
      results.push(notRun('ERROR', `not run: ${unreachable}`));
      continue;
    }
    const missing = (check.needs ?? []).filter((n) => results.find((r) => r.name === n)?.verdict !== 'PASS');
    if (missing.length) {
      results.push(notRun('INCONCLUSIVE', `not run: it needs ${missing.join(', ')} to pass first`));
      continue;
    }

    const failures: string[] = [];
    let last:
      | {
          outcome: CheckOutcome | null;
          verdict: Verdict;
          evidence: string;
          observed: Record<string, Scalar>;
          slowest: number | null;
        }
      | undefined;
    let ran = 0;
    let lastUnreachable = false;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        say(`${check.name}: retry ${attempt} of ${retries}`);
        await sleep(o.retryDelayMs ?? 500, signal);
      }
      if (signal.aborted) break;
      const mine: HttpExchange[] = [];
      const http = new HttpClient({
        baseUrl: o.url,
        signal,
        recordHeaders: o.recordHeaders,
        timeoutMs: o.requestTimeoutMs ?? Math.max(5000, check.budgetMs * 4),
        redact,
        onExchange: (e) => {
          mine.push(e);
          exchanges.push(e);
        },
      });
      http.check = check.name;
      let outcome: CheckOutcome | null = null;
      let verdict: Verdict;
      let evidence: string;
      let observed: Record<string, Scalar> = {};
      let wasUnreachable = false;
      ran++;
      try {
        outcome = await check.run({ http, signal, cleanup, attempt: attempt + 1, state, exchanges: () => exchanges, redact });
        ({ verdict, evidence } = outcome);
        observed = { ...outcome.observed };
      } catch (err) {
        if (signal.aborted) {
          verdict = 'ERROR';
          evidence = interrupted();
        } else if (err instanceof UnreachableError) {
          verdict = 'ERROR';
          evidence = err.message;
          wasUnreachable = true;
        } else if (err instanceof CheckFailed) {
          verdict = 'FAIL';
          evidence = err.message;
          observed = { ...err.observed };
        } else if (err instanceof RequestTimeoutError || err instanceof ConnectionError) {
          verdict = 'FAIL';
          evidence = err.message;
        } else {
          verdict = 'ERROR';
          evidence = `the check broke: ${(err as Error)?.stack?.split('\n').slice(0, 2).join(' ') ?? String(err)}`;
        }
      }
      const slowest = mine.length ? Math.max(...mine.map((e) => e.durationMs)) : null;
      if (verdict === 'PASS' && slowest !== null && slowest > check.budgetMs) {
        const slow = mine.find((e) => e.durationMs === slowest)!;
        verdict = 'FAIL';
        evidence = `${evidence}, but ${slow.method} ${slow.path} took ${slowest.toFixed(0)} ms (budget ${check.budgetMs} ms)`;
      }
      last = { outcome, verdict, evidence, observed, slowest };
      lastUnreachable = wasUnreachable;
      if (verdict === 'PASS' || verdict === 'INCONCLUSIVE') break;
      failures.push(`attempt ${attempt + 1}: ${verdict} ${evidence}`);
      if (signal.aborted) break;
    }
    const attempts = ran;
    // Nothing has ever answered: the URL is unreachable, and running the other checks is pointless.
    if (last && lastUnreachable && !exchanges.some((e) => e.status > 0)) unreachable = last.evidence;
    const endedAt = Date.now();
    if (!last) {
      results.push({ ...notRun('ERROR', `not run: ${interrupted()}`), startedAt: t0, endedAt });
      continue;
    }
    const passedOnRetry = last.verdict === 'PASS' && attempts > 1 ? attempts - 1 : null;
    let evidence = last.evidence;
    if (passedOnRetry !== null)
      evidence = `passed on retry ${passedOnRetry} (of ${retries} allowed): ${evidence}; earlier: ${failures.join('; ')}`;
    else if (last.verdict !== 'PASS' && attempts > 1)
      evidence = `${evidence} (failed ${attempts} attempts: ${failures.slice(0, -1).join('; ')})`;
    results.push({
      name: check.name,
      verifies: check.verifies,
      writes: !!check.writes,
      verdict: last.verdict,
      evidence,
      observed: last.observed,
      budgetMs: check.budgetMs,
      slowestMs: last.slowest,
      durationMs: endedAt - t0,
      attempts,
      passedOnRetry,
      startedAt: t0,
      endedAt,
    });
    say(`${check.name}: ${last.verdict}${passedOnRetry ? ` (passed on retry ${passedOnRetry})` : ''} ${evidence}`);
  }

  if (signal.aborted) error = interrupted();
  else if (unreachable) error = unreachable;
  if (cleanup.pending) say(`cleanup: ${cleanup.pending} step${cleanup.pending === 1 ? '' : 's'}`);
  const cleaned = await cleanup.runAll(o.cleanupStepTimeoutMs);
  for (const c of cleaned) say(`cleanup ${c.label}: ${c.ok ? 'ok' : 'FAILED'} ${c.detail}`);
  const verdicts: Verdict[] = results.map((r) => r.verdict);
  if (cleaned.some((c) => !c.ok)) verdicts.push('FAIL');
  const verdict: Verdict = error ? 'ERROR' : worst(verdicts);
  const run: SuiteRun = {
    name: o.name,
    description: o.description,
    url: o.url,
    checks: results,
    leftOut,
    cleanup: cleaned,
    exchanges,
    error,
    verdict,
    startedAt,
    endedAt: Date.now(),
    versionHeader: o.versionHeader?.toLowerCase() ?? null,
  };
  return redactDeep(run, (s) => safeText(redact(s)));
}
