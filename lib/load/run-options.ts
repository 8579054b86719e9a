/**
 * Turns command-line style flags (shared by `verdict load` and the bundled load agent) plus an
 * optional k6-shaped config file into {@link LoadOptions}. Flags win over the config file. Every
 * mistake is a {@link LoadUsageError} that says what to write instead.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readLoadConfig, ConfigFileError, type LoadConfigFile } from './config-file.ts';
import type { LoadOptions } from './engine.ts';
import type { ExecutorConfig } from './executors.ts';
import { validateScenario, type Scenario } from './scenario.ts';
import { DEFAULT_REMOTE_RATE_CAP } from './target-guard.ts';
import { parseThresholdFlag, type ThresholdConfig } from './thresholds.ts';
import { parseDuration, parseRate } from './units.ts';

export interface LoadFlags {
  url?: string;
  rate?: string;
  vus?: string;
  duration?: string;
  maxVus?: string;
  connections?: string;
  timeout?: string;
  maxRequests?: string;
  minRequests?: string;
  maxScheduleDelay?: string;
  threshold?: string[];
  config?: string;
  scenario?: string;
  allowRemote?: boolean;
  remoteRateCap?: string;
  insecure?: boolean;
  precision?: string;
  /** Agent only: CIDRs of networks the harness created. */
  harnessNetwork?: string[];
  /** Response headers naming the serving backend and the app version (recorded in the ledger). */
  backendHeader?: string;
  versionHeader?: string;
}

export class LoadUsageError extends Error {}

const HEADER = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
function headerName(flag: string, v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (!HEADER.test(v)) throw new LoadUsageError(`--${flag} must be an HTTP header name, e.g. x-served-by; got "${v}"`);
  return v;
}

/** The thresholds a run gets when none are given: a load run always judges something. */
export const DEFAULT_THRESHOLDS: ThresholdConfig = { http_req_failed: ['rate<0.01'] };

function wholeNumber(flag: string, v: string | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new LoadUsageError(`--${flag} must be a whole number >= ${min}, got "${v}"`);
  return n;
}

function usage<T>(flag: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw new LoadUsageError(`--${flag}: ${(err as Error).message}`);
  }
}

/** Imports a scenario module (TypeScript or JavaScript) and returns its default (or `scenario`) export. */
export async function loadScenarioModule(path: string): Promise<Scenario> {
  const abs = resolve(path);
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(abs).href);
  } catch (err) {
    throw new LoadUsageError(`cannot load scenario ${path}: ${(err as Error).message}`);
  }
  try {
    return validateScenario(mod.default ?? mod.scenario, path);
  } catch (err) {
    throw new LoadUsageError((err as Error).message);
  }
}

/** Flags may lower the remote rate cap, never raise it (code that means it passes `target.remoteRateCap`). */
function remoteCap(v: string | undefined): number {
  const n = wholeNumber('remote-rate-cap', v) ?? DEFAULT_REMOTE_RATE_CAP;
  if (n > DEFAULT_REMOTE_RATE_CAP)
    throw new LoadUsageError(`--remote-rate-cap can only lower the cap of ${DEFAULT_REMOTE_RATE_CAP}/s`);
  return n;
}

export interface ResolvedLoadOptions {
  options: LoadOptions;
  /** True when no threshold was given and {@link DEFAULT_THRESHOLDS} applies. */
  defaultThresholds: boolean;
  scenarioPath?: string;
}

/**
 * `given` holds what code (not flags) supplies: the compiled-in scenario of an agent bundle, or the
 * executor and thresholds a distributed run hands its agents as JSON. Flags still win over them.
 */
export async function loadOptionsFromFlags(
  flags: LoadFlags,
  given: { scenario?: Scenario; executor?: ExecutorConfig; thresholds?: ThresholdConfig } = {},
): Promise<ResolvedLoadOptions> {
  let file: LoadConfigFile = {};
  if (flags.config) {
    try {
      file = await readLoadConfig(flags.config);
    } catch (err) {
      if (err instanceof ConfigFileError) throw new LoadUsageError(err.message);
      throw err;
    }
  }
  const url = flags.url ?? file.url;
  if (!url) throw new LoadUsageError('give the target with --url (e.g. --url http://127.0.0.1:8080/health/ready)');

  let executor: ExecutorConfig | undefined = given.executor ?? file.executor;
  if (flags.rate !== undefined && flags.vus !== undefined)
    throw new LoadUsageError('--rate (open model) and --vus (closed model) exclude each other');
  const duration =
    flags.duration === undefined
      ? undefined
      : usage('duration', () => {
          const ms = parseDuration(flags.duration!);
          if (!(ms > 0)) throw new Error('must be > 0');
          return flags.duration!;
        });
  if (flags.rate !== undefined || flags.vus !== undefined) {
    if (duration === undefined)
      throw new LoadUsageError('give --duration as well (every load is bounded in time), e.g. --duration 30s');
    executor =
      flags.rate !== undefined
        ? {
            executor: 'constant-arrival-rate',
            rate: usage('rate', () => parseRate(flags.rate!)),
            timeUnit: '1s',
            duration,
            maxVUs: wholeNumber('max-vus', flags.maxVus),
          }
        : { executor: 'constant-vus', vus: wholeNumber('vus', flags.vus)!, duration };
  } else if (executor && duration !== undefined) {
    if (executor.executor === 'constant-arrival-rate' || executor.executor === 'constant-vus')
      executor = { ...executor, duration };
    else throw new LoadUsageError(`--duration cannot change a ${executor.executor} executor; edit the stages in ${flags.config}`);
  }
  if (executor && flags.maxVus !== undefined && flags.rate === undefined) {
    if (executor.executor === 'constant-arrival-rate' || executor.executor === 'ramping-arrival-rate')
      executor = { ...executor, maxVUs: wholeNumber('max-vus', flags.maxVus) };
    else throw new LoadUsageError('--max-vus applies to arrival-rate executors only');
  }
  if (!executor)
    throw new LoadUsageError('say how much load: --rate 500/s --duration 30s, --vus 10 --duration 30s, or --config k6.json');

  let thresholds: ThresholdConfig = { ...file.thresholds, ...given.thresholds };
  for (const t of flags.threshold ?? []) {
    const parsed = usage('threshold', () => parseThresholdFlag(t));
    for (const [metric, list] of Object.entries(parsed)) {
      const prev = thresholds[metric];
      thresholds[metric] = [...(prev === undefined ? [] : Array.isArray(prev) ? prev : [prev]), ...(list as string[])];
    }
  }
  const defaultThresholds = Object.keys(thresholds).length === 0;
  if (defaultThresholds) thresholds = DEFAULT_THRESHOLDS;

  const scenarioPath = flags.scenario ?? file.scenario;
  const scenario = given.scenario ?? (scenarioPath ? await loadScenarioModule(scenarioPath) : undefined);
  const precision = flags.precision ?? 'timer';
  if (precision !== 'timer' && precision !== 'spin') throw new LoadUsageError('--precision is "timer" or "spin"');

  const options: LoadOptions = {
    url,
    executor,
    scenario,
    connections: wholeNumber('connections', flags.connections) ?? file.connections,
    timeout: flags.timeout !== undefined ? usage('timeout', () => parseDuration(flags.timeout!)) : file.timeout,
    maxRequests: wholeNumber('max-requests', flags.maxRequests) ?? file.maxRequests,
    minRequests: wholeNumber('min-requests', flags.minRequests, 0) ?? file.minRequests,
    maxScheduleDelay:
      flags.maxScheduleDelay !== undefined
        ? usage('max-schedule-delay', () => parseDuration(flags.maxScheduleDelay!))
        : file.maxScheduleDelay,
    thresholds,
    rejectUnauthorized: flags.insecure ? false : file.rejectUnauthorized,
    precision,
    identityHeaders: {
      backend: headerName('backend-header', flags.backendHeader),
      version: headerName('version-header', flags.versionHeader),
    },
    target: {
      allowRemote: Boolean(flags.allowRemote),
      remoteRateCap: remoteCap(flags.remoteRateCap),
      harnessNetworks: flags.harnessNetwork,
    },
  };
  return { options, defaultThresholds, scenarioPath };
}
