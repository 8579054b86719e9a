-- Up Migration
CREATE TABLE licenses (
  id          bigserial PRIMARY KEY,
  license_key text NOT NULL UNIQUE,
  seats       integer NOT NULL CHECK (seats >= 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
  id                uuid PRIMARY KEY,
  license_id        bigint NOT NULL REFERENCES licenses(id) ON DELETE CASCADE,
  hardware_id       text NOT NULL,
  subject           text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
  expires_at        timestamptz NOT NULL,
  ended_at          timestamptz,
  end_reason        text CHECK (end_reason IN ('released', 'expired'))
);

-- At most one open session per (license, hardware id): the database, not the process, holds the rule.
CREATE UNIQUE INDEX sessions_open_per_hardware ON sessions (license_id, hardware_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_open_by_license ON sessions (license_id, expires_at) WHERE ended_at IS NULL;

-- Down Migration
DROP TABLE sessions;
DROP TABLE licenses;
