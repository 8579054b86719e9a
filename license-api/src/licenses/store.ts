import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ApiError, DependencyError } from '../errors.ts';
import { HeartbeatBatcher } from './heartbeat-batcher.ts';

export interface SessionGrant {
  sessionId: string;
  expiresAt: Date;
  /** False when the same subject re-acquired for a hardware id that already held a seat, and got its open session back. */
  created: boolean;
}

export type EndState = { ok: true; expiresAt: Date } | { ok: false; reason: 'not_found' | 'expired' | 'released' };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Seats and sessions, with Postgres as the only source of truth.
 *
 * A session is live while `ended_at IS NULL AND expires_at > now()`. Acquire locks the license
 * row (`FOR UPDATE`), so concurrent acquires for one license are serialised by the database and a
 * license with N seats never has more than N live sessions, whatever the number of replicas.
 */
export class LicenseStore {
  private readonly pool: pg.Pool;
  private readonly ttlSeconds: number;
  private readonly heartbeats: HeartbeatBatcher;
  constructor(pool: pg.Pool, ttlSeconds: number) {
    this.pool = pool;
    this.ttlSeconds = ttlSeconds;
    this.heartbeats = new HeartbeatBatcher(pool, ttlSeconds);
  }

  async ensureLicenses(licenses: Array<{ key: string; seats: number }>): Promise<void> {
    for (const l of licenses) {
      await this.pool.query('INSERT INTO licenses (license_key, seats) VALUES ($1, $2) ON CONFLICT (license_key) DO NOTHING', [l.key, l.seats]);
    }
  }

  /**
   * A seat for `hardwareId` on the license. Idempotent for the same subject (its open session for
   * that hardware id comes back, extended); another subject's open session for the same hardware id
   * is never revealed nor extended: `409 HARDWARE_IN_USE`.
   */
  async acquire(licenseKey: string, hardwareId: string, subject: string): Promise<SessionGrant> {
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      const lic = await client.query<{ id: string; seats: number }>('SELECT id, seats FROM licenses WHERE license_key = $1 FOR UPDATE', [licenseKey]);
      if (lic.rowCount === 0) {
        await client.query('ROLLBACK');
        throw new ApiError(404, 'LICENSE_NOT_FOUND', 'no license with this key');
      }
      const { id: licenseId, seats } = lic.rows[0];
      // Sessions that missed their heartbeats give their seats back here, under the license lock.
      await client.query(`UPDATE sessions SET ended_at = expires_at, end_reason = 'expired'
                          WHERE license_id = $1 AND ended_at IS NULL AND expires_at <= now()`, [licenseId]);
      const open = await client.query<{ id: string; subject: string }>(
        'SELECT id, subject FROM sessions WHERE license_id = $1 AND hardware_id = $2 AND ended_at IS NULL', [licenseId, hardwareId]);
      if (open.rowCount) {
        if (open.rows[0].subject !== subject) {
          await client.query('ROLLBACK');
          throw new ApiError(409, 'HARDWARE_IN_USE', 'a seat of this license is held for this hardware id by another subject');
        }
        const same = await client.query<{ id: string; expires_at: Date }>(
          `UPDATE sessions SET expires_at = now() + make_interval(secs => $2), last_heartbeat_at = now()
           WHERE id = $1 RETURNING id, expires_at`, [open.rows[0].id, this.ttlSeconds]);
        await client.query('COMMIT');
        return { sessionId: same.rows[0].id, expiresAt: same.rows[0].expires_at, created: false };
      }
      const live = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE license_id = $1 AND ended_at IS NULL', [licenseId]);
      if (live.rows[0].n >= seats) {
        await client.query('ROLLBACK');
        throw new ApiError(409, 'NO_SEAT_AVAILABLE', `all ${seats} seats of this license are in use`);
      }
      const ins = await client.query<{ id: string; expires_at: Date }>(
        `INSERT INTO sessions (id, license_id, hardware_id, subject, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING id, expires_at`,
        [randomUUID(), licenseId, hardwareId, subject, this.ttlSeconds]);
      await client.query('COMMIT');
      return { sessionId: ins.rows[0].id, expiresAt: ins.rows[0].expires_at, created: true };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw asApiError(err);
    } finally {
      client.release();
    }
  }

  async heartbeat(sessionId: string, subject: string): Promise<EndState> {
    if (!UUID.test(sessionId)) return { ok: false, reason: 'not_found' };
    let expiresAt: Date | null;
    try { expiresAt = await this.heartbeats.extend(sessionId.toLowerCase(), subject); } catch (err) { throw asApiError(err); }
    if (expiresAt) return { ok: true, expiresAt };
    return await this.whyNotLive(sessionId, subject);
  }

  async release(sessionId: string, subject: string): Promise<EndState> {
    if (!UUID.test(sessionId)) return { ok: false, reason: 'not_found' };
    const r = await this.query<{ ended_at: Date }>({
      text: `UPDATE sessions SET ended_at = now(), end_reason = 'released'
             WHERE id = $1 AND subject = $2 AND ended_at IS NULL AND expires_at > now() RETURNING ended_at`,
      values: [sessionId, subject],
    });
    if (r.rowCount) return { ok: true, expiresAt: r.rows[0].ended_at };
    return await this.whyNotLive(sessionId, subject);
  }

  async countActive(): Promise<number> {
    const r = await this.query<{ n: number }>({ text: 'SELECT count(*)::int AS n FROM sessions WHERE ended_at IS NULL AND expires_at > now()' });
    return r.rows[0].n;
  }

  private async whyNotLive(sessionId: string, subject: string): Promise<EndState> {
    const r = await this.query<{ end_reason: string | null }>({
      text: 'SELECT end_reason FROM sessions WHERE id = $1 AND subject = $2', values: [sessionId, subject] });
    // Another subject's session is reported as unknown: its existence is not ours to reveal.
    if (!r.rowCount) return { ok: false, reason: 'not_found' };
    return { ok: false, reason: r.rows[0].end_reason === 'released' ? 'released' : 'expired' };
  }

  private async connect(): Promise<pg.PoolClient> {
    try { return await this.pool.connect(); } catch (err) { throw new DependencyError('the database', err); }
  }

  private async query<R extends pg.QueryResultRow>(q: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    try { return await this.pool.query<R>(q); } catch (err) { throw asApiError(err); }
  }
}

function asApiError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  return new DependencyError('the database', err);
}
