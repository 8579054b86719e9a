/**
 * Statistics over ledger rows: HDR histograms (hdr-histogram-js, microsecond resolution, 3
 * significant digits) for the request timings, and counters per status, error class, serving pod and
 * app version. Rows are fed in as they are recorded, so the same numbers serve live progress,
 * abort-on-breach thresholds and the final summary.
 */
import * as hdr from 'hdr-histogram-js';
import { ErrorClass, errorClassNames, type ErrorClassName } from './error-class.ts';
import { Outcome, type Ledger } from './ledger.ts';

export function newHistogram(): hdr.Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

/** Trend aggregates in milliseconds (k6's names). */
export interface Trend {
  count: number;
  avg: number;
  min: number;
  med: number;
  max: number;
  'p(90)': number;
  'p(95)': number;
  'p(99)': number;
  'p(99.9)': number;
}

const US = 1000;

export function trendOf(h: hdr.Histogram): Trend | null {
  if (h.totalCount === 0) return null;
  const ms = (us: number) => Math.round(us) / US;
  return {
    count: h.totalCount,
    avg: Math.round(h.mean) / US,
    min: ms(h.minNonZeroValue === Number.MAX_SAFE_INTEGER ? 0 : h.minNonZeroValue),
    med: ms(h.getValueAtPercentile(50)),
    max: ms(h.maxValue),
    'p(90)': ms(h.getValueAtPercentile(90)),
    'p(95)': ms(h.getValueAtPercentile(95)),
    'p(99)': ms(h.getValueAtPercentile(99)),
    'p(99.9)': ms(h.getValueAtPercentile(99.9)),
  };
}

/** Which rows a set of statistics covers (k6 tags: name, status, expected_response, ...). */
export type RowFilter = (ledger: Ledger, row: number) => boolean;

function record(h: hdr.Histogram, ms: number): void {
  // Values below 1 µs are recorded as 1 µs (the histogram's lowest discernible value).
  h.recordValue(ms <= 0.001 ? 1 : Math.round(ms * US));
}

/** Counters and histograms for the rows one filter selects. */
export class RequestStatistics {
  readonly filter: RowFilter | null;
  /** Rows that ended (succeeded or failed); dropped rows are counted apart. */
  requests = 0;
  succeeded = 0;
  failed = 0;
  dropped = 0;
  /**
   * Requests the run itself cut short (caller abort, abort-on-fail, graceful-stop deadline). They are
   * failed in the ledger but not judged: whether they would have succeeded is unknown, so they count
   * neither in http_req_failed nor in the timings.
   */
  aborted = 0;
  /** Scheduled start → end: the latency a user sees, stalls included (open model: wrk2's "corrected"). */
  readonly duration = newHistogram();
  /** Scheduled start → handed to a connection: the engine's delay plus the wait for a free connection. */
  readonly blocked = newHistogram();
  /** Handed to a connection → end: what the server and network took. */
  readonly serviceTime = newHistogram();
  /** Scheduled start → the engine acted on it: the engine's own lateness. */
  readonly scheduleDelay = newHistogram();
  readonly byStatus = new Map<number, number>();
  readonly byError = new Array<number>(errorClassNames.length).fill(0);
  readonly byServedBy = new Map<number, number>();
  readonly byAppVersion = new Map<number, number>();
  /** Ended since the last {@link takeRecent} (for the live per-interval numbers). */
  recent = newHistogram();
  recentEnded = 0;
  recentFailed = 0;

  constructor(filter: RowFilter | null = null) {
    this.filter = filter;
  }

  add(ledger: Ledger, row: number): void {
    if (this.filter && !this.filter(ledger, row)) return;
    const outcome = ledger.outcome(row);
    const scheduled = ledger.scheduledAt(row);
    record(this.scheduleDelay, ledger.issuedAt(row) - scheduled);
    if (outcome === Outcome.dropped) {
      this.dropped++;
      return;
    }
    if (ledger.errorClass(row) === ErrorClass.aborted) {
      this.aborted++;
      this.byError[ErrorClass.aborted]++;
      return;
    }
    this.requests++;
    if (outcome === Outcome.succeeded) this.succeeded++;
    else {
      this.failed++;
      this.recentFailed++;
    }
    const end = ledger.endedAt(row);
    const started = ledger.startedAt(row);
    record(this.duration, end - scheduled);
    record(this.recent, end - scheduled);
    this.recentEnded++;
    if (!Number.isNaN(started)) {
      record(this.blocked, started - scheduled);
      record(this.serviceTime, end - started);
    }
    const status = ledger.status(row);
    if (status) this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    this.byError[ledger.errorClass(row)]++;
    const sb = ledger.servedById(row);
    if (sb) this.byServedBy.set(sb, (this.byServedBy.get(sb) ?? 0) + 1);
    const av = ledger.appVersionId(row);
    if (av) this.byAppVersion.set(av, (this.byAppVersion.get(av) ?? 0) + 1);
  }

  /** Returns the histogram of requests ended since the previous call, and starts a new one. */
  takeRecent(): { histogram: hdr.Histogram; ended: number; failed: number } {
    const out = { histogram: this.recent, ended: this.recentEnded, failed: this.recentFailed };
    this.recent = newHistogram();
    this.recentEnded = 0;
    this.recentFailed = 0;
    return out;
  }

  errorCounts(): Partial<Record<ErrorClassName, number>> {
    const out: Partial<Record<ErrorClassName, number>> = {};
    for (let i = 1; i < this.byError.length; i++) if (this.byError[i]) out[errorClassNames[i]] = this.byError[i];
    return out;
  }

  /** Failed / ended; null when nothing ended. */
  failedRate(): number | null {
    return this.requests ? this.failed / this.requests : null;
  }
}
