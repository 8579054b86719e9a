/**
 * The client source: the harness's own ledger, what the users' side of the wire saw. Requests that
 * ended in the window count (dropped arrivals never left the load generator and are judged by the
 * load-as-planned gate; requests the run itself aborted are nobody's failure). A failure is every
 * failed request but an unexpected 4xx (those are counted apart): 5xx answers and requests that got
 * no answer at all (refused, reset, timed out), which a server-side source cannot see.
 * Latency is from the scheduled start (coordinated omission corrected), as in the rest of the harness.
 */
import { ErrorClass } from '../load/error-class.ts';
import { Outcome, type Ledger } from '../load/ledger.ts';
import {
  boundPoints,
  checkWindow,
  evidenceWindow,
  failed,
  type Counts,
  type Measurement,
  type MetricSource,
  type MetricWindow,
} from './source.ts';

export interface ClientSourceOptions {
  ledger: Ledger;
  name?: string;
  /** Fewer judged requests than this in the window is no-data. Default 1. */
  minSamples?: number;
}

export class ClientSource implements MetricSource {
  readonly kind = 'client' as const;
  readonly name: string;
  readonly #ledger: Ledger;
  readonly #minSamples: number;

  constructor(o: ClientSourceOptions) {
    this.#ledger = o.ledger;
    this.name = o.name ?? 'client';
    this.#minSamples = o.minSamples ?? 1;
  }

  async measure(window: MetricWindow, signal?: AbortSignal): Promise<Measurement> {
    checkWindow(window);
    signal?.throwIfAborted();
    const l = this.#ledger;
    const from = window.from.getTime();
    const to = window.to.getTime();
    const selection = `ledger: requests that ended in [${window.from.toISOString()}, ${window.to.toISOString()}) (dropped and aborted excluded)`;
    let total = 0;
    let n5xx = 0;
    let n4xx = 0;
    const durations: number[] = [];
    const versions = new Map<string, { total: number; failed: number; failed4xx: number; durations: number[] }>();
    const perSecond = new Map<number, { requests: number; failed: number }>();
    for (let r = 0; r < l.length; r++) {
      const outcome = l.outcome(r);
      if (outcome !== Outcome.succeeded && outcome !== Outcome.failed) continue;
      const cls = l.errorClass(r);
      if (cls === ErrorClass.aborted) continue;
      const endedAt = l.endedAt(r);
      const ended = l.epochMs(Number.isNaN(endedAt) ? l.scheduledAt(r) : endedAt);
      if (ended < from || ended >= to) continue;
      total++;
      const is4xx = outcome === Outcome.failed && cls === ErrorClass.http_4xx;
      const isFailure = outcome === Outcome.failed && !is4xx;
      if (is4xx) n4xx++;
      if (isFailure) n5xx++;
      const duration = ended - l.epochMs(l.scheduledAt(r));
      durations.push(duration);
      const sec = Math.floor(ended / 1000) * 1000;
      const s = perSecond.get(sec) ?? { requests: 0, failed: 0 };
      s.requests++;
      if (isFailure) s.failed++;
      perSecond.set(sec, s);
      const version = l.appVersions.value(l.appVersionId(r));
      if (version) {
        let v = versions.get(version);
        if (!v) {
          v = { total: 0, failed: 0, failed4xx: 0, durations: [] };
          versions.set(version, v);
        }
        v.total++;
        if (isFailure) v.failed++;
        if (is4xx) v.failed4xx++;
        v.durations.push(duration);
      }
    }
    const points = {
      requests: boundPoints(
        [...perSecond].map(([t, s]) => [t, s.requests]),
        'sum',
      ),
      failed: boundPoints(
        [...perSecond].map(([t, s]) => [t, s.failed]),
        'sum',
      ),
    };
    const ev = { queries: [selection], window: evidenceWindow(window, 1), samples: total, points };
    if (total === 0 || total < this.#minSamples) {
      const span = `[${window.from.toISOString()}, ${window.to.toISOString()})`;
      return failed(
        'no-data',
        this.name,
        window,
        total === 0
          ? `${this.name}: no request of the ledger ended in ${span}`
          : `${this.name}: ${total} requests of the ledger ended in ${span}, fewer than the ${this.#minSamples} needed`,
        ev,
      );
    }
    const byVersion: Record<string, Counts> = {};
    for (const [v, c] of versions)
      byVersion[v] = { total: c.total, failed: c.failed, failed4xx: c.failed4xx, p99Ms: p99(c.durations) };
    const p = p99(durations);
    return {
      status: 'ok',
      source: this.name,
      window,
      total,
      failed: n5xx,
      failed4xx: n4xx,
      p99Ms: p,
      byVersion,
      evidence: { source: this.name, ...ev },
      message: `${this.name}: ${total} requests, ${n5xx} failed (5xx or no answer), ${n4xx} 4xx, p99 ${p} ms from the ledger`,
    };
  }

  async close(): Promise<void> {}
}

/** Nearest-rank p99 (the join's quantile), ms rounded to µs. */
function p99(durations: number[]): number | null {
  if (!durations.length) return null;
  const d = Float64Array.from(durations).sort();
  return Math.round(d[Math.min(d.length - 1, Math.max(0, Math.ceil(0.99 * d.length) - 1))] * 1000) / 1000;
}
