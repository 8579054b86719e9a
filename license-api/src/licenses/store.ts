import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { asDbError, CLIENT_TIMEOUT_MARGIN_MS, isServerError } from '../db.ts';
import type { Deadline } from '../deadline.ts';
import { ApiError } from '../errors.ts';
import { HeartbeatBatcher } from './heartbeat-batcher.ts';

export interface SessionGrant {
  sessionId: string;
  expiresAt: Date;
  /** False when the same subject re-acquired for a hardware id that already held a seat, and got its open session back. */
  created: boolean;
}

export type EndState = { ok: true; expiresAt: Date } | { ok: false; reason: 'not_found' | 'expired' | 'released' };

export interface SweepResult {
  expired: number;
  deleted: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DB = 'the database';

/**
 * Seats and sessions, with Postgres as the only source of truth.
 *
 * A session is live while `ended_at IS NULL AND expires_at > now()`. Acquire locks the license
 * row (`FOR UPDATE`), so concurrent acquires for one license are serialised by the database and a
 * license with N seats never has more than N live sessions, whatever the number of replicas.
 *
 * Every request-serving method takes the request's deadline: each statement waits at most what is
 * left of it, and a connection whose statement timed out or whose server vanished is destroyed
 * (never ROLLBACK-waited, never reused).
 */
export class LicenseStore {
  private readonly pool: pg.Pool;
  private readonly ttlSeconds: number;
  private readonly statementTimeoutMs: number;
  private readonly heartbeats: HeartbeatBatcher;
  constructor(pool: pg.Pool, ttlSeconds: number, statementTimeoutMs = 5000) {
    this.pool = pool;
    this.ttlSeconds = ttlSeconds;
    this.statementTimeoutMs = statementTimeoutMs;
    this.heartbeats = new HeartbeatBatcher(pool, ttlSeconds, { statementTimeoutMs });
  }

  async ensureLicenses(licenses: Array<{ key: string; seats: number }>): Promise<void> {
    for (const l of licenses) {
      await this.pool.query('INSERT INTO licenses (license_key, seats) VALUES ($1, $2) ON CONFLICT (license_key) DO NOTHING', [
        l.key,
        l.seats,
      ]);
    }
  }

  /** Whether a license with this key exists (read before anything is counted against it). */
  async licenseExists(licenseKey: string, deadline: Deadline): Promise<boolean> {
    const r = await this.query({ text: 'SELECT 1 FROM licenses WHERE license_key = $1', values: [licenseKey] }, deadline);
    return (r.rowCount ?? 0) > 0;
  }

  /** The license key of the subject's session `sessionId`, or undefined when the subject has no such session. */
  async sessionLicense(sessionId: string, subject: string, deadline: Deadline): Promise<string | undefined> {
    if (!UUID.test(sessionId)) return undefined;
    const r = await this.query<{ license_key: string }>(
      {
        text: `SELECT l.license_key FROM sessions s JOIN licenses l ON l.id = s.license_id WHERE s.id = $1 AND s.subject = $2`,
        values: [sessionId, subject],
      },
      deadline,
    );
    return r.rows[0]?.license_key;
  }

  /**
   * A seat for `hardwareId` on the license. Idempotent for the same subject (its open session for
   * that hardware id comes back, extended); another subject's open session for the same hardware id
   * is never revealed nor extended: `409 HARDWARE_IN_USE`.
   */
  async acquire(licenseKey: string, hardwareId: string, subject: string, deadline: Deadline): Promise<SessionGrant> {
    const client = await this.connect(deadline);
    const q = <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) => {
      deadline.check(DB);
      return client.query<R>({ text, values, query_timeout: this.timeoutWithin(deadline) } as pg.QueryConfig);
    };
    try {
      await q('BEGIN');
      const lic = await q<{ id: string; seats: number }>('SELECT id, seats FROM licenses WHERE license_key = $1 FOR UPDATE', [
        licenseKey,
      ]);
      if (lic.rowCount === 0) throw new ApiError(404, 'LICENSE_NOT_FOUND', 'no license with this key');
      const { id: licenseId, seats } = lic.rows[0];
      // Sessions that missed their heartbeats give their seats back here, under the license lock.
      await q(
        `UPDATE sessions SET ended_at = expires_at, end_reason = 'expired'
               WHERE license_id = $1 AND ended_at IS NULL AND expires_at <= now()`,
        [licenseId],
      );
      const open = await q<{ id: string; subject: string }>(
        'SELECT id, subject FROM sessions WHERE license_id = $1 AND hardware_id = $2 AND ended_at IS NULL',
        [licenseId, hardwareId],
      );
      if (open.rowCount) {
        if (open.rows[0].subject !== subject) {
          throw new ApiError(409, 'HARDWARE_IN_USE', 'a seat of this license is held for this hardware id by another subject');
        }
        const same = await q<{ id: string; expires_at: Date }>(
          `UPDATE sessions SET expires_at = now() + make_interval(secs => $2), last_heartbeat_at = now()
           WHERE id = $1 RETURNING id, expires_at`,
          [open.rows[0].id, this.ttlSeconds],
        );
        await q('COMMIT');
        client.release();
        return { sessionId: same.rows[0].id, expiresAt: same.rows[0].expires_at, created: false };
      }
      const live = await q<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE license_id = $1 AND ended_at IS NULL', [
        licenseId,
      ]);
      if (live.rows[0].n >= seats) throw new ApiError(409, 'NO_SEAT_AVAILABLE', `all ${seats} seats of this license are in use`);
      const ins = await q<{ id: string; expires_at: Date }>(
        `INSERT INTO sessions (id, license_id, hardware_id, subject, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING id, expires_at`,
        [randomUUID(), licenseId, hardwareId, subject, this.ttlSeconds],
      );
      await q('COMMIT');
      client.release();
      return { sessionId: ins.rows[0].id, expiresAt: ins.rows[0].expires_at, created: true };
    } catch (err) {
      this.abandon(client, err);
      throw asDbError(err);
    }
  }

  async heartbeat(sessionId: string, subject: string, deadline: Deadline): Promise<EndState> {
    if (!UUID.test(sessionId)) return { ok: false, reason: 'not_found' };
    let expiresAt: Date | null;
    try {
      expiresAt = await this.heartbeats.extend(sessionId.toLowerCase(), subject, deadline);
    } catch (err) {
      throw asDbError(err);
    }
    if (expiresAt) return { ok: true, expiresAt };
    return await this.whyNotLive(sessionId, subject, deadline);
  }

  async release(sessionId: string, subject: string, deadline: Deadline): Promise<EndState> {
    if (!UUID.test(sessionId)) return { ok: false, reason: 'not_found' };
    const r = await this.query<{ ended_at: Date }>(
      {
        text: `UPDATE sessions SET ended_at = now(), end_reason = 'released'
             WHERE id = $1 AND subject = $2 AND ended_at IS NULL AND expires_at > now() RETURNING ended_at`,
        values: [sessionId, subject],
      },
      deadline,
    );
    if (r.rowCount) return { ok: true, expiresAt: r.rows[0].ended_at };
    return await this.whyNotLive(sessionId, subject, deadline);
  }

  /** Open, unexpired sessions of every license (for the metrics gauge, refreshed in the background). */
  async countActive(): Promise<number> {
    const r = await this.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM sessions WHERE ended_at IS NULL AND expires_at > now()',
    );
    return r.rows[0].n;
  }

  /**
   * One pass of the sweeper: ends sessions whose heartbeats stopped (`expired`), then deletes
   * sessions that ended more than `retentionSeconds` ago. Each statement touches at most
   * `batchSize` rows and a pass at most `maxBatches` batches of each, so a backlog is worked off
   * over several passes without long locks. Rows are picked `FOR UPDATE SKIP LOCKED`: replicas
   * sweeping at the same moment take disjoint rows, and none waits on a row another is changing.
   */
  async sweep(retentionSeconds: number, batchSize = 1000, maxBatches = 10): Promise<SweepResult> {
    const result: SweepResult = { expired: 0, deleted: 0 };
    for (let i = 0; i < maxBatches; i++) {
      const r = await this.pool.query(
        `UPDATE sessions SET ended_at = expires_at, end_reason = 'expired'
         WHERE id IN (SELECT id FROM sessions WHERE ended_at IS NULL AND expires_at <= now()
                      ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)`,
        [batchSize],
      );
      result.expired += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < batchSize) break;
    }
    for (let i = 0; i < maxBatches; i++) {
      const r = await this.pool.query(
        `DELETE FROM sessions
         WHERE id IN (SELECT id FROM sessions WHERE ended_at IS NOT NULL AND ended_at < now() - make_interval(secs => $1)
                      ORDER BY ended_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [retentionSeconds, batchSize],
      );
      result.deleted += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < batchSize) break;
    }
    return result;
  }

  private async whyNotLive(sessionId: string, subject: string, deadline: Deadline): Promise<EndState> {
    const r = await this.query<{ end_reason: string | null }>(
      {
        text: 'SELECT end_reason FROM sessions WHERE id = $1 AND subject = $2',
        values: [sessionId, subject],
      },
      deadline,
    );
    // Another subject's session is reported as unknown: its existence is not ours to reveal.
    if (!r.rowCount) return { ok: false, reason: 'not_found' };
    return { ok: false, reason: r.rows[0].end_reason === 'released' ? 'released' : 'expired' };
  }

  /** The client-side wait for one statement: the statement timeout (plus margin), never past the deadline. */
  private timeoutWithin(deadline: Deadline): number {
    return Math.max(1, Math.min(this.statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS, deadline.remaining()));
  }

  /** A pooled connection within the deadline; one that arrives after we gave up goes straight back. */
  private async connect(deadline: Deadline): Promise<pg.PoolClient> {
    try {
      return await deadline.race(DB, this.pool.connect(), (late) => late.release());
    } catch (err) {
      throw asDbError(err);
    }
  }

  /** One statement on any pooled connection (pool.query destroys a connection whose statement failed at the connection level). */
  private async query<R extends pg.QueryResultRow>(q: pg.QueryConfig, deadline: Deadline): Promise<pg.QueryResult<R>> {
    try {
      deadline.check(DB);
      // The pool wait is part of the deadline: a request queued behind a busy pool gives up in time.
      return await deadline.race(DB, this.pool.query<R>({ ...q, query_timeout: this.timeoutWithin(deadline) } as pg.QueryConfig));
    } catch (err) {
      throw asDbError(err);
    }
  }

  /**
   * Gives a checked-out connection back after `err`, without making the client wait for it. A
   * connection that timed out or was lost is destroyed (`release(err)`): a ROLLBACK behind a
   * statement the server never answered would wait a whole timeout again. After an error Postgres
   * sent (or one of ours, like 409), the connection is healthy: ROLLBACK (bounded), then reuse.
   */
  private abandon(client: pg.PoolClient, err: unknown): void {
    // Our own errors (404, 409, a deadline noticed between statements) come after a statement that completed.
    const healthy = err instanceof ApiError || isServerError(err);
    if (!healthy) {
      client.release(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    client.query({ text: 'ROLLBACK', query_timeout: this.statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS } as pg.QueryConfig).then(
      () => client.release(),
      (e: unknown) => client.release(e instanceof Error ? e : new Error(String(e))),
    );
  }
}
