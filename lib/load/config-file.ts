/**
 * k6-shaped configuration files (JSON, or YAML with the same shape), validated with zod:
 *
 *   { "scenarios": { "steady": { "executor": "constant-arrival-rate", "rate": 500, "timeUnit": "1s",
 *                                "duration": "30s", "preAllocatedVUs": 50, "maxVUs": 500 } },
 *     "thresholds": { "http_req_failed": ["rate<0.01"], "http_req_duration": ["p(95)<500"] },
 *     "verdict": { "url": "http://127.0.0.1:30080/health/ready", "connections": 32, "timeout": "5s" } }
 *
 * k6's shortcuts `vus` + `duration` (constant-vus) and `stages` (ramping-vus) are accepted too. Keys
 * k6 has but this engine does not implement are refused by name rather than silently ignored.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { ExecutorConfig } from './executors.ts';
import { parseThresholds, type ThresholdConfig } from './thresholds.ts';

const duration = z.union([z.string().min(1), z.number().nonnegative()]);
const stage = z.object({ target: z.number().nonnegative(), duration }).strict();
const common = { gracefulStop: duration.optional() };

const executor = z.discriminatedUnion('executor', [
  z
    .object({
      executor: z.literal('constant-arrival-rate'),
      rate: z.number().positive(),
      timeUnit: duration.optional(),
      duration,
      preAllocatedVUs: z.number().int().positive().optional(),
      maxVUs: z.number().int().positive().optional(),
      ...common,
    })
    .strict(),
  z
    .object({
      executor: z.literal('ramping-arrival-rate'),
      startRate: z.number().nonnegative().optional(),
      timeUnit: duration.optional(),
      stages: z.array(stage).min(1),
      preAllocatedVUs: z.number().int().positive().optional(),
      maxVUs: z.number().int().positive().optional(),
      ...common,
    })
    .strict(),
  z.object({ executor: z.literal('constant-vus'), vus: z.number().int().positive(), duration, ...common }).strict(),
  z
    .object({
      executor: z.literal('ramping-vus'),
      startVUs: z.number().int().nonnegative().optional(),
      stages: z.array(stage).min(1),
      gracefulRampDown: duration.optional(),
      ...common,
    })
    .strict(),
]);

const thresholdEntry = z.union([
  z.string(),
  z.object({ threshold: z.string(), abortOnFail: z.boolean().optional(), delayAbortEval: duration.optional() }).strict(),
]);

const fileSchema = z
  .object({
    scenarios: z.record(z.string(), executor).optional(),
    vus: z.number().int().positive().optional(),
    duration: duration.optional(),
    stages: z.array(stage).min(1).optional(),
    thresholds: z.record(z.string(), z.union([thresholdEntry, z.array(thresholdEntry)])).optional(),
    insecureSkipTLSVerify: z.boolean().optional(),
    /** This engine's own settings (k6 has no equivalent). */
    verdict: z
      .object({
        url: z.string().optional(),
        scenario: z.string().optional(),
        connections: z.number().int().positive().optional(),
        timeout: duration.optional(),
        maxRequests: z.number().int().positive().optional(),
        minRequests: z.number().int().nonnegative().optional(),
        maxScheduleDelay: duration.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export interface LoadConfigFile {
  executor?: ExecutorConfig;
  thresholds?: ThresholdConfig;
  url?: string;
  /** Scenario module path, resolved against the config file's directory. */
  scenario?: string;
  connections?: number;
  timeout?: string | number;
  maxRequests?: number;
  minRequests?: number;
  maxScheduleDelay?: string | number;
  rejectUnauthorized?: boolean;
}

export class ConfigFileError extends Error {}

const UNSUPPORTED_K6 = [
  'iterations',
  'rps',
  'batch',
  'batchPerHost',
  'hosts',
  'userAgent',
  'noConnectionReuse',
  'httpDebug',
  'discardResponseBodies',
];

/** Validates an already-parsed k6-shaped object. */
export function parseLoadConfig(value: unknown, where = 'config'): LoadConfigFile {
  if (value && typeof value === 'object') {
    const bad = UNSUPPORTED_K6.filter((k) => k in (value as object));
    if (bad.length) throw new ConfigFileError(`${where}: k6 option(s) ${bad.join(', ')} are not supported by this engine`);
  }
  const parsed = fileSchema.safeParse(value);
  if (!parsed.success) throw new ConfigFileError(`${where} is not a valid load configuration:\n${z.prettifyError(parsed.error)}`);
  const c = parsed.data;
  const out: LoadConfigFile = {};
  const scenarios = Object.entries(c.scenarios ?? {});
  if (scenarios.length > 1) {
    throw new ConfigFileError(
      `${where}: ${scenarios.length} scenarios given (${scenarios.map(([n]) => n).join(', ')}); this engine runs one scenario per run`,
    );
  }
  if (scenarios.length === 1) {
    if (c.vus !== undefined || c.duration !== undefined || c.stages !== undefined) {
      throw new ConfigFileError(`${where}: give either "scenarios" or the vus/duration/stages shortcuts, not both`);
    }
    out.executor = scenarios[0][1] as ExecutorConfig;
  } else if (c.stages) {
    out.executor = { executor: 'ramping-vus', startVUs: c.vus ?? 1, stages: c.stages };
  } else if (c.duration !== undefined) {
    out.executor = { executor: 'constant-vus', vus: c.vus ?? 1, duration: c.duration };
  } else if (c.vus !== undefined) {
    throw new ConfigFileError(`${where}: "vus" needs a "duration" (every load is bounded in time)`);
  }
  if (c.thresholds) {
    try {
      parseThresholds(c.thresholds);
    } catch (err) {
      throw new ConfigFileError(`${where}: ${(err as Error).message}`);
    }
    out.thresholds = c.thresholds;
  }
  if (c.insecureSkipTLSVerify) out.rejectUnauthorized = false;
  Object.assign(out, Object.fromEntries(Object.entries(c.verdict ?? {}).filter(([, v]) => v !== undefined)));
  return out;
}

/** Reads a .json, .yaml or .yml configuration file. */
export async function readLoadConfig(path: string): Promise<LoadConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigFileError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new ConfigFileError(`${path} is not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
  const config = parseLoadConfig(value, path);
  if (config.scenario) {
    const { resolve, dirname } = await import('node:path');
    config.scenario = resolve(dirname(path), config.scenario);
  }
  return config;
}
