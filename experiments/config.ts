/**
 * The harness's configuration: gates, thresholds and the allow-list of kubeconfig contexts that
 * experiments may disrupt, in one validated file (`verdict.config.yaml` in the working directory,
 * or `--config <file>`; YAML or JSON). Every value has a default matching the seed: under 1 % errors
 * after a deploy, zero failures during rollouts, pod kills and drains.
 *
 * Chaos against the wrong cluster is the worst bug this product can have, so an existing context is
 * refused unless it matches `allowedContexts` and none of `deniedContexts`; a cluster the harness
 * created itself (embedded, kind) is always allowed. Denials match in any letter case (`*prod*`
 * refuses `gke_acme_us-central1_PROD` and `gke_acme_Production`); allowances match the name exactly,
 * as Kubernetes compares context names: both rules err towards refusing.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Target } from '../cluster/target.ts';
import { planRiskConfigSchema } from '../lib/policy/plan-risk.ts';
import { deployWindowsSchema } from '../lib/policy/deploy-window.ts';

const rate = z.number().min(0).max(1);
const ms = z.number().int().min(0).max(3_600_000);

export const harnessConfigSchema = z.strictObject({
  /** Glob patterns (`*` only) of kubeconfig contexts experiments may disrupt, matched case-sensitively. Empty: none. */
  allowedContexts: z.array(z.string().min(1)).default([]),
  /** Never these, even when allowed (checked first), matched in any letter case. */
  deniedContexts: z.array(z.string().min(1)).default(['*prod*']),
  gates: z
    .strictObject({
      /** After a deploy (the seed's promotion rule): error rate below this, judged on at least minRequests. */
      deploy: z
        .strictObject({ maxErrorRate: rate.default(0.01), minRequests: z.number().int().min(1).default(300) })
        .prefault({}),
      /** During rollouts, pod kills and drains: failures allowed (the seed: none) and the evidence needed. */
      disruption: z
        .strictObject({ maxErrorRate: rate.default(0), minRequests: z.number().int().min(1).default(1000) })
        .prefault({}),
      /** The load itself must be as planned for its numbers to count. */
      load: z
        .strictObject({ minAchievedShare: rate.default(0.99), maxScheduleDelayP99Ms: z.number().min(0).default(50) })
        .prefault({}),
      /** Latency: an absolute objective, and the new version against the old one in the same run. */
      latency: z
        .strictObject({
          p99Ms: z.number().positive().default(1000),
          maxP99Ratio: z.number().min(1).default(1.5),
          /** Ratios of p99s below this many ms are noise, not a regression. */
          minP99DifferenceMs: z.number().min(0).default(20),
          minRequestsPerVersion: z.number().int().min(1).default(200),
          /** A new pod's cold start (after it became Ready) is judged apart, on its own p99 budget. */
          coldStartMs: ms.default(2000),
          coldStartP99Ms: z.number().positive().default(1000),
          coldStartMinRequests: z.number().int().min(1).default(50),
        })
        .prefault({}),
      /**
       * No worse than history (reports/history.ts): each figure against the last `runs` comparable
       * runs (same experiment, target kind, app and replicas; no deliberate fault; PASS): above their
       * P99, or above their median by more than `margins[figure]` (a fraction; a figure's name before
       * its first "." also matches), is a FAIL; fewer runs is INCONCLUSIVE.
       */
      history: z
        .strictObject({
          runs: z.number().int().min(1).max(1000).default(10),
          margins: z.record(z.string(), z.number().min(0)).default({}),
        })
        .prefault({}),
      /** Sessions held across a disruption; how long the active count may take to return to baseline. */
      sessions: z.strictObject({ held: z.number().int().min(0).max(500).default(20), settleMs: ms.default(20_000) }).prefault({}),
      /**
       * verify-local's evidence goal: with no failure, the 95 % Wilson upper bound of the failure rate
       * over every judged request must be at or below this (0.01 %: about 37,000 requests).
       */
      evidence: z.strictObject({ maxUpperBound: rate.default(0.0001) }).prefault({}),
      /**
       * A dependency outage (dependency-outage, database-maintenance, cache-failover): the shortest
       * it may last, and the recovery time the service is allowed once it is back. How long it does
       * last comes from the workload (experiments/outage-window.ts): at least the Deployment's
       * longest liveness failure budget (periodSeconds × failureThreshold + timeoutSeconds) plus a
       * margin, and never under `outageMs`; 60 s, as a managed database's maintenance or failover
       * often lasts (and more than the shipped readiness budget, 5 s × 3, plus the data plane's lag,
       * so that what readiness does about the outage reaches the clients).
       */
      dependency: z.strictObject({ outageMs: ms.default(60_000), recoveryMs: ms.default(10_000) }).prefault({}),
    })
    .prefault({}),
  experiments: z
    .strictObject({
      /**
       * Requests per second of the app's load mix (each experiment's default). 450: verify-local's
       * three experiments then judge about 46,000 requests in under 3 minutes (the evidence goal needs
       * 38,411), with the load engine's lateness p99 under 10 ms on a 2-core machine (README).
       */
      rate: z.number().positive().max(5000).default(450),
      /** Load before the disruption begins, and after it ends. */
      warmupMs: ms.default(5_000),
      settleMs: ms.default(8_000),
      /**
       * control-plane-outage: how long the API stays away. GKE documents that a zonal cluster's
       * single control plane is unavailable during its upgrade ("you cannot deploy new workloads,
       * modify existing workloads, or make other changes to the cluster's configuration until the
       * upgrade is complete": cloud.google.com/kubernetes-engine/docs/concepts/cluster-upgrades)
       * but gives no length; 120 s is issue 21's figure, a few minutes at most being what SREs
       * report. Set it to what your own upgrades took (`verdict rehearse --outage <s>`).
       */
      controlPlaneOutageMs: ms.min(1000).default(120_000),
    })
    .prefault({}),
  /** `verdict plan-risk`: rules added to or overriding the default table (lib/policy/plan-risk.ts). */
  planRisk: planRiskConfigSchema.prefault({}),
  /** Deploy windows and freezes per environment (lib/policy/deploy-window.ts). */
  deployWindows: deployWindowsSchema.prefault({}),
});

export type HarnessConfig = z.infer<typeof harnessConfigSchema>;

export class ConfigFileError extends Error {}

export const DEFAULT_CONFIG_FILE = 'verdict.config.yaml';

/** Reads and validates the config; without a file, the defaults. Errors name the file, the field and the fix. */
export async function loadHarnessConfig(path?: string): Promise<{ config: HarnessConfig; source: string }> {
  const file = path ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (!file) return { config: harnessConfigSchema.parse({}), source: 'defaults' };
  let raw: unknown;
  try {
    const text = await readFile(file, 'utf8');
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigFileError(`${file}: cannot read it: ${(err as Error).message}`);
  }
  const parsed = harnessConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new ConfigFileError(
      `${file} is not a valid verdict config:\n${lines.join('\n')}\n(see experiments/config.ts for every field and its default)`,
    );
  }
  return { config: parsed.data, source: file };
}

/** An anchored pattern of a glob with `*` only; `ignoreCase` for the deny-list. */
function glob(pattern: string, ignoreCase: boolean): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    ignoreCase ? 'is' : 's',
  );
}

/**
 * Throws unless experiments may disrupt `target`: a cluster the harness made is always fair game;
 * someone else's context must be allowed by name and not denied.
 */
export function assertTargetAllowed(
  target: Pick<Target, 'owned' | 'kind' | 'context' | 'name'>,
  config: HarnessConfig,
  source = 'the config',
): void {
  if (target.owned) return;
  assertNotDenied(target, config, source);
  const context = target.context ?? target.name;
  // Allowed only as written: Kubernetes context names are case-sensitive, and `staging` does not vouch for `STAGING`.
  if (!config.allowedContexts.some((p) => glob(p, false).test(context))) {
    throw new TargetNotAllowedError(
      `refusing to run experiments against context "${context}": it is not in allowedContexts (${source}). ` +
        `If this cluster may be disrupted, add it to allowedContexts in ${DEFAULT_CONFIG_FILE}, e.g.\n  allowedContexts: ["${context}"]`,
    );
  }
}

/** Throws when `target` is someone else's context that matches `deniedContexts` (in any letter case). */
export function assertNotDenied(
  target: Pick<Target, 'owned' | 'kind' | 'context' | 'name'>,
  config: HarnessConfig,
  source = 'the config',
): void {
  if (target.owned) return;
  const context = target.context ?? target.name;
  // A production context is refused whatever its letter case: `*prod*` must catch `..._PROD` and `..._Production`.
  const denied = config.deniedContexts.find((p) => glob(p, true).test(context));
  if (denied) {
    throw new TargetNotAllowedError(
      `refusing to run experiments against context "${context}": it matches deniedContexts "${denied}" in ${source} (denials match in any letter case). Experiments disrupt the cluster; point them at a staging or throw-away cluster.`,
    );
  }
}

export class TargetNotAllowedError extends Error {}
