-- Up Migration
-- The sweeper ends sessions whose heartbeats stopped (oldest expiry first) and deletes sessions
-- that ended long ago (oldest first), in LIMITed batches: each batch must be an index range scan,
-- not a scan of the whole table. The first also serves the active-sessions count.
CREATE INDEX sessions_open_by_expiry ON sessions (expires_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_ended ON sessions (ended_at) WHERE ended_at IS NOT NULL;

-- Down Migration
DROP INDEX sessions_ended;
DROP INDEX sessions_open_by_expiry;
