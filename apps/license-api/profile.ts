/**
 * Everything the harness knows about the license API: its workload, how to build and release it,
 * the faults it can be broken with, the load its clients make and its sessions (seats).
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { Agent, fetch as fetchOn } from 'undici';
import { findKind, ofKind, renderKustomization, type KubeObject } from '../../lib/kube/render.ts';
import type { ReleaseSpec } from '../../lib/kube/deploy.ts';
import { describeError, errorText } from '../../lib/errors.ts';
import type { Platform } from '../../cluster/target.ts';
import type {
  AppConnection,
  AppProfile,
  DependencyCheck,
  Fault,
  LoadMix,
  SessionAnswer,
  SessionControl,
} from '../../experiments/app-profile.ts';
import {
  creatorOf,
  idleClientsFor,
  licenseFlow,
  licenseFlowEnv,
  requestsPerIteration,
  type LicenseFlowOptions,
  type SessionCreator,
} from './load-scenario.ts';
import { isObject, licenseApiProbes, licenseApiSmoke } from './smoke.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const API = '/api/v1/licenses';
/** The load scenario as a module (its default export reads the variables of licenseFlowEnv), for load agents. */
const LOAD_SCENARIO_MODULE = fileURLToPath(new URL('./load-scenario.ts', import.meta.url));
/** The license the harness's load uses; the embedded and kind overlays seed it with 1,000 seats. */
export const LOAD_LICENSE_KEY = 'TEST-KEY';

export type Overlay = 'embedded' | 'kind' | 'gke';
export const overlayDir = (overlay: Overlay) =>
  fileURLToPath(new URL(`../../license-api/kubernetes/overlays/${overlay}`, import.meta.url));
/**
 * The overlay for what a target offers: its own backing services on the host (embedded), the
 * dependencies in the cluster (kind), or the platform's managed ones (GKE).
 */
const OVERLAY_OF: Record<Platform['services'], Overlay> = { host: 'embedded', 'in-cluster': 'kind', external: 'gke' };
export const overlayFor = (platform: Platform): Overlay => OVERLAY_OF[platform.services];

const deploymentOf = (objects: KubeObject[]) => {
  const d = findKind(objects, 'Deployment', 'license-api');
  if (!d) throw new Error('the manifests render no Deployment license-api');
  return d;
};
const containerOf = (objects: KubeObject[]) => {
  const c = deploymentOf(objects).spec?.template.spec?.containers.find((x) => x.name === 'license-api');
  if (!c) throw new Error('the Deployment license-api has no container license-api');
  return c;
};
/** The container's readiness or liveness probe with its HTTP GET (whose path a fault changes). */
const httpProbeOf = (objects: KubeObject[], kind: 'readinessProbe' | 'livenessProbe') => {
  const probe = containerOf(objects)[kind];
  if (!probe?.httpGet) throw new Error(`the license-api container has no ${kind} with an httpGet`);
  return { probe, httpGet: probe.httpGet };
};

/** The license API's deliberate faults: the same code, switched into a broken release. */
export const FAULTS: Record<string, Fault> = {
  'naive-shutdown': {
    name: 'naive-shutdown',
    side: 'from',
    what: 'the pods close every connection on SIGTERM at once and have no preStop hook, so they are gone while their endpoint is still routed',
    env: { SHUTDOWN_MODE: 'naive', SHUTDOWN_DELAY_MS: '0' },
    transform: (objects) => {
      const c = containerOf(objects);
      if (c.lifecycle) delete c.lifecycle.preStop;
    },
  },
  'errors-after-start': {
    name: 'errors-after-start',
    side: 'to',
    what: 'the new pods answer 500 for their first 60 s while their readiness says ready',
    env: { FAULT_ERRORS_AFTER_START_MS: '60000' },
  },
  'error-rate': {
    name: 'error-rate',
    side: 'to',
    what: "5 % of the new pods' license requests answer 500 (a raised error rate, not an outage)",
    env: { FAULT_ERROR_RATE: '0.05' },
  },
  'slow-release': {
    name: 'slow-release',
    side: 'to',
    what: 'every license request of the new pods takes 150 ms longer (a latency regression that fails nothing)',
    env: { FAULT_EXTRA_LATENCY_MS: '150' },
  },
  'keepalive-drain': {
    name: 'keepalive-drain',
    side: 'from',
    what: 'the pods drain without Connection: close: kept-alive connections stay pinned to a terminating pod until it closes them under its clients',
    env: { FAULT_KEEPALIVE_DRAIN: '1' },
  },
  'contract-break': {
    name: 'contract-break',
    side: 'to',
    what: 'the new pods require a client_version field in heartbeats that the old clients do not send (an incompatible API change): 400',
    env: { FAULT_REQUIRE_CLIENT_VERSION: '1' },
  },
  'state-not-shared': {
    name: 'state-not-shared',
    side: 'to',
    what: 'the new pods keep sessions in their own process, so a session created by an old pod (or another new one) is unknown to them: 404',
    env: { FAULT_SESSIONS_IN_PROCESS: '1' },
  },
  'bad-config': {
    name: 'bad-config',
    side: 'to',
    what: 'the new pods exit at start-up with a configuration error (DB_POOL_MAX=0) and crash-loop',
    env: { DB_POOL_MAX: '0' },
  },
  'never-ready': {
    name: 'never-ready',
    side: 'to',
    what: 'the new pods run but their readiness probe asks a path that never answers 200, so they never become ready',
    transform: (objects) => {
      httpProbeOf(objects, 'readinessProbe').httpGet.path = '/health/never';
    },
  },
  'liveness-checks-dependencies': {
    name: 'liveness-checks-dependencies',
    side: 'to',
    what: "/health/live asks Postgres and Redis (the seed's naive liveness) with the shipped probe timings: an outage longer than the liveness budget restarts every replica at once",
    env: { FAULT_LIVENESS_CHECKS_DEPENDENCIES: 'true' },
  },
  'single-signing-key': {
    name: 'single-signing-key',
    side: 'to',
    what: 'tokens are verified against the first key of the JWKS only, whatever their kid: while a rotation publishes two keys, the tokens of the other are refused',
    env: { FAULT_JWKS_FIRST_KEY_ONLY: 'true' },
  },
  'liveness-on-dependencies': {
    name: 'liveness-on-dependencies',
    side: 'to',
    what: 'an eager liveness probe (every 2 s, 2 failures) that checks the dependencies (it asks /health/ready): a dependency outage restarts every container',
    transform: (objects) => {
      const { probe, httpGet } = httpProbeOf(objects, 'livenessProbe');
      Object.assign(probe, { periodSeconds: 2, failureThreshold: 2, initialDelaySeconds: 0 });
      httpGet.path = '/health/ready';
    },
  },
  'self-restarts': {
    name: 'self-restarts',
    side: 'to',
    what: "each pod's process takes itself out once it has served ~15 s (± 50 %): readiness 503 for 20 s (enough for readiness to take it out of the Service), then it closes its connections and exits for the kubelet to restart it; unnoticed while the endpoints follow readiness, not while the control plane is away",
    env: { FAULT_EXIT_AFTER_MS: '15000', SHUTDOWN_DELAY_MS: '20000', SHUTDOWN_TIMEOUT_MS: '28000' },
  },
  'no-disruption-budget': {
    name: 'no-disruption-budget',
    side: 'to',
    what: 'the PodDisruptionBudget allows every eviction (minAvailable 0, as if there were none) and 4 replicas on 3 nodes put 2 pods on one node: a drain takes both at once',
    transform: (objects) => {
      const d = deploymentOf(objects);
      d.spec = { ...d.spec!, replicas: 4 };
      for (const o of ofKind(objects, 'PodDisruptionBudget')) o.spec = { ...o.spec, minAvailable: 0 };
    },
  },
};

/**
 * A bearer token the overlay's license API accepts (HS256 with the overlay's own throw-away secret),
 * or, on a platform whose secrets are provided, LICENSE_TOKEN.
 */
export async function licenseApiToken(platform: Platform, subject = 'verdict', expiresIn = '2h'): Promise<string> {
  if (platform.secrets === 'provided') {
    const t = process.env.LICENSE_TOKEN ?? process.env.TEST_TOKEN;
    if (!t) throw new Error("an existing cluster's license API needs a token: set LICENSE_TOKEN (or TEST_TOKEN)");
    return t;
  }
  const overlay = overlayFor(platform);
  const secret = ofKind(await renderKustomization(overlayDir(overlay)), 'Secret').find((x) =>
    x.metadata.name.startsWith('license-api-secrets'),
  );
  const key = Buffer.from(secret?.data?.JWT_SECRET ?? '', 'base64').toString();
  if (key.length < 32) throw new Error(`the ${overlay} overlay has no usable JWT_SECRET`);
  return await new SignJWT({ licenses: ['*'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(key));
}

/** How long a held session's acquire or release may take before the harness gives up on it. */
const CALL_TIMEOUT_MS = 10_000;

/**
 * The harness's own calls on its held sessions and the seat count, each on a new connection (undici:
 * pipelining 0 keeps none alive). They are the instrument, not the load: a kept-alive connection
 * from an earlier experiment, whose pod has gone since (force-deleted between tests, or killed), could
 * leave a call unanswered for 10 s and ERROR the next experiment, or make a live session look dead.
 * A new connection goes where the Service sends new connections now.
 */
const noKeepAlive = new Agent({ pipelining: 0 });

async function call(
  baseUrl: string,
  token: string,
  path: string,
  body: unknown,
): Promise<{ status: number; text: string; creator: SessionCreator }> {
  try {
    const res = await fetchOn(baseUrl + path, {
      method: 'POST',
      body: JSON.stringify(body),
      dispatcher: noKeepAlive,
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    });
    return { status: res.status, text: await res.text(), creator: creatorOf(Object.fromEntries(res.headers)) };
  } catch (err) {
    // Say which call and what happened: a bare "The operation was aborted due to timeout" names neither.
    const what = (err as Error).name === 'TimeoutError' ? `no answer within ${CALL_TIMEOUT_MS / 1000} s` : describeError(err);
    throw new Error(`POST ${baseUrl}${path}: ${what}`, { cause: err });
  }
}

/** How often the harness asks to release a held session before it says it could not (waits 0.5, 1, 1.5, 2 s between). */
const RELEASE_ATTEMPTS = 5;

/** Sessions the harness holds open, and who (version, pod) created each: the load's heartbeats on them carry it. */
export function sessionControl(baseUrl: string, token: string, creators: Map<string, SessionCreator>): SessionControl {
  const run = Math.random().toString(36).slice(2, 8);
  return {
    async open(n) {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = await call(baseUrl, token, `${API}/acquire`, {
          license_key: LOAD_LICENSE_KEY,
          hardware_id: `verdict-held-${run}-${i}`,
        }).catch((err: Error) => {
          throw new Error(`could not open session ${i + 1} of ${n}: ${err.message}`, { cause: err });
        });
        if (r.status !== 200 && r.status !== 201)
          throw new Error(`could not open session ${i + 1} of ${n}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
        const body: unknown = JSON.parse(r.text);
        const id = isObject(body) && typeof body.session_id === 'string' ? body.session_id : '';
        if (!id)
          throw new Error(
            `could not open session ${i + 1} of ${n}: acquire answered without a session_id: ${r.text.slice(0, 200)}`,
          );
        ids.push(id);
        creators.set(id, r.creator);
      }
      return ids;
    },
    async check(ids) {
      const alive: string[] = [];
      const dead: SessionAnswer[] = [];
      for (const id of ids) {
        const r = await call(baseUrl, token, `${API}/heartbeat`, { session_id: id }).catch((err) => ({
          status: 0,
          text: String(err),
        }));
        if (r.status === 200) alive.push(id);
        else dead.push({ id, status: r.status, body: r.text.slice(0, 200) });
      }
      return { alive, dead };
    },
    async close(ids) {
      const notReleased: SessionAnswer[] = [];
      await Promise.all(
        ids.map(async (id) => {
          for (let attempt = 1; ; attempt++) {
            const r = await call(baseUrl, token, `${API}/release`, { session_id: id }).catch((err: unknown) => ({
              status: 0,
              text: errorText(err),
            }));
            // Released, or already gone (ended or expired): the seat is free either way.
            if ((r.status >= 200 && r.status < 300) || r.status === 404 || r.status === 410) return;
            if (attempt === RELEASE_ATTEMPTS) {
              notReleased.push({ id, status: r.status, body: r.text.slice(0, 200) });
              return;
            }
            await sleep(500 * attempt);
          }
        }),
      );
      return notReleased;
    },
    async activeCount() {
      try {
        const res = await fetchOn(`${baseUrl}/metrics`, { dispatcher: noKeepAlive, signal: AbortSignal.timeout(5000) });
        const m = /^license_active_sessions(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/m.exec(await res.text());
        return m ? Number(m[1]) : null;
      } catch {
        return null;
      }
    },
  };
}

/**
 * The kind overlay's Postgres and Redis as the harness runs them: Debian's postgresql-15 and
 * redis-server on the local base (test/images/, the same stand-ins the container tests use), built
 * with Docker and loaded with `kind load docker-image`, so that no node ever asks a registry for
 * the overlay's official images (`kubectl apply -k` of the overlay, with a registry, still uses them).
 */
export const KIND_SUPPORT_IMAGES = {
  postgres: {
    deployment: 'postgres',
    ref: 'verdict/postgres:15-bookworm-local',
    context: fileURLToPath(new URL('../../test/images/postgres/', import.meta.url)),
  },
  redis: {
    deployment: 'redis',
    ref: 'verdict/redis:7-bookworm-local',
    context: fileURLToPath(new URL('../../test/images/redis/', import.meta.url)),
  },
};

/** kind: the stand-in images for the dependencies, and `imagePullPolicy: Never` everywhere (a missing image fails, it is never pulled). */
function kindImages(objects: KubeObject[]): void {
  for (const o of ofKind(objects, 'Deployment')) {
    const support = Object.values(KIND_SUPPORT_IMAGES).find((x) => x.deployment === o.metadata.name);
    for (const c of o.spec?.template.spec?.containers ?? []) {
      if (support) c.image = support.ref;
      c.imagePullPolicy = 'Never';
    }
  }
}

/** The Secret keys that name the host services (the embedded overlay's, at the default slot's gateway). */
const HOST_SERVICE_URLS = ['DATABASE_URL', 'REDIS_URL'];

/**
 * Host services (embedded): the Secret's service URLs pointed at `address`, where this cluster's pods
 * reach Postgres and Redis (its network slot's gateway; the overlay names slot 0's, 10.244.0.1).
 */
function hostServicesAt(objects: KubeObject[], address: string): void {
  for (const o of ofKind(objects, 'Secret')) {
    const data = o.data as Record<string, string> | undefined;
    for (const key of HOST_SERVICE_URLS) {
      if (!data?.[key]) continue;
      const url = new URL(Buffer.from(data[key], 'base64').toString('utf8'));
      url.hostname = address;
      data[key] = Buffer.from(url.toString()).toString('base64');
    }
  }
}

/**
 * Each pod's connections to a dependency, asked at the pod's address once the dependency is back
 * (the stale-connection sweep of the outage rehearsals). Postgres: a release of a session that does
 * not exist, answered 404 SESSION_NOT_FOUND through the request pool (DB_POOL_MAX, 10 as shipped:
 * a burst of 20 draws every pooled connection) and changing nothing; a 503 is a connection that did
 * not work. Redis: readiness's own report of it (`checks.redis`); the pod has one client.
 */
const DEPENDENCY_CHECKS: Record<string, (token: string) => DependencyCheck> = {
  postgres: (token) => ({
    burst: 20,
    async ask(baseUrl) {
      const r = await fetch(`${baseUrl}${API}/release`, {
        method: 'POST',
        body: JSON.stringify({ session_id: randomUUID() }),
        signal: AbortSignal.timeout(5000),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      });
      const text = await r.text();
      return r.status === 404 ? null : `HTTP ${r.status} ${text.slice(0, 120)}`;
    },
  }),
  redis: () => ({
    burst: 4,
    async ask(baseUrl) {
      const r = await fetch(`${baseUrl}/health/ready`, { signal: AbortSignal.timeout(5000) });
      const redis = ((await r.json().catch(() => ({}))) as { checks?: { redis?: string } }).checks?.redis;
      return redis === 'ok' ? null : `readiness reports redis: ${redis ?? `nothing (HTTP ${r.status})`}`;
    },
  }),
};

export const licenseApi: AppProfile = {
  name: 'license-api',
  workload: {
    namespace: 'coditect',
    deployment: 'license-api',
    container: 'license-api',
    selector: 'app=license-api',
    service: 'license-api',
    nodePort: 30080,
    readyPath: '/health/ready',
  },
  identityHeaders: { backend: 'x-served-by', version: 'x-app-version' },
  // A heartbeat or release for a session the pod does not know: 404 SESSION_NOT_FOUND. (410 is a
  // session it knows to be released or expired: the same answer to a client that lost its session.)
  unknownResource: { statuses: [404, 410], what: 'session' },
  faults: FAULTS,
  naiveShutdown: FAULTS['naive-shutdown'],
  dependencies: [
    {
      name: 'postgres',
      neededBy: 'every license request (acquire, heartbeat, release) and readiness',
      steps: ['acquire', 'heartbeat', 'release', 'heartbeat-live', 'heartbeat-idle-client'],
      kind: 'database',
    },
    // The rate limiter is off in the shipped overlays (RATE_LIMIT_PER_MINUTE unset): nothing needs Redis.
    {
      name: 'redis',
      neededBy: 'only the acquire rate limiter, when RATE_LIMIT_PER_MINUTE is set (off as shipped)',
      steps: [],
      kind: 'cache',
    },
  ],
  supportImages(platform) {
    if (platform.services !== 'in-cluster') return [];
    return Object.values(KIND_SUPPORT_IMAGES).map((x) => ({ ref: x.ref, docker: { context: x.context } }));
  },
  image(tag) {
    return {
      ref: `license-api:${tag}`,
      bundle: {
        cmd: ['node', 'server.mjs'],
        fill: async (dir) => {
          const { buildLicenseApi } = await import('../../license-api/build.ts');
          await buildLicenseApi(dir, { version: tag });
        },
      },
      docker: { context: REPO, buildArgs: { APP_VERSION: tag } },
    };
  },
  release(tag, platform, faults = []): ReleaseSpec {
    const env: Record<string, string> = {};
    for (const f of faults) Object.assign(env, f.env ?? {});
    const transforms = faults.flatMap((f) => (f.transform ? [f.transform] : []));
    // Dependencies in the cluster run the stand-ins the harness loads (supportImages), and nothing is pulled.
    if (platform.services === 'in-cluster') transforms.unshift(kindImages);
    const at = platform.services === 'host' ? platform.hostServicesAddress : undefined;
    if (at) transforms.unshift((objects) => hostServicesAt(objects, at));
    return {
      kustomization: overlayDir(overlayFor(platform)),
      deployment: 'license-api',
      container: 'license-api',
      image: `license-api:${tag}`,
      version: tag,
      env,
      transform: transforms.length
        ? (objects) => {
            for (const t of transforms) t(objects);
          }
        : undefined,
    };
  },
  async connect(target, baseUrl): Promise<AppConnection> {
    const token = await licenseApiToken(target.platform);
    const creators = new Map<string, SessionCreator>();
    // Beside the busy clients, SDK-like ones on the held sessions whose pooled keep-alive
    // connections sit idle ~2 s between heartbeats: well below the drain delay (3 s), so a good
    // drain tells every one of them to reconnect elsewhere (Connection: close) before it closes them.
    const mix = ({ sessions, rate, credentials }: LoadMix): LicenseFlowOptions => {
      const o: LicenseFlowOptions = {
        token,
        tokens: credentials,
        licenseKey: LOAD_LICENSE_KEY,
        sessions,
        heartbeatWeight: sessions?.length ? 9 : 0,
        sessionCreators: Object.fromEntries(
          (sessions ?? []).flatMap((id) => (creators.has(id) ? [[id, creators.get(id)!]] : [])),
        ),
      };
      if (sessions?.length && rate) o.idleClients = idleClientsFor(rate, o);
      return o;
    };
    return {
      scenario: (m) => licenseFlow(mix(m)),
      requestsPerIteration: (m) => requestsPerIteration(mix(m)),
      agentScenario: (m) => {
        if (m.credentials)
          throw new Error('a load whose token changes during the run runs in this process: run it without --agents');
        return { module: LOAD_SCENARIO_MODULE, env: licenseFlowEnv(mix(m)) };
      },
      sessions: sessionControl(baseUrl, token, creators),
      dependencyCheck: (dependency) => DEPENDENCY_CHECKS[dependency]?.(token),
    };
  },
  smoke: licenseApiSmoke,
  probes: licenseApiProbes,
  signedTokens: {
    // The harness's key set instead of the overlay's HS256 secret (exactly one of the two: an empty
    // JWT_SECRET is unset), refetched every 30 s: the key-rotation rehearsal's own setting, read
    // back from the rendered release by keySetRefreshMs like any other value.
    env: (url) => ({ JWT_SECRET: '', JWT_JWKS_URL: url, JWT_JWKS_REFRESH_SECONDS: '30' }),
    keySetRefreshMs(env) {
      const v = env.JWT_JWKS_REFRESH_SECONDS;
      return v !== undefined && /^\d+$/.test(v.trim())
        ? { ms: Number(v) * 1000, source: `${v} s (JWT_JWKS_REFRESH_SECONDS=${v})` }
        : { ms: 600_000, source: "600 s (JWT_JWKS_REFRESH_SECONDS unset: the app's default)" };
    },
    mint: (key, lifetimeSeconds) =>
      new SignJWT({ licenses: ['*'] })
        .setProtectedHeader({ alg: key.alg, kid: key.kid })
        .setSubject('verdict-key-rotation')
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + lifetimeSeconds)
        .sign(key.privateKey),
    async ask(baseUrl, token) {
      const r = await fetch(`${baseUrl}${API}/release`, {
        method: 'POST',
        body: JSON.stringify({ session_id: randomUUID() }),
        signal: AbortSignal.timeout(5000),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      });
      await r.body?.cancel();
      return r.status;
    },
  },
};
