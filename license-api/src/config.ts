import { hostname } from 'node:os';
import { z } from 'zod';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * Every setting of the license API, read from the environment. A bad value stops start-up
 * with a message that names the variable (see `loadConfig`).
 */
export const configSchema = z
  .object({
    PORT: int(0, 65535).default(8000),
    /** Listen address. In Kubernetes it comes from the downward API (`status.podIP`). */
    HOST: z.string().min(1).default('0.0.0.0'),
    DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
    REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
    JWT_SECRET: z.string().min(32, 'must be at least 32 characters (HS256 key)').optional(),
    JWT_JWKS_URL: z.url().optional(),
    /** The key set from JWT_JWKS_URL is refetched (in the background) when it is older than this. */
    JWT_JWKS_REFRESH_SECONDS: int(1, 86_400).default(600),
    /**
     * While JWT_JWKS_URL fails (503, a redirect, not a key set, no answer), the last key set
     * fetched keeps verifying tokens until it is this old; then tokens get 503 until the endpoint
     * answers again. 6 h: an outage of 30 minutes (or of several hours) refuses no valid token,
     * and a key the identity provider removed (a compromised one) is trusted at most 6 h past
     * the last successful fetch when the endpoint cannot be reached (with it reachable, a removal
     * is seen within JWT_JWKS_REFRESH_SECONDS).
     */
    JWT_JWKS_STALE_MAX_SECONDS: int(1, 2_592_000).default(21_600),
    JWT_ISSUER: z.string().min(1).optional(),
    JWT_AUDIENCE: z.string().min(1).optional(),
    POD_NAME: z.string().min(1).default(hostname()),
    APP_VERSION: z.string().min(1).default('dev'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Sessions that miss heartbeats for this long expire and free their seat. */
    SESSION_TTL_SECONDS: int(2, 86_400).default(180),
    HEARTBEAT_INTERVAL_SECONDS: int(1, 3600).default(60),
    /** `graceful`: delay, then Connection: close, then drain. `naive`: close at once (for experiments). */
    SHUTDOWN_MODE: z.enum(['graceful', 'naive']).default('graceful'),
    /** Time the server keeps serving after SIGTERM while endpoint removal propagates. */
    SHUTDOWN_DELAY_MS: int(0, 300_000).default(3000),
    /** Hard deadline after SIGTERM; must be shorter than the pod's terminationGracePeriodSeconds. */
    SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default(15_000),
    /** Keep above the load balancer's idle timeout, or the balancer reuses sockets we close (502s). */
    KEEPALIVE_TIMEOUT_MS: int(1000, 3_600_000).default(65_000),
    /** Per-check timeout of /health/ready (and of a Redis command); keep below the readiness probe's timeoutSeconds. */
    DEPENDENCY_TIMEOUT_MS: int(50, 30_000).default(1000),
    /**
     * Every license request is answered within this long of its arrival: when the time is up while it
     * still waits on Postgres, the heartbeat batcher or Redis, it gets `503 DEPENDENCY_TIMEOUT` with
     * `Retry-After` and the work it started is abandoned (a body still on its way gets `408`). 5 s is
     * far under the GKE load balancer's 30 s backend timeout and under common client timeouts (10 s
     * and more), so the client always hears our answer instead of its own timeout, and it leaves a
     * client several retries within one heartbeat interval.
     */
    REQUEST_DEADLINE_MS: int(200, 25_000).default(5000),
    DB_POOL_MAX: int(1, 200).default(10),
    /** How long a new Postgres connection may take to open, and how long a request may queue for a pooled one (its deadline cuts that shorter). */
    DB_POOL_WAIT_MS: int(10, 60_000).default(5000),
    /**
     * Any single statement that runs longer than this fails: Postgres cancels it (statement_timeout)
     * and the client gives up on a server that does not answer at all. Must be below REQUEST_DEADLINE_MS.
     */
    DB_STATEMENT_TIMEOUT_MS: int(10, 60_000).default(2000),
    BODY_LIMIT_BYTES: int(64, 1_048_576).default(16_384),
    /**
     * Acquire attempts per subject and license key per minute, and per subject for license keys that
     * do not exist (counted in Redis); 0 disables the limit.
     */
    RATE_LIMIT_PER_MINUTE: int(0, 1_000_000).default(0),
    /**
     * `required`: a token may use only the licenses its `licenses` claim names (`["*"]`: all), and a
     * token without the claim none. `optional`: a token without the claim may use every license
     * (as before the claim existed); for the time an identity provider is being changed to issue it.
     */
    JWT_LICENSES_CLAIM: z.enum(['required', 'optional']).default('required'),
    /** Tokens must carry `exp`, at most this far in the future (a stolen long-lived token is refused). */
    JWT_MAX_LIFETIME_SECONDS: int(60, 31_536_000).default(86_400),
    /**
     * A client that has not sent complete request headers within this long (from connecting, or
     * from its previous answer) gets `408` and is closed. Every such connection costs about 10 KB of
     * memory while it lasts: 10 s frees them three times sooner than the 30 s it was, and is still
     * far more than a real client needs to send its headers (one packet).
     */
    HEADERS_TIMEOUT_MS: int(1000, 120_000).default(10_000),
    /**
     * Open connections at most; the process closes one more at once (and counts it in
     * `http_connections_closed_total{reason="max_connections"}`). Sized for the pod's memory
     * limit (256 Mi): see the README's license API section for the measured cost per connection.
     */
    MAX_CONNECTIONS: int(10, 1_000_000).default(1000),
    /** How often `license_active_sessions` is recounted in the background (a scrape never queries Postgres). */
    ACTIVE_SESSIONS_REFRESH_SECONDS: int(1, 3600).default(15),
    /** How often the sweeper ends expired sessions and deletes old ended ones (in bounded batches). */
    SESSION_SWEEP_INTERVAL_SECONDS: int(1, 86_400).default(60),
    /** Ended (released or expired) sessions are kept this long, then deleted. */
    SESSION_RETENTION_HOURS: int(0, 87_600).default(24),
    MIGRATE_ON_START: bool.default(true),
    /**
     * Fault injection for detector tests: for this long after start-up, license requests answer 500
     * while readiness says ready (a broken build that serves before it can). 0 (the default) is off.
     */
    FAULT_ERRORS_AFTER_START_MS: int(0, 600_000).default(0),
    /** Fault injection for detector tests: this fraction of license requests answer 500 (a release with a raised error rate). 0 (the default) is off. */
    FAULT_ERROR_RATE: z.coerce.number().min(0).max(1).default(0),
    /** Fault injection for detector tests: every license request takes this much longer (a slow release). 0 (the default) is off. */
    FAULT_EXTRA_LATENCY_MS: int(0, 10_000).default(0),
    /** Fault injection for detector tests: the drain keeps connections alive (no `Connection: close` after SIGTERM). Off by default. */
    FAULT_KEEPALIVE_DRAIN: bool.default(false),
    /**
     * Fault injection for detector tests: an incompatible API change. Heartbeats must carry a
     * `client_version` field, which the clients of the release before do not send (400). Off by default.
     */
    FAULT_REQUIRE_CLIENT_VERSION: bool.default(false),
    /**
     * Fault injection for detector tests: state not shared. Sessions live in this process only, so a
     * session another pod or version created is unknown here (404). Off by default.
     */
    FAULT_SESSIONS_IN_PROCESS: bool.default(false),
    /**
     * Fault injection for detector tests: once serving for this long (± 50 %, drawn per process),
     * the process takes itself out as on SIGTERM (readiness 503 for SHUTDOWN_DELAY_MS, then the
     * drain) and exits 0, for the kubelet to restart it: a release that recycles its processes. 0
     * (the default) is off.
     */
    FAULT_EXIT_AFTER_MS: int(0, 86_400_000).default(0),
    /** Fault injection for detector tests: /health/live checks Postgres and Redis (the seed's naive liveness). Off by default. */
    FAULT_LIVENESS_CHECKS_DEPENDENCIES: bool.default(false),
    /** Fault injection for detector tests: tokens are verified against the first key of the JWKS only, whatever their `kid` (a release that holds one signing key). Off by default. */
    FAULT_JWKS_FIRST_KEY_ONLY: bool.default(false),
    /** Licenses to create at start-up if missing: `KEY=SEATS,KEY2=SEATS`. */
    LICENSE_SEED: z
      .string()
      .regex(/^$|^[A-Za-z0-9._-]{1,128}=\d{1,6}(,[A-Za-z0-9._-]{1,128}=\d{1,6})*$/, 'must look like KEY=SEATS,KEY2=SEATS')
      .default(''),
  })
  .superRefine((c, ctx) => {
    if (!c.JWT_SECRET && !c.JWT_JWKS_URL) {
      ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'set JWT_SECRET (HS256) or JWT_JWKS_URL' });
    }
    if (c.JWT_SECRET && c.JWT_JWKS_URL) {
      ctx.addIssue({ code: 'custom', path: ['JWT_JWKS_URL'], message: 'set only one of JWT_SECRET and JWT_JWKS_URL' });
    }
    if (c.JWT_JWKS_STALE_MAX_SECONDS < c.JWT_JWKS_REFRESH_SECONDS) {
      ctx.addIssue({
        code: 'custom',
        path: ['JWT_JWKS_STALE_MAX_SECONDS'],
        message: 'must be at least JWT_JWKS_REFRESH_SECONDS',
      });
    }
    if (c.SHUTDOWN_DELAY_MS >= c.SHUTDOWN_TIMEOUT_MS) {
      ctx.addIssue({ code: 'custom', path: ['SHUTDOWN_DELAY_MS'], message: 'must be shorter than SHUTDOWN_TIMEOUT_MS' });
    }
    if (c.DB_STATEMENT_TIMEOUT_MS >= c.REQUEST_DEADLINE_MS) {
      ctx.addIssue({ code: 'custom', path: ['DB_STATEMENT_TIMEOUT_MS'], message: 'must be shorter than REQUEST_DEADLINE_MS' });
    }
    if (c.HEARTBEAT_INTERVAL_SECONDS >= c.SESSION_TTL_SECONDS) {
      ctx.addIssue({ code: 'custom', path: ['HEARTBEAT_INTERVAL_SECONDS'], message: 'must be shorter than SESSION_TTL_SECONDS' });
    }
  });

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

/** Validates `env`; throws a ConfigError naming each bad variable and what it must be. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.fromEntries(
    Object.keys(configSchema.shape).map((k) => [k, env[k] === '' && k !== 'LICENSE_SEED' ? undefined : env[k]]),
  );
  const parsed = configSchema.safeParse(known);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => {
    const name = i.path.join('.') || '(config)';
    const raw = known[String(i.path[0])];
    if (i.code === 'invalid_type' && raw === undefined) return `  ${name}: is required but not set`;
    if (i.code === 'invalid_type') return `  ${name}: ${JSON.stringify(raw)} is not a valid ${i.expected}`;
    return `  ${name}: ${i.message}${raw === undefined ? '' : ` (got ${JSON.stringify(raw)})`}`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

export function parseLicenseSeed(seed: string): Array<{ key: string; seats: number }> {
  if (!seed) return [];
  return seed.split(',').map((pair) => {
    const [key, seats] = pair.split('=');
    return { key, seats: Number(seats) };
  });
}
