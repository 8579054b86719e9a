/**
 * Scenarios: what one iteration does. A scenario is a weighted mix of flows; a flow is a sequence of
 * steps (HTTP requests) that share per-iteration data and can carry values forward (the license flow
 * acquire → heartbeat → release carries `session_id`). A scenario file is a TypeScript module whose
 * default export is a {@link Scenario}; it needs only `import type` from here, so it bundles cleanly.
 */
import type { Dispatcher } from 'undici';
import type { Interner } from './ledger.ts';

export interface IterationContext<D = unknown> {
  /** Iteration number, unique in the run (0, 1, 2, ...). */
  readonly iteration: number;
  /** The flow's per-iteration data (`flow.data(iteration)`), or undefined. */
  readonly data: D;
  /** Values captured by earlier steps of this iteration. */
  readonly vars: Record<string, unknown>;
}

export interface StepResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body as text (read only for steps with `check` or `capture`; capped at 1 MiB). */
  text(): string;
  /** The body parsed as JSON, as the type the caller expects (unknown unless told: nothing checks it). */
  json<T = unknown>(): T;
}

export type Dynamic<T, D> = T | ((ctx: IterationContext<D>) => T);

export interface Step<D = unknown> {
  /** Name in the ledger and in per-name statistics (k6's `name` tag). */
  name: string;
  method?: string;
  /** Absolute path with query ("/api/v1/licenses/acquire"); the origin is the run's URL. */
  path: Dynamic<string, D>;
  headers?: Dynamic<Record<string, string>, D>;
  /** A string or bytes are sent as is; any other object is sent as JSON. */
  body?: Dynamic<string | Uint8Array | object | undefined, D>;
  /** Statuses that count as success. Default: 200–399 (k6's expected_response). */
  expectStatus?: readonly number[];
  /** Extra verdict on the response; false (or a throw) fails the request as `check_failed`. */
  check?: (res: StepResponse, ctx: IterationContext<D>) => boolean;
  /** Reads values from the response into `ctx.vars` for later steps; a throw fails the request. */
  capture?: (res: StepResponse, ctx: IterationContext<D>) => void;
  /** Pause after this step before the next one (ms). */
  thinkTimeMs?: number;
  /**
   * The route of this request for its kind (method + route + body shape), when its path carries
   * ids ("/api/v1/sessions/:id"). Default: a fixed path without its query; a computed path: the step's name.
   */
  route?: string;
  /**
   * Who created the resource this request uses: the app version and pod of the response that
   * created it (a step's `capture` can note them from the response headers). Recorded per request,
   * so that a resource one version or pod created and another answers as unknown is named as state
   * the versions do not share.
   */
  createdBy?: (ctx: IterationContext<D>) => { version?: string | null; pod?: string | null } | null | undefined;
}

export interface Flow<D = unknown> {
  name: string;
  /** Relative share of iterations (default 1). */
  weight?: number;
  /**
   * The scenario's connection pool (`Scenario.pools`) this flow's requests go through; default the
   * run's main pool. A small pool for a low-rate flow makes clients whose pooled keep-alive
   * connections sit idle between requests, as SDKs and proxies keep them.
   */
  pool?: string;
  /** Per-iteration data, e.g. a unique hardware id per iteration. */
  data?: (iteration: number) => D;
  steps: Step<D>[];
}

export interface Scenario {
  name?: string;
  /**
   * Headers sent with every request (e.g. Authorization). A function is asked for every request: a
   * credential that changes during the run (`lib/load/credentials.ts`, a token issuer rotating its key).
   */
  headers?: Record<string, string> | (() => Record<string, string>);
  /**
   * Each flow has its own data type, and a flow's callbacks take it as a parameter, so no one type
   * (unknown included) takes every flow: only any does.
   */
  // oxlint-disable-next-line typescript/no-explicit-any -- a list of flows of different data types (see above)
  flows: Flow<any>[];
  /**
   * Connection pools beside the run's main one, by name, for flows that name them: each its own
   * keep-alive connections, used round robin (the one idle longest first), so a pool of N
   * connections carrying R requests/s leaves each idle about N/R s between requests. `watchIdle:
   * false`: clients that notice a server's close of an idle connection only when they next write on
   * it (no stale-connection check), so a close without `Connection: close` fails their next request.
   */
  pools?: Record<string, PoolSpec>;
}

/**
 * The shape of a request body for its kind: a JSON object's keys with their value types, sorted
 * (`{hardware_id:string,license_key:string}`); `text` or `bytes` for a raw body; '' for none.
 */
export function bodyShape(body: unknown): string {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return 'text';
  if (body instanceof Uint8Array) return 'bytes';
  if (Array.isArray(body)) return '[array]';
  if (typeof body !== 'object') return typeof body;
  const keys = Object.keys(body).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const v = (body as Record<string, unknown>)[keys[i]];
    out += `${i ? ',' : ''}${keys[i]}:${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v}`;
  }
  return out + '}';
}

/** A request kind as the ledger records it: `METHOD route shape`. */
export function requestKind(method: string, route: string, shape: string): string {
  return shape ? `${method} ${route} ${shape}` : `${method} ${route}`;
}

/** The parts of a request kind ({@link requestKind}); a route holds no space. */
export function splitKind(kind: string): { method: string; route: string; shape: string } {
  const a = kind.indexOf(' ');
  const b = kind.indexOf(' ', a + 1);
  return {
    method: kind.slice(0, a),
    route: b < 0 ? kind.slice(a + 1) : kind.slice(a + 1, b),
    shape: b < 0 ? '' : kind.slice(b + 1),
  };
}

/** A connection pool of a scenario (see `Scenario.pools`). */
export interface PoolSpec {
  connections: number;
  /** Default true; false: idle connections are not watched (see `Scenario.pools`). */
  watchIdle?: boolean;
}

/** Identity function that gives a scenario file its types. */
export function defineScenario(scenario: Scenario): Scenario {
  return scenario;
}

/** A scenario of one request, repeated. */
export function singleRequest(req: {
  name?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | object;
  expectStatus?: readonly number[];
}): Scenario {
  return {
    name: req.name ?? 'request',
    flows: [
      {
        name: req.name ?? 'request',
        steps: [
          {
            name: req.name ?? `${req.method ?? 'GET'} ${req.path ?? '/'}`,
            method: req.method ?? 'GET',
            path: req.path ?? '/',
            headers: req.headers,
            body: req.body,
            expectStatus: req.expectStatus,
          },
        ],
      },
    ],
  };
}

/** Structural check of a scenario (a module's default export may be anything). */
export function validateScenario(value: unknown, where = 'scenario'): Scenario {
  const s = value as Scenario;
  if (!s || typeof s !== 'object' || !Array.isArray(s.flows) || s.flows.length === 0) {
    throw new TypeError(`${where}: expected an object with a non-empty "flows" array (export default defineScenario({...}))`);
  }
  for (const f of s.flows) {
    if (!f || typeof f.name !== 'string' || !Array.isArray(f.steps) || f.steps.length === 0) {
      throw new TypeError(`${where}: every flow needs a "name" and a non-empty "steps" array`);
    }
    if (f.weight !== undefined && !(f.weight > 0)) throw new TypeError(`${where}: flow "${f.name}" weight must be > 0`);
    if (f.pool !== undefined && !s.pools?.[f.pool])
      throw new TypeError(`${where}: flow "${f.name}" names pool "${f.pool}", which the scenario's "pools" does not declare`);
    for (const st of f.steps) {
      if (!st || typeof st.name !== 'string' || (typeof st.path !== 'string' && typeof st.path !== 'function')) {
        throw new TypeError(`${where}: every step of flow "${f.name}" needs a "name" and a "path"`);
      }
      if (typeof st.path === 'string' && !st.path.startsWith('/')) {
        throw new TypeError(`${where}: step "${st.name}" path must start with "/" (the origin comes from --url)`);
      }
    }
  }
  for (const [name, p] of Object.entries(s.pools ?? {})) {
    if (!p || !Number.isInteger(p.connections) || p.connections < 1 || p.connections > 10_000)
      throw new TypeError(`${where}: pool "${name}" needs "connections", a whole number from 1 to 10000`);
    if (p.watchIdle !== undefined && typeof p.watchIdle !== 'boolean')
      throw new TypeError(`${where}: pool "${name}" watchIdle must be true or false`);
  }
  return s;
}

// ---- compiled form, used by the engine ----

const JSON_TYPE = 'application/json';
/** The request kind's id, carried on the options object the step built (undici reads only its own fields). */
const KIND = Symbol('verdict.requestKind');
type KindedOptions = Dispatcher.DispatchOptions & { [KIND]?: number };

export interface CompiledStep {
  readonly step: Step;
  readonly nameId: number;
  /** Dispatch options reused for every request when nothing in the step is dynamic. */
  readonly staticOptions: Dispatcher.DispatchOptions | null;
  readonly needsBody: boolean;
  options(ctx: IterationContext): Dispatcher.DispatchOptions;
  /** The request kind's id (in the `kinds` interner) of the options `options` returned last. */
  kindOf(opts: Dispatcher.DispatchOptions): number;
  expects(status: number): boolean;
}

/** Request kinds: a method, route and body shape each, interned (the ledger's `kinds`). */
export interface KindInterner {
  id(value: string): number;
}

export interface CompiledFlow {
  readonly flow: Flow;
  readonly steps: CompiledStep[];
  /** Index of its pool in `compileScenario(...).pools` (0: the run's main pool). */
  readonly pool: number;
}

function encodeBody(body: unknown): { body?: string | Uint8Array; json: boolean } {
  if (body === undefined || body === null) return { json: false };
  if (typeof body === 'string' || body instanceof Uint8Array) return { body, json: false };
  return { body: JSON.stringify(body), json: true };
}

function compileStep(
  step: Step,
  scenario: Scenario,
  names: Interner,
  hostHeader: string | undefined,
  kinds: KindInterner | undefined,
): CompiledStep {
  const method = (step.method ?? 'GET').toUpperCase();
  const route = step.route ?? (typeof step.path === 'string' ? step.path.split('?')[0] : step.name);
  const shapes = new Map<string, number>();
  const kindId = (body: unknown): number => {
    if (!kinds) return 0;
    const shape = bodyShape(body);
    let id = shapes.get(shape);
    if (id === undefined) {
      id = kinds.id(requestKind(method, route, shape));
      shapes.set(shape, id);
    }
    return id;
  };
  const base: Record<string, string> = {};
  if (hostHeader) base.host = hostHeader;
  const perRequest = typeof scenario.headers === 'function' ? scenario.headers : null;
  if (!perRequest) Object.assign(base, scenario.headers);
  const expect = step.expectStatus ? new Set(step.expectStatus) : null;
  const build = (ctx: IterationContext): Dispatcher.DispatchOptions => {
    const path = typeof step.path === 'function' ? step.path(ctx) : step.path;
    const extra = typeof step.headers === 'function' ? step.headers(ctx) : step.headers;
    const raw = typeof step.body === 'function' ? (step.body as (c: IterationContext) => unknown)(ctx) : step.body;
    const { body, json } = encodeBody(raw);
    const headers: Record<string, string> = perRequest ? { ...base, ...perRequest(), ...extra } : { ...base, ...extra };
    if (json && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = JSON_TYPE;
    const opts: KindedOptions = { method, path, headers, body };
    opts[KIND] = kindId(raw);
    return opts;
  };
  const isStatic =
    !perRequest && typeof step.path !== 'function' && typeof step.headers !== 'function' && typeof step.body !== 'function';
  const staticOptions = isStatic ? build({ iteration: 0, data: undefined, vars: {} }) : null;
  return {
    step,
    nameId: names.id(step.name),
    staticOptions,
    needsBody: Boolean(step.check || step.capture),
    options: staticOptions ? () => staticOptions : build,
    kindOf: (opts) => (opts as KindedOptions)[KIND] ?? 0,
    expects: expect ? (s) => expect.has(s) : (s) => s >= 200 && s < 400,
  };
}

/** Turns a scenario into flows with prebuilt request options and a deterministic weighted picker. */
export function compileScenario(
  scenario: Scenario,
  names: Interner,
  hostHeader?: string,
  kinds?: KindInterner,
): { flows: CompiledFlow[]; pick(): CompiledFlow; pools: Array<PoolSpec & { name: string }> } {
  validateScenario(scenario);
  /** Index 0 is the run's main pool (its size is the engine's `connections`). */
  const pools: Array<PoolSpec & { name: string }> = [
    { name: '', connections: 0 },
    ...Object.entries(scenario.pools ?? {}).map(([name, p]) => ({ name, ...p })),
  ];
  const flows = scenario.flows.map((flow) => ({
    flow,
    steps: flow.steps.map((s) => compileStep(s, scenario, names, hostHeader, kinds)),
    pool: flow.pool === undefined ? 0 : pools.findIndex((p) => p.name === flow.pool),
  }));
  if (flows.length === 1) return { flows, pick: () => flows[0], pools };
  // Smooth weighted round-robin (as nginx does): deterministic, and evenly interleaved.
  const weights = flows.map((f) => f.flow.weight ?? 1);
  const total = weights.reduce((a, b) => a + b, 0);
  const current = weights.map(() => 0);
  return {
    flows,
    pools,
    pick() {
      let best = 0;
      for (let i = 0; i < flows.length; i++) {
        current[i] += weights[i];
        if (current[i] > current[best]) best = i;
      }
      current[best] -= total;
      return flows[best];
    },
  };
}
