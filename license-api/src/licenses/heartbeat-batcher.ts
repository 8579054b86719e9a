import type pg from 'pg';
import { CLIENT_TIMEOUT_MARGIN_MS, isDataError } from '../db.ts';
import type { Deadline } from '../deadline.ts';
import { DependencyError } from '../errors.ts';

interface Pending {
  id: string;
  subject: string;
  deadline: Deadline;
  /** Set once the caller has its answer (extended, not live, failed or timed out). */
  settled: boolean;
  /** Taken from the queue into a batch. */
  taken: boolean;
  timer: NodeJS.Timeout;
  resolve: (expiresAt: Date | null) => void;
  reject: (err: unknown) => void;
}

export interface BatcherOptions {
  /** Most heartbeats in one statement. */
  maxBatch?: number;
  /** Most statements in flight at once. */
  maxInFlight?: number;
  /** Most heartbeats waiting; more are refused at once with a 503 (a stalled database must not grow an unbounded queue). */
  maxQueued?: number;
  /** Postgres' statement_timeout; a batch waits at most this (plus a margin) for its answer. */
  statementTimeoutMs?: number;
}

/**
 * Coalesces concurrent heartbeats into one `UPDATE ... FROM unnest(...)` per round trip.
 *
 * Heartbeats are the hot path (every client, every interval) and each one is a write. Under load,
 * requests that arrive while a batch is in flight wait for the next one, so Postgres does one
 * statement for many sessions instead of one each; with no load a heartbeat goes out at once
 * (one event-loop turn). Ids are sorted so concurrent batches lock rows in the same order and
 * cannot deadlock. Postgres stays the only record of every extension.
 *
 * Every heartbeat carries its request's deadline: one that passes while it waits (queued or in a
 * batch that has not answered) is rejected with `DEPENDENCY_TIMEOUT` at that moment, and a queued
 * one never reaches Postgres. A batch that Postgres refuses for its values (a data error) is split
 * in halves and retried, so only the heartbeat that carries the bad value fails, never its
 * neighbours; a lost connection or a timeout fails the whole batch (retrying would only wait again).
 */
export class HeartbeatBatcher {
  private queue: Pending[] = [];
  /** Entries in `queue` that have settled (timed out) and wait to be dropped. */
  private settledInQueue = 0;
  private inFlight = 0;
  private scheduled = false;
  private readonly pool: pg.Pool;
  private readonly ttlSeconds: number;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly statementTimeoutMs: number;

  constructor(pool: pg.Pool, ttlSeconds: number, opts: BatcherOptions = {}) {
    this.pool = pool;
    this.ttlSeconds = ttlSeconds;
    this.maxBatch = opts.maxBatch ?? 256;
    this.maxInFlight = opts.maxInFlight ?? 2;
    this.maxQueued = opts.maxQueued ?? 20_000;
    this.statementTimeoutMs = opts.statementTimeoutMs ?? 5000;
  }

  /** Heartbeats waiting for a batch (for tests and metrics). */
  get queued(): number {
    return this.queue.length - this.settledInQueue;
  }

  /**
   * Extends a live session; resolves with its new expiry, or null when it is not live (or not the
   * subject's). Rejects with a typed 503 when the deadline passes first or the database fails.
   */
  extend(id: string, subject: string, deadline: Deadline): Promise<Date | null> {
    return new Promise((resolve, reject) => {
      if (deadline.expired()) {
        reject(timeout());
        return;
      }
      if (this.queued >= this.maxQueued) {
        reject(new DependencyError('the database', new Error('heartbeat queue is full')));
        return;
      }
      const p: Pending = {
        id,
        subject,
        deadline,
        settled: false,
        taken: false,
        resolve,
        reject,
        timer: setTimeout(() => {
          if (p.settled) return;
          p.settled = true;
          reject(timeout());
          if (!p.taken) this.dropSettledSoon();
        }, deadline.remaining()),
      };
      this.queue.push(p);
      this.schedule();
    });
  }

  /** Drops timed-out entries from the queue once they are a sizeable part of it (amortised O(1)). */
  private dropSettledSoon(): void {
    this.settledInQueue++;
    if (this.settledInQueue > 64 && this.settledInQueue * 2 > this.queue.length) this.compact();
  }

  private compact(): void {
    this.queue = this.queue.filter((p) => !p.settled);
    this.settledInQueue = 0;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queued === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.settledInQueue > 0) this.compact();
      while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        for (const p of batch) p.taken = true;
        void this.flush(batch);
      }
    });
  }

  private async flush(batch: Pending[]): Promise<void> {
    this.inFlight++;
    try {
      await this.run(batch);
    } finally {
      this.inFlight--;
      this.schedule();
    }
  }

  /** Runs one batch statement; on a data error, each half again (down to the one bad heartbeat). */
  private async run(batch: Pending[]): Promise<void> {
    const live = batch.filter((p) => !p.settled);
    if (live.length === 0) return;
    // Wait no longer than the latest deadline in the batch (each member also has its own timer).
    const remaining = Math.max(...live.map((p) => p.deadline.remaining()));
    if (remaining <= 0) {
      settleAll(live, (p) => p.reject(timeout()));
      return;
    }
    const sorted = [...live].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let rows: Array<{ id: string; subject: string; expires_at: Date }>;
    try {
      const r = await this.pool.query<{ id: string; subject: string; expires_at: Date }>({
        name: 'heartbeat-batch',
        text: `UPDATE sessions s SET expires_at = now() + make_interval(secs => $3), last_heartbeat_at = now()
               FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::text[]) AS u(id, subject) ORDER BY id) AS h
               WHERE s.id = h.id AND s.subject = h.subject AND s.ended_at IS NULL AND s.expires_at > now()
               RETURNING s.id, s.subject, s.expires_at`,
        values: [sorted.map((p) => p.id), sorted.map((p) => p.subject), this.ttlSeconds],
        query_timeout: Math.max(1, Math.min(this.statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS, remaining)),
      } as pg.QueryConfig);
      rows = r.rows;
    } catch (err) {
      if (isDataError(err) && live.length > 1) {
        const half = Math.ceil(live.length / 2);
        await Promise.all([this.run(live.slice(0, half)), this.run(live.slice(half))]);
        return;
      }
      settleAll(live, (p) => p.reject(err));
      return;
    }
    const extended = new Map(rows.map((row) => [`${row.id}\n${row.subject}`, row.expires_at]));
    settleAll(live, (p) => p.resolve(extended.get(`${p.id}\n${p.subject}`) ?? null));
  }
}

function settleAll(batch: Pending[], settle: (p: Pending) => void): void {
  for (const p of batch) {
    if (p.settled) continue;
    p.settled = true;
    clearTimeout(p.timer);
    settle(p);
  }
}

function timeout(): DependencyError {
  return new DependencyError('the database', new Error('request deadline passed while waiting for a heartbeat batch'), {
    timedOut: true,
  });
}
