/**
 * The license API's smoke suite and probe description: what `verdict smoke` and `verdict probes`
 * know of this app. The seed's four smoke tests (ready, metrics, acquire, heartbeat) and what they
 * left out: release, 401 without a token and with a bad one, the version header, a latency budget
 * per step, and cleaning up every seat the run took.
 *
 * Safe against production: a read-only run sends only GETs and requests that cannot change state
 * (unauthenticated ones, and heartbeats of a session id that does not exist); a write run acquires
 * at most one seat per attempt of the acquire check, on license SMOKE-KEY, with a hardware id
 * `verdict-smoke-<run>-<attempt>`, and releases it, also when a check fails or the run is
 * interrupted (the cleanup registry). An acquire whose answer never came is undone by acquiring
 * again with the same hardware id (the API hands back the seat that id holds) and releasing that.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { DrainSettings, ProbeDescription, SmokeOptions, SmokeSuite } from '../../experiments/app-profile.ts';
import { HttpClient, type HttpResponse } from '../../lib/checks/http.ts';
import { family, parseExposition, sampleValue } from '../../lib/checks/prometheus.ts';
import { CheckFailed, pass, type CheckContext, type SuiteCheck } from '../../lib/checks/suite.ts';

const API = '/api/v1/licenses';
/** The license the smoke acquires; the embedded and kind overlays seed it with 100 seats (production must have it too). */
export const SMOKE_LICENSE_KEY = 'SMOKE-KEY';
/** Every hardware id the smoke uses starts with this (find or sweep leftovers by it). */
export const SMOKE_HARDWARE_PREFIX = 'verdict-smoke-';
/** A license key that exists nowhere: the unauthenticated acquires name it, so even a server that skipped authentication could grant nothing. */
const NO_SUCH_LICENSE = 'VERDICT-SMOKE-NO-SUCH-LICENSE';
/** The app's version header. */
export const VERSION_HEADER = 'x-app-version';

/**
 * The start of a body, for evidence, after why it was not parsed when the client refused to (too
 * large, too deep: lib/checks/http.ts). `r.text` is already redacted (the suite's client redacts each
 * body as it reads it, see lib/checks/redact.ts), so the cut here cannot leave part of a token that
 * the service reflected.
 */
const snippet = (r: HttpResponse) =>
  `${r.jsonProblem ? `(${r.jsonProblem}) ` : ''}${r.text.slice(0, 160).replace(/\s+/g, ' ')}${r.text.length > 160 ? '…' : ''}`;
/** `degraded[]` of a readiness answer as evidence: its strings only, at most 10, each cut. */
const degradedOf = (v: unknown): string[] =>
  Array.isArray(v)
    ? v
        .filter((x): x is string => typeof x === 'string')
        .slice(0, 10)
        .map((x) => (x.length > 80 ? `${x.slice(0, 80)}…` : x))
    : [];
const answered = (what: string, r: HttpResponse) => `${what} answered ${r.status} ${snippet(r)}`;
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** `{error: {code, message}}` with this code, or why not. */
function errorBodyProblem(json: unknown, code: string | string[]): string | null {
  const codes = Array.isArray(code) ? code : [code];
  if (!isObject(json) || !isObject(json.error)) return 'the body is not the documented {error: {code, message}}';
  if (typeof json.error.code !== 'string' || !codes.includes(json.error.code))
    return `error code ${JSON.stringify(json.error.code)}, not ${codes.join(' or ')}`;
  if (typeof json.error.message !== 'string') return 'the error has no message';
  return null;
}

async function post(http: HttpClient, path: string, body: unknown, token: string | null): Promise<HttpResponse> {
  return await http.request(path, { method: 'POST', body, headers: token ? { authorization: `Bearer ${token}` } : {} });
}

/** A well-formed token the service must refuse: HS256 with a random secret of our own. */
async function forgedToken(): Promise<string> {
  return await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('verdict-smoke-forged')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(randomBytes(32));
}

export function smokeChecks(o: SmokeOptions): SuiteCheck[] {
  const token = o.token;
  const budget = (ms: number) => o.budgetMs ?? ms;
  const noToken = token ? undefined : 'no token (give --token or TEST_TOKEN)';
  const hardwareId = (attempt: number) => `${SMOKE_HARDWARE_PREFIX}${o.runId}-${attempt}`;

  const ready: SuiteCheck = {
    name: 'ready',
    verifies: 'GET /health/ready answers 200 {status: "ready"}',
    budgetMs: budget(1000),
    async run({ http }) {
      const r = await http.request('/health/ready');
      if (r.status !== 200) throw new CheckFailed(answered('GET /health/ready', r), { status: r.status });
      if (!isObject(r.json) || r.json.status !== 'ready')
        throw new CheckFailed(`GET /health/ready answered 200 but not {status: "ready"}: ${snippet(r)}`, { status: r.status });
      const list = degradedOf(r.json.degraded);
      const degraded = list.length ? ` (degraded: ${list.join(', ')})` : '';
      return pass(`GET /health/ready answered 200 {status: "ready"}${degraded} in ${r.durationMs.toFixed(0)} ms`, {
        status: r.status,
        degraded: list.length ? list.join(',') : null,
      });
    },
  };

  const metrics: SuiteCheck = {
    name: 'metrics',
    verifies: 'GET /metrics is Prometheus text exposition (parsed) with the http_requests_total counter',
    budgetMs: budget(2000),
    async run({ http }) {
      const r = await http.request('/metrics');
      if (r.status !== 200) throw new CheckFailed(answered('GET /metrics', r), { status: r.status });
      const e = parseExposition(r.text, r.headers.get('content-type'));
      if (e.problems.length)
        throw new CheckFailed(`GET /metrics is not valid Prometheus exposition: ${e.problems.slice(0, 3).join('; ')}`, {
          status: r.status,
          families: e.families.length,
          problems: e.problems.length,
        });
      const f = family(e, 'http_requests_total');
      if (!f)
        throw new CheckFailed(`GET /metrics parses (${e.families.length} families) but has no http_requests_total`, {
          families: e.families.length,
        });
      if (f.type !== 'COUNTER')
        throw new CheckFailed(`http_requests_total is a ${f.type}, not a counter`, { families: e.families.length });
      const total = f.metrics.reduce((n, s) => n + sampleValue(s), 0);
      if (!f.metrics.length || !Number.isFinite(total))
        throw new CheckFailed('http_requests_total has no sample with a value', { families: e.families.length });
      return pass(
        `GET /metrics parses: ${e.families.length} families, http_requests_total a counter with ${f.metrics.length} series (${total} requests)`,
        {
          families: e.families.length,
          http_requests_total_series: f.metrics.length,
          http_requests_total: total,
          bytes: r.text.length,
        },
      );
    },
  };

  const unauthenticated: SuiteCheck = {
    name: 'no-token',
    verifies: 'acquire, heartbeat and release without a token answer 401 {error: {code: "UNAUTHENTICATED"}}',
    budgetMs: budget(1000),
    async run({ http }) {
      const calls: Array<[string, unknown]> = [
        [`${API}/acquire`, { license_key: NO_SUCH_LICENSE, hardware_id: `${SMOKE_HARDWARE_PREFIX}${o.runId}-no-token` }],
        [`${API}/heartbeat`, { session_id: randomUUID() }],
        [`${API}/release`, { session_id: randomUUID() }],
      ];
      for (const [path, body] of calls) {
        const r = await post(http, path, body, null);
        if (r.status !== 401)
          throw new CheckFailed(`POST ${path} without a token ${answered('', r).trim()}, not 401`, { status: r.status, path });
        const p = errorBodyProblem(r.json, ['UNAUTHENTICATED', 'INVALID_TOKEN']);
        if (p)
          throw new CheckFailed(`POST ${path} without a token answered 401, but ${p}: ${snippet(r)}`, { status: r.status, path });
      }
      return pass('acquire, heartbeat and release without a token each answered 401 with the documented error body', {
        requests: calls.length,
      });
    },
  };

  const badToken: SuiteCheck = {
    name: 'bad-token',
    verifies: 'a token signed with another key, and a malformed one, answer 401 {error: {code: "INVALID_TOKEN"}}',
    budgetMs: budget(1000),
    async run({ http }) {
      const forged = await forgedToken();
      for (const [what, t, codes] of [
        ['a forged token', forged, ['INVALID_TOKEN']],
        ['a malformed token', 'not.a.jwt', ['INVALID_TOKEN', 'UNAUTHENTICATED']],
      ] as const) {
        const r = await post(http, `${API}/heartbeat`, { session_id: randomUUID() }, t);
        if (r.status !== 401)
          throw new CheckFailed(`POST ${API}/heartbeat with ${what} answered ${r.status} ${snippet(r)}, not 401`, {
            status: r.status,
          });
        const p = errorBodyProblem(r.json, [...codes]);
        if (p) throw new CheckFailed(`POST ${API}/heartbeat with ${what} answered 401, but ${p}`, { status: r.status });
      }
      return pass('a forged and a malformed token each answered 401 with the documented error body', { requests: 2 });
    },
  };

  const unknownSession: SuiteCheck = {
    name: 'heartbeat-unknown',
    skip: noToken,
    budgetMs: budget(2000),
    verifies:
      'the token is accepted, and a heartbeat of a session that does not exist answers the documented 404 {error: {code: "SESSION_NOT_FOUND"}}',
    async run({ http }) {
      const r = await post(http, `${API}/heartbeat`, { session_id: randomUUID() }, token);
      if (r.status === 401) {
        const code =
          isObject(r.json) && isObject(r.json.error) && typeof r.json.error.code === 'string' ? r.json.error.code : null;
        throw new CheckFailed(`the token was refused: ${answered(`POST ${API}/heartbeat`, r)} (check --token / TEST_TOKEN)`, {
          status: r.status,
          token_refused: true,
          token_error: code,
        });
      }
      if (r.status !== 404)
        throw new CheckFailed(`${answered(`POST ${API}/heartbeat`, r)} for a session that does not exist, not 404`, {
          status: r.status,
        });
      const p = errorBodyProblem(r.json, 'SESSION_NOT_FOUND');
      if (p) throw new CheckFailed(`heartbeat of an unknown session answered 404, but ${p}`, { status: r.status });
      return pass('the token is accepted; a heartbeat of an unknown session answered 404 SESSION_NOT_FOUND', {
        status: r.status,
      });
    },
  };

  const acquire: SuiteCheck = {
    name: 'acquire',
    writes: true,
    skip: noToken,
    budgetMs: budget(2000),
    verifies: `acquire of ${SMOKE_LICENSE_KEY} answers 201/200 with a session_id, a future expires_at and a heartbeat interval (the seat is always released)`,
    async run(ctx) {
      const hw = hardwareId(ctx.attempt);
      const holder = trackSeat(ctx, hw);
      // Should this throw (no answer, interrupted), the seat may have been granted all the same: the
      // cleanup registered by trackSeat acquires it back by hardware id and releases it.
      const r = await post(ctx.http, `${API}/acquire`, { license_key: SMOKE_LICENSE_KEY, hardware_id: hw }, token);
      if (r.status !== 201 && r.status !== 200) {
        holder.nothingHeld();
        const why =
          r.status === 404
            ? ` (the license ${SMOKE_LICENSE_KEY} does not exist there: seed it for smoke runs)`
            : r.status === 409
              ? ' (no seat free)'
              : '';
        throw new CheckFailed(`${answered(`POST ${API}/acquire`, r)}${why}`, { status: r.status });
      }
      const j = r.json;
      if (!isObject(j) || typeof j.session_id !== 'string' || !j.session_id)
        throw new CheckFailed(`acquire answered ${r.status} without a session_id: ${snippet(r)}`, { status: r.status });
      holder.granted(j.session_id);
      ctx.state.set('session', { id: j.session_id, hardwareId: hw, holder });
      const expires = Date.parse(String(j.expires_at));
      if (!Number.isFinite(expires) || expires <= Date.now() - 5000)
        throw new CheckFailed(`acquire answered ${r.status} with expires_at ${JSON.stringify(j.expires_at)}, not a future time`, {
          status: r.status,
        });
      if (typeof j.heartbeat_interval_seconds !== 'number' || j.heartbeat_interval_seconds <= 0)
        throw new CheckFailed(`acquire answered without a positive heartbeat_interval_seconds: ${snippet(r)}`, {
          status: r.status,
        });
      return pass(
        `acquire answered ${r.status} with session ${j.session_id}, expiring in ${Math.round((expires - Date.now()) / 1000)} s, heartbeat every ${j.heartbeat_interval_seconds} s`,
        { status: r.status, session_id: j.session_id, hardware_id: hw },
      );
    },
  };

  const heartbeat: SuiteCheck = {
    name: 'heartbeat',
    writes: true,
    skip: noToken,
    needs: ['acquire'],
    budgetMs: budget(2000),
    verifies: 'a heartbeat of the acquired session answers 200 {success: true, expires_at}',
    async run(ctx) {
      const s = ctx.state.get('session') as { id: string };
      const r = await post(ctx.http, `${API}/heartbeat`, { session_id: s.id }, token);
      if (r.status !== 200) throw new CheckFailed(answered(`POST ${API}/heartbeat`, r), { status: r.status });
      if (!isObject(r.json) || r.json.success !== true || !Number.isFinite(Date.parse(String(r.json.expires_at)))) {
        throw new CheckFailed(`heartbeat answered 200 but not {success: true, expires_at}: ${snippet(r)}`, { status: r.status });
      }
      return pass(`heartbeat answered 200 {success: true}, expires_at ${r.json.expires_at}`, { status: r.status });
    },
  };

  const release: SuiteCheck = {
    name: 'release',
    writes: true,
    skip: noToken,
    needs: ['acquire'],
    budgetMs: budget(2000),
    verifies: 'release answers 200 {success: true}, after which a heartbeat of the session answers 410 SESSION_RELEASED',
    async run(ctx) {
      const s = ctx.state.get('session') as { id: string; holder: SeatHolder };
      const r = await post(ctx.http, `${API}/release`, { session_id: s.id }, token);
      if (r.status !== 200) throw new CheckFailed(answered(`POST ${API}/release`, r), { status: r.status });
      if (!isObject(r.json) || r.json.success !== true)
        throw new CheckFailed(`release answered 200 but not {success: true}: ${snippet(r)}`, { status: r.status });
      const after = await post(ctx.http, `${API}/heartbeat`, { session_id: s.id }, token);
      if (after.status !== 410 || errorBodyProblem(after.json, 'SESSION_RELEASED')) {
        throw new CheckFailed(
          `release answered 200, but the session still answers heartbeats: ${answered('heartbeat', after)} (expected 410 SESSION_RELEASED)`,
          { status: after.status },
        );
      }
      s.holder.released();
      return pass('release answered 200 {success: true}; the session then answered 410 SESSION_RELEASED', { status: r.status });
    },
  };

  const version: SuiteCheck = {
    name: 'version',
    budgetMs: budget(1000),
    verifies: o.expectVersion
      ? `every answer of the run carries X-App-Version ${o.expectVersion}`
      : 'every answer of the run carries an X-App-Version header',
    async run(ctx) {
      await ctx.http.request('/health/live');
      const answers = ctx.exchanges().filter((e) => e.status > 0);
      const missing = answers.filter((e) => !e.headers[VERSION_HEADER]);
      const seen = new Map<string, number>();
      for (const e of answers) {
        const v = e.headers[VERSION_HEADER];
        if (v) seen.set(v, (seen.get(v) ?? 0) + 1);
      }
      const versions = [...seen].map(([v, n]) => `${v} (${n})`).join(', ');
      const observed = {
        answers: answers.length,
        without_header: missing.length,
        versions: versions || null,
        expected: o.expectVersion ?? null,
      };
      if (missing.length) {
        const where = [...new Set(missing.map((e) => `${e.method} ${e.path}`))].slice(0, 4).join(', ');
        throw new CheckFailed(`${missing.length} of ${answers.length} answers had no X-App-Version header (${where})`, observed);
      }
      if (o.expectVersion) {
        const other = [...seen.keys()].filter((v) => v !== o.expectVersion);
        if (other.length)
          throw new CheckFailed(`expected X-App-Version ${o.expectVersion}; the answers said ${versions}`, observed);
      }
      return pass(
        `all ${answers.length} answers carried X-App-Version ${versions}${o.expectVersion ? ' as expected' : ''}`,
        observed,
      );
    },
  };

  return [ready, metrics, unauthenticated, badToken, unknownSession, acquire, heartbeat, release, version];

  function trackSeat(ctx: CheckContext, hw: string): SeatHolder {
    let sessionId: string | null = null;
    const unregister = ctx.cleanup.add(`seat ${hw}`, async (signal) => {
      const http = new HttpClient({ baseUrl: o.url, signal, timeoutMs: 5000, redact: ctx.redact });
      let id = sessionId;
      if (!id) {
        // The acquire's answer never came: the same subject acquiring the same hardware id gets the seat it holds back (200), or a new one (201).
        const again = await post(http, `${API}/acquire`, { license_key: SMOKE_LICENSE_KEY, hardware_id: hw }, token);
        if (again.status !== 200 && again.status !== 201) return `no seat held (acquire by hardware id answered ${again.status})`;
        id = isObject(again.json) && typeof again.json.session_id === 'string' ? again.json.session_id : null;
        if (!id) throw new Error(`acquire by hardware id answered ${again.status} without a session_id`);
      }
      const r = await post(http, `${API}/release`, { session_id: id }, token);
      if (r.status !== 200 && r.status !== 410) throw new Error(`release of session ${id} answered ${r.status} ${snippet(r)}`);
      return `released session ${id}`;
    });
    return {
      granted(id) {
        sessionId = id;
      },
      nothingHeld: unregister,
      released: unregister,
    };
  }
}

interface SeatHolder {
  granted(sessionId: string): void;
  /** The acquire was answered with a refusal: there is nothing to release. */
  nothingHeld(): void;
  /** The release check released it. */
  released(): void;
}

export const licenseApiSmoke: SmokeSuite = {
  checks: smokeChecks,
  writesAtMost: `one seat of license ${SMOKE_LICENSE_KEY} per attempt of the acquire check (hardware id ${SMOKE_HARDWARE_PREFIX}<run>-<attempt>), always released, also on failure or Ctrl-C`,
  tokenEnv: ['TEST_TOKEN', 'LICENSE_TOKEN'],
};

// ------------------------------------------------------------------------------------------ probes

/** license-api/src/config.ts defaults for the settings the manifest checks read. */
export const CONFIG_DEFAULTS = {
  SHUTDOWN_DELAY_MS: 3000,
  SHUTDOWN_TIMEOUT_MS: 15_000,
  REQUEST_DEADLINE_MS: 5000,
  DEPENDENCY_TIMEOUT_MS: 1000,
} as const;

function drain(env: Record<string, string>): DrainSettings {
  const num = (k: keyof typeof CONFIG_DEFAULTS) => {
    const v = env[k];
    return v !== undefined && /^\d+$/.test(v.trim())
      ? { ms: Number(v), source: `${k}=${v}` }
      : { ms: CONFIG_DEFAULTS[k], source: `${k} unset: the app's default ${CONFIG_DEFAULTS[k]}` };
  };
  const delay = num('SHUTDOWN_DELAY_MS');
  const forced = num('SHUTDOWN_TIMEOUT_MS');
  const deadline = num('REQUEST_DEADLINE_MS');
  const dep = num('DEPENDENCY_TIMEOUT_MS');
  const naive = env.SHUTDOWN_MODE === 'naive';
  return {
    keepServingMs: naive ? 0 : delay.ms,
    forcedExitMs: naive ? 0 : forced.ms,
    longestRequestMs: deadline.ms,
    dropsInFlight: naive,
    readinessCheckTimeoutMs: dep.ms,
    sources: {
      keepServingMs: naive ? 'SHUTDOWN_MODE=naive: closes at once' : delay.source,
      forcedExitMs: naive ? 'SHUTDOWN_MODE=naive' : forced.source,
      longestRequestMs: deadline.source,
      readinessCheckTimeoutMs: dep.source,
    },
  };
}

const statusIs =
  (want: number, body: (j: Record<string, unknown>) => string | null) => (r: { status: number; json: unknown; text: string }) => {
    if (r.status !== want) return `answered ${r.status}, not ${want}: ${r.text.slice(0, 120)}`;
    if (!isObject(r.json)) return `answered ${r.status} without a JSON body: ${r.text.slice(0, 120)}`;
    return body(r.json);
  };

export const licenseApiProbes: ProbeDescription = {
  endpoints: [
    {
      probe: 'startup',
      path: '/health/startup',
      expects: '200 {status: "ok"} once started (503 {status: "starting"} before)',
      judge: statusIs(200, (j) => (j.status === 'ok' ? null : `status ${JSON.stringify(j.status)}, not "ok"`)),
    },
    {
      probe: 'liveness',
      path: '/health/live',
      expects: '200 {status: "ok"} while the process serves HTTP, whatever its dependencies do',
      judge: statusIs(200, (j) => (j.status === 'ok' ? null : `status ${JSON.stringify(j.status)}, not "ok"`)),
      statusWithoutDependency: 200,
    },
    {
      probe: 'readiness',
      path: '/health/ready',
      expects: '200 {status: "ready", checks: {database: "ok"}} while serving; 503 while starting, draining or without Postgres',
      judge: statusIs(200, (j) => {
        const database = isObject(j.checks) ? j.checks.database : undefined;
        return j.status !== 'ready'
          ? `status ${JSON.stringify(j.status)}, not "ready"`
          : database !== 'ok'
            ? `checks.database is ${JSON.stringify(database)}, not "ok"`
            : null;
      }),
      statusWithoutDependency: 503,
    },
  ],
  drain,
};
