import type pg from 'pg';

interface Pending {
  id: string;
  subject: string;
  resolve: (expiresAt: Date | null) => void;
  reject: (err: unknown) => void;
}

/**
 * Coalesces concurrent heartbeats into one `UPDATE ... FROM unnest(...)` per round trip.
 *
 * Heartbeats are the hot path (every client, every interval) and each one is a write. Under load,
 * requests that arrive while a batch is in flight wait for the next one, so Postgres does one
 * statement for many sessions instead of one each; with no load a heartbeat goes out at once
 * (one event-loop turn). Ids are sorted so concurrent batches lock rows in the same order and
 * cannot deadlock. Postgres stays the only record of every extension.
 */
export class HeartbeatBatcher {
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly pool: pg.Pool;
  private readonly ttlSeconds: number;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

  constructor(pool: pg.Pool, ttlSeconds: number, opts: { maxBatch?: number; maxInFlight?: number } = {}) {
    this.pool = pool;
    this.ttlSeconds = ttlSeconds;
    this.maxBatch = opts.maxBatch ?? 256;
    this.maxInFlight = opts.maxInFlight ?? 2;
  }

  /** Extends a live session; resolves with its new expiry, or null when it is not live (or not the subject's). */
  extend(id: string, subject: string): Promise<Date | null> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id, subject, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.inFlight < this.maxInFlight && this.queue.length > 0) void this.flush(this.queue.splice(0, this.maxBatch));
    });
  }

  private async flush(batch: Pending[]): Promise<void> {
    this.inFlight++;
    try {
      const sorted = [...batch].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const r = await this.pool.query<{ id: string; subject: string; expires_at: Date }>({
        name: 'heartbeat-batch',
        text: `UPDATE sessions s SET expires_at = now() + make_interval(secs => $3), last_heartbeat_at = now()
               FROM (SELECT DISTINCT * FROM unnest($1::uuid[], $2::text[]) AS u(id, subject) ORDER BY id) AS h
               WHERE s.id = h.id AND s.subject = h.subject AND s.ended_at IS NULL AND s.expires_at > now()
               RETURNING s.id, s.subject, s.expires_at`,
        values: [sorted.map((p) => p.id), sorted.map((p) => p.subject), this.ttlSeconds],
      });
      const extended = new Map(r.rows.map((row) => [`${row.id}\n${row.subject}`, row.expires_at]));
      for (const p of batch) p.resolve(extended.get(`${p.id}\n${p.subject}`) ?? null);
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.inFlight--;
      this.schedule();
    }
  }
}
