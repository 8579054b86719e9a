/**
 * The license API's client flows as a load scenario: acquire a seat → heartbeat it → release it,
 * the session id carried from step to step (with the version and pod that created it, so that a
 * session one version created and another does not know is named as such), one fresh hardware id
 * per iteration; optionally mixed with heartbeats on long-lived sessions (what a fleet of running
 * clients sends most), with the same heartbeats from idle keep-alive clients (as SDKs and proxies
 * hold them: pooled connections of their own, idle a few seconds between requests) and with
 * readiness probes.
 *
 *   LICENSE_TOKEN=$(JWT_SECRET=... verdict token --sub load) LICENSE_KEY=LOAD-KEY \
 *     verdict load --url http://127.0.0.1:8080 --scenario apps/license-api/load-scenario.ts --rate 100/s --duration 1m
 *
 * Seed the key with enough seats for the sessions in flight (LICENSE_SEED=LOAD-KEY=100000): a 409
 * NO_SEAT_AVAILABLE is counted as a failure, because a rollout that loses seats is a broken rollout.
 */
import type { Scenario } from '../../lib/load/scenario.ts';
import type { CredentialSource } from '../../lib/load/credentials.ts';

export interface LicenseFlowOptions {
  /** Bearer token for the license API (`verdict token`). */
  token: string;
  /** Asked for the bearer token of every request instead of `token` (a token issuer rotating its signing key). */
  tokens?: CredentialSource;
  licenseKey?: string;
  /** Heartbeats per session (default 1). */
  heartbeats?: number;
  /** Pause between steps, ms (default 0). */
  thinkTimeMs?: number;
  /** Weight of the readiness-probe flow against the license flow's 1 (default 0: none). */
  probeWeight?: number;
  /** Long-lived sessions to heartbeat (each iteration of that flow heartbeats one, round robin). */
  sessions?: string[];
  /** Weight of the heartbeat-on-a-live-session flow against the license flow's 1 (default 0). */
  heartbeatWeight?: number;
  /** Who created each long-lived session (the version and pod that answered its acquire), by session id. */
  sessionCreators?: Record<string, SessionCreator>;
  /**
   * Clients like real SDKs: heartbeats on the long-lived sessions through a pool of their own
   * keep-alive connections, `connections` of them, so that each sits idle between its requests
   * (connections / that flow's rate, a few seconds), beside the busy main pool; and, like clients
   * without a stale-connection check (Java's HttpURLConnection keep-alive cache, Apache HttpClient
   * below its validateAfterInactivity), they notice that the server closed an idle connection only
   * when they next write on it. `weight` is the flow's share against the license flow's 1. Needs `sessions`.
   */
  idleClients?: { connections: number; weight: number };
}

/** The pool of the idle keep-alive clients. */
export const IDLE_CLIENT_POOL = 'idle-keep-alive-clients';

/** The app version and pod whose answer created a session (its X-App-Version and X-Served-By). */
export interface SessionCreator {
  version: string | null;
  pod: string | null;
}

const header = (v: string | string[] | undefined): string | null => (Array.isArray(v) ? (v[0] ?? null) : (v ?? null));

/** The creator of a session from the headers of the response that created it. */
export function creatorOf(headers: Readonly<Record<string, string | string[] | undefined>>): SessionCreator {
  return { version: header(headers['x-app-version']), pod: header(headers['x-served-by']) };
}

export function licenseFlow(o: LicenseFlowOptions): Scenario {
  const run = Math.random().toString(36).slice(2, 8);
  const heartbeats = Array.from({ length: o.heartbeats ?? 1 }, () => ({
    name: 'heartbeat',
    method: 'POST',
    path: '/api/v1/licenses/heartbeat',
    thinkTimeMs: o.thinkTimeMs,
    body: (c: { vars: Record<string, unknown> }) => ({ session_id: c.vars.sessionId }),
    createdBy: (c: { vars: Record<string, unknown> }) => c.vars.createdBy as SessionCreator,
  }));
  const scenario: Scenario = {
    name: 'license-flow',
    headers: o.tokens ? () => ({ authorization: `Bearer ${o.tokens!.current()}` }) : { authorization: `Bearer ${o.token}` },
    flows: [
      {
        name: 'acquire-heartbeat-release',
        weight: 1,
        data: (iteration) => ({ hardwareId: `load-${run}-${iteration}` }),
        steps: [
          {
            name: 'acquire',
            method: 'POST',
            path: '/api/v1/licenses/acquire',
            thinkTimeMs: o.thinkTimeMs,
            expectStatus: [200, 201],
            body: (c) => ({
              license_key: o.licenseKey ?? 'TEST-KEY',
              hardware_id: (c.data as { hardwareId: string }).hardwareId,
            }),
            capture: (res, c) => {
              const id = res.json<{ session_id?: unknown }>().session_id;
              if (typeof id !== 'string') throw new Error('acquire answered without a session_id');
              c.vars.sessionId = id;
              // Who created it: a later step answered "unknown session" by another version names both.
              c.vars.createdBy = creatorOf(res.headers);
            },
          },
          ...heartbeats,
          {
            name: 'release',
            method: 'POST',
            path: '/api/v1/licenses/release',
            body: (c) => ({ session_id: c.vars.sessionId }),
            createdBy: (c) => c.vars.createdBy as SessionCreator,
          },
        ],
      },
    ],
  };
  const pool = o.sessions ?? [];
  if (pool.length && o.heartbeatWeight) {
    scenario.flows.push({
      name: 'heartbeat-live-session',
      weight: o.heartbeatWeight,
      data: (iteration) => pool[iteration % pool.length],
      steps: [
        {
          name: 'heartbeat-live',
          method: 'POST',
          path: '/api/v1/licenses/heartbeat',
          body: (c) => ({ session_id: c.data as string }),
          createdBy: (c) => o.sessionCreators?.[c.data as string],
        },
      ],
    });
  }
  const idle = o.idleClients;
  if (pool.length && idle && idle.weight > 0) {
    // Like clients without a stale-connection check: they learn that the server closed an idle
    // connection only when they next write on it. `Connection: close` during a drain is what tells them.
    scenario.pools = { [IDLE_CLIENT_POOL]: { connections: idle.connections, watchIdle: false } };
    scenario.flows.push({
      name: 'heartbeat-idle-client',
      weight: idle.weight,
      pool: IDLE_CLIENT_POOL,
      data: (iteration) => pool[iteration % pool.length],
      steps: [
        {
          name: 'heartbeat-idle-client',
          method: 'POST',
          path: '/api/v1/licenses/heartbeat',
          body: (c) => ({ session_id: c.data as string }),
          createdBy: (c) => o.sessionCreators?.[c.data as string],
        },
      ],
    });
  }
  if (o.probeWeight)
    scenario.flows.push({ name: 'readiness', weight: o.probeWeight, steps: [{ name: 'ready', path: '/health/ready' }] });
  return scenario;
}

/** Mean requests per iteration of {@link licenseFlow} with these options. */
export function requestsPerIteration(
  o: Pick<LicenseFlowOptions, 'heartbeats' | 'probeWeight' | 'sessions' | 'heartbeatWeight' | 'idleClients'>,
): number {
  const flow = 2 + (o.heartbeats ?? 1);
  const hb = o.sessions?.length && o.heartbeatWeight ? o.heartbeatWeight : 0;
  const idle = o.sessions?.length && o.idleClients ? o.idleClients.weight : 0;
  const probe = o.probeWeight ?? 0;
  return (flow + hb + idle + probe) / (1 + hb + idle + probe);
}

/**
 * Idle keep-alive clients for a load of `rate` requests/s: a flow of `weight` and as many
 * connections as keep each idle about `idleMs` between its requests (at least 2).
 */
export function idleClientsFor(
  rate: number,
  o: Pick<LicenseFlowOptions, 'heartbeats' | 'probeWeight' | 'sessions' | 'heartbeatWeight'>,
  weight = 1,
  idleMs = 2000,
): { connections: number; weight: number } {
  const perIteration = requestsPerIteration({ ...o, idleClients: { connections: 1, weight } });
  const hb = o.sessions?.length && o.heartbeatWeight ? o.heartbeatWeight : 0;
  const iterations = rate / perIteration;
  const flowRate = (iterations * weight) / (1 + hb + weight + (o.probeWeight ?? 0));
  return { weight, connections: Math.max(2, Math.round((flowRate * idleMs) / 1000)) };
}

/**
 * The options of {@link licenseFlow} as environment variables, for a scenario module that runs
 * elsewhere (a load agent): LICENSE_TOKEN, LICENSE_KEY, LICENSE_PROBE_WEIGHT, LICENSE_SESSIONS
 * (comma-separated session ids), LICENSE_HEARTBEAT_WEIGHT, LICENSE_SESSION_CREATORS (JSON: session
 * id → {version, pod}) and LICENSE_IDLE_CLIENTS (`weight:connections`; N agents hold 1/N each).
 */
export function licenseFlowEnv(o: LicenseFlowOptions): Record<string, string> {
  const env: Record<string, string> = { LICENSE_TOKEN: o.token, LICENSE_KEY: o.licenseKey ?? 'TEST-KEY' };
  if (o.probeWeight) env.LICENSE_PROBE_WEIGHT = String(o.probeWeight);
  if (o.sessions?.length) env.LICENSE_SESSIONS = o.sessions.join(',');
  if (o.heartbeatWeight) env.LICENSE_HEARTBEAT_WEIGHT = String(o.heartbeatWeight);
  if (o.sessionCreators && Object.keys(o.sessionCreators).length)
    env.LICENSE_SESSION_CREATORS = JSON.stringify(o.sessionCreators);
  if (o.idleClients) env.LICENSE_IDLE_CLIENTS = `${o.idleClients.weight}:${o.idleClients.connections}`;
  return env;
}

/** For `--scenario` and the load agents: configured from the variables of {@link licenseFlowEnv}. */
export default licenseFlow({
  token: process.env.LICENSE_TOKEN ?? '',
  licenseKey: process.env.LICENSE_KEY ?? 'TEST-KEY',
  probeWeight: Number(process.env.LICENSE_PROBE_WEIGHT ?? 0),
  sessions: process.env.LICENSE_SESSIONS ? process.env.LICENSE_SESSIONS.split(',') : undefined,
  heartbeatWeight: Number(process.env.LICENSE_HEARTBEAT_WEIGHT ?? 0),
  sessionCreators: process.env.LICENSE_SESSION_CREATORS ? JSON.parse(process.env.LICENSE_SESSION_CREATORS) : undefined,
  idleClients: process.env.LICENSE_IDLE_CLIENTS
    ? (([weight, connections]) => ({ weight, connections }))(process.env.LICENSE_IDLE_CLIENTS.split(':').map(Number))
    : undefined,
});
