/**
 * How long a dependency outage must last to show what the workload does about it, derived from the
 * workload, not from a constant: at least the longest liveness failure budget of the Deployment's
 * containers (`periodSeconds × failureThreshold + timeoutSeconds`, the time from the outage's start
 * until the kubelet has seen enough failed probes to restart a container whose liveness follows the
 * dependency) plus a margin, and never under a floor (`gates.dependency.outageMs`, 60 s: a managed
 * database's maintenance or failover often lasts 30-60 s or more). A detector must not depend on a
 * fault being tuned to show itself within a window the harness chose.
 */
import type { V1PodSpec, V1Probe } from '@kubernetes/client-node';
import { findKind, type KubeObject } from '../lib/kube/render.ts';

/** The kubelet's defaults for a probe's fields (core/v1 Probe). */
export const KUBELET_PROBE_DEFAULTS = { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 1, initialDelaySeconds: 0 };

/** A margin past the budget: at least this, and at least one more period of the probe. */
export const OUTAGE_MARGIN_MIN_MS = 10_000;

export interface LivenessBudget {
  container: string;
  periodSeconds: number;
  failureThreshold: number;
  timeoutSeconds: number;
  /** periodSeconds × failureThreshold + timeoutSeconds, in ms. */
  budgetMs: number;
}

export interface OutagePlan {
  /** How long the dependency stays away. */
  ms: number;
  /** The longest liveness budget (null: no container declares a liveness probe). */
  longest: LivenessBudget | null;
  marginMs: number;
  floorMs: number;
  /** Where the number came from, in one sentence for the report. */
  source: string;
}

/** The liveness budget of each container of a pod spec that declares a liveness probe, with the kubelet's defaults for absent fields. */
export function livenessBudgets(podSpec: { containers?: Array<{ name: string; livenessProbe?: V1Probe }> }): LivenessBudget[] {
  const out: LivenessBudget[] = [];
  for (const c of podSpec.containers ?? []) {
    const p = c.livenessProbe;
    if (!p) continue;
    const periodSeconds = p.periodSeconds ?? KUBELET_PROBE_DEFAULTS.periodSeconds;
    const failureThreshold = p.failureThreshold ?? KUBELET_PROBE_DEFAULTS.failureThreshold;
    const timeoutSeconds = p.timeoutSeconds ?? KUBELET_PROBE_DEFAULTS.timeoutSeconds;
    out.push({
      container: c.name,
      periodSeconds,
      failureThreshold,
      timeoutSeconds,
      budgetMs: (periodSeconds * failureThreshold + timeoutSeconds) * 1000,
    });
  }
  return out;
}

/** The pod template's spec of Deployment `name` among rendered objects; throws naming what is missing. */
export function podSpecOf(objects: KubeObject[], deployment: string): V1PodSpec {
  const d = findKind(objects, 'Deployment', deployment);
  if (!d?.spec?.template?.spec) throw new Error(`the release's manifests render no Deployment ${deployment} with a pod template`);
  return d.spec.template.spec;
}

/**
 * The outage for a workload whose containers have these liveness budgets: the longest budget plus a
 * margin (one more period of that probe, at least OUTAGE_MARGIN_MIN_MS), raised to `floorMs`.
 * `where` names the workload for the sentence (e.g. `Deployment license-api`).
 */
export function planOutage(budgets: LivenessBudget[], floorMs: number, where: string): OutagePlan {
  const longest = budgets.reduce<LivenessBudget | null>((a, b) => (a && a.budgetMs >= b.budgetMs ? a : b), null);
  const s = (ms: number) => `${+(ms / 1000).toFixed(1)} s`;
  if (!longest) {
    return {
      ms: floorMs,
      longest: null,
      marginMs: 0,
      floorMs,
      source: `${s(floorMs)}: the floor (gates.dependency.outageMs); no container of ${where} declares a liveness probe`,
    };
  }
  const marginMs = Math.max(OUTAGE_MARGIN_MIN_MS, longest.periodSeconds * 1000);
  const derived = longest.budgetMs + marginMs;
  const budget =
    `the longest liveness failure budget in ${where} (container ${longest.container}: periodSeconds ${longest.periodSeconds} × ` +
    `failureThreshold ${longest.failureThreshold} + timeoutSeconds ${longest.timeoutSeconds} = ${s(longest.budgetMs)}) + a margin of ${s(marginMs)} = ${s(derived)}`;
  return derived >= floorMs
    ? { ms: derived, longest, marginMs, floorMs, source: `${s(derived)}: ${budget} (floor ${s(floorMs)})` }
    : {
        ms: floorMs,
        longest,
        marginMs,
        floorMs,
        source: `${s(floorMs)}: the floor (gates.dependency.outageMs), above ${budget}`,
      };
}
