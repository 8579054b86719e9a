/**
 * control-plane-outage, a zonal GKE control-plane upgrade rehearsed under load: the apiserver, the
 * controller manager and the scheduler go away for a while (`experiments.controlPlaneOutageMs`,
 * 120 s by default: config.ts says where that comes from) and come back on the same state. The
 * data plane must keep serving: no request may fail, and the workload must be whole again once the
 * control plane is back.
 *
 * What a real cluster does meanwhile, and the embedded one copies (docs/embedded-cluster.md): pods
 * keep running and restarting locally, readiness changes cannot reach the API so the endpoints
 * freeze, kube-proxy keeps its last rules, and after the outage every watch comes back with
 * client-go's reflector back-off (up to a minute). A request that fails meanwhile is
 * `endpoints-frozen` (lib/evidence/causes.ts).
 *
 * The harness itself loses the API too: its timeline's watches fail, retry and re-list; the gap
 * and what the re-list found changed unseen are on the timeline, and a gate says whether every
 * watch came back. A target that cannot stop its control plane makes it INCONCLUSIVE (`needs`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CLIENT_GO_MAX_RETRY_WAIT_MS, KUBELET_STATUS_SYNC_PERIOD_MS } from '../lib/kube/backoff.ts';
import { apiAnswers } from '../lib/kube/client.ts';
import { activePods, isPodReady } from '../lib/kube/disrupt.ts';
import type { Timeline, WatchGap } from '../lib/evidence/timeline.ts';
import type { Gate } from '../reports/gates.ts';
import { deployOrUseRunning, faultsOf, loadGates, pause, workloadShape } from './common.ts';
import { defineExperiment, type RunContext } from './experiment.ts';

/** The endpoint lag assumed where a target does not model its own (kube-proxy's measured on kind: embedded-cluster.ts). */
const UNKNOWN_ENDPOINT_LAG_MS = 1100;
/** How long the workload may take to be whole again (every replica Ready as the API sees it) once the control plane is back. */
const WHOLE_AGAIN_WITHIN_MS = 120_000;

export interface ControlPlaneOutageData {
  /** The part stopped (`control-plane` on embedded, `kube-apiserver` on kind) and what that did. */
  component: string;
  what: string;
  requestedMs: number;
  /** The outage as measured: the stop began, the API answered again (epoch ms). */
  from: number;
  to: number;
  /** How long after `to` the data plane may still route by the frozen endpoints (the cause window). */
  staleForMs: number;
  replicas: number;
  /** When every replica was Ready again as the API saw it, or null (then `notWhole` says why). */
  wholeAt: number | null;
  notWhole: string | null;
}

/** The part to stop: the whole control plane where the target can, else its apiserver (without it the rest is idle). */
function componentOf(components: string[]): string {
  return components.find((c) => c === 'control-plane') ?? components.find((c) => c === 'kube-apiserver') ?? components[0];
}

/** Polls until the API answers (every second), or throws after `withinMs`. */
async function apiBack(ctx: RunContext, withinMs: number): Promise<number> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await apiAnswers(ctx.target.kubeConfig, 2000)) return Date.now();
    if (Date.now() > deadline)
      throw new Error(`the API did not answer within ${withinMs / 1000} s of the control plane's recovery`);
    await sleep(1000, undefined, { signal: ctx.signal });
  }
}

/** Waits until `replicas` pods are Ready as the API sees them; API errors meanwhile are waited out. */
async function wholeAgain(ctx: RunContext, replicas: number): Promise<{ at: number | null; why: string | null }> {
  const { namespace, selector } = ctx.app.workload;
  const deadline = Date.now() + WHOLE_AGAIN_WITHIN_MS;
  let last = 'no answer from the API';
  for (;;) {
    try {
      const ready = (await activePods(ctx.target.kubeConfig, namespace, selector)).filter(isPodReady).length;
      if (ready >= replicas) return { at: Date.now(), why: null };
      last = `${ready} of ${replicas} pods Ready`;
    } catch (err) {
      last = `the API failed: ${(err as Error).message}`;
    }
    if (Date.now() > deadline)
      return { at: null, why: `${last} ${WHOLE_AGAIN_WITHIN_MS / 1000} s after the control plane was back` };
    await sleep(500, undefined, { signal: ctx.signal });
  }
}

/** Watches of the timeline that lost the cluster and have not resumed (their last word is `lost`). */
export function blindWatches(t: Timeline): string[] {
  const last = new Map<string, string>();
  for (const e of t.events) if (e.kind === 'watch') last.set(e.object, e.change);
  return [...last].filter(([, change]) => change === 'lost').map(([w]) => w.replace(/^watch\//, ''));
}

async function outage(ctx: RunContext<'controlPlane'>, replicas: number): Promise<ControlPlaneOutageData> {
  const cp = ctx.target.controlPlane;
  const component = componentOf(cp.components());
  const requestedMs = ctx.config.experiments.controlPlaneOutageMs;
  const staleForMs =
    CLIENT_GO_MAX_RETRY_WAIT_MS + KUBELET_STATUS_SYNC_PERIOD_MS + (ctx.target.endpointLagMs ?? UNKNOWN_ENDPOINT_LAG_MS);
  ctx.say(`${component}: away for ${requestedMs / 1000} s`);
  const from = Date.now();
  ctx.timeline.action(`control-plane/${component}`, 'outage-start', `for ${requestedMs / 1000} s`, from);
  const injection = await cp.stop(component, ctx.signal);
  ctx.defer(`bring ${component} back`, () => injection.recover());
  if (await apiAnswers(ctx.target.kubeConfig, 2000)) throw new Error(`${component} was stopped but the API still answers`);
  ctx.timeline.action(`control-plane/${component}`, 'away', injection.what);
  await pause(ctx, Math.max(0, requestedMs - (Date.now() - from)));
  ctx.say(`${component}: bringing it back`);
  await injection.recover(ctx.signal);
  const to = await apiBack(ctx, 60_000);
  ctx.timeline.action(
    `control-plane/${component}`,
    'outage-end',
    `the API answered again after ${((to - from) / 1000).toFixed(1)} s`,
    to,
  );
  ctx.controlPlaneAway({ from, to, staleForMs });
  const whole = await wholeAgain(ctx, replicas);
  return { component, what: injection.what, requestedMs, from, to, staleForMs, replicas, wholeAt: whole.at, notWhole: whole.why };
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function outageGate(d: ControlPlaneOutageData): Gate {
  const ms = d.to - d.from;
  const enough = ms >= d.requestedMs * 0.9;
  return {
    name: 'control plane away',
    verdict: enough ? 'PASS' : 'INCONCLUSIVE',
    observed: { outage_ms: ms, requested_ms: d.requestedMs },
    evidence: `${d.what}: the API was away ${secs(ms)} (${new Date(d.from).toISOString()} → ${new Date(d.to).toISOString()}; asked for ${secs(d.requestedMs)})${enough ? '' : ': shorter than asked, so it shows less than it should'}`,
  };
}

/** Whether the harness's own watches lived through the outage: each lost the API, re-listed once it was back, and said what it had missed. */
function harnessGate(timeline: Timeline, d: ControlPlaneOutageData): Gate {
  const gaps: WatchGap[] = timeline.gapsBetween(d.from, d.to + d.staleForMs).filter((g) => g.to >= d.from);
  const blind = blindWatches(timeline);
  if (blind.length)
    return {
      name: 'the harness saw through the outage',
      verdict: 'FAIL',
      observed: { blind_watches: blind.length },
      evidence: `these watches of the timeline never came back after the outage, so what followed went unseen: ${blind.join(', ')}`,
    };
  if (!gaps.length)
    return {
      name: 'the harness saw through the outage',
      verdict: 'INCONCLUSIVE',
      evidence: "no watch of the timeline noticed the outage, so it is not known that the harness's view survived one",
    };
  const unseen = [...new Set(gaps.flatMap((g) => g.unseen))];
  return {
    name: 'the harness saw through the outage',
    verdict: 'PASS',
    observed: {
      watches: gaps.length,
      unseen_changes: unseen.length,
      longest_gap_ms: Math.max(...gaps.map((g) => g.to - g.from)),
    },
    evidence:
      `${gaps.length} watches of the timeline lost the API and re-listed after it (${gaps.map((g) => `${g.watch} blind ${secs(g.to - g.from)}`).join(', ')}); ` +
      (unseen.length
        ? `${unseen.length} changes happened unseen and were found on re-list (their times are unknown): ${unseen.slice(0, 12).join(', ')}${unseen.length > 12 ? ', ...' : ''}`
        : 'the re-lists found nothing changed meanwhile'),
  };
}

function wholeGate(timeline: Timeline, d: ControlPlaneOutageData): Gate {
  const restarts = timeline.events.filter((e) => e.kind === 'pod' && e.change === 'restarted' && e.at >= d.from);
  const seen = restarts.length
    ? `; container restarts seen once the API was back: ${restarts.map((r) => `${r.object} (${r.detail})`).join(', ')}`
    : '';
  return d.wholeAt !== null
    ? {
        name: 'workload whole after the outage',
        verdict: 'PASS',
        observed: { after_ms: d.wholeAt - d.to, restarts: restarts.length },
        evidence: `all ${d.replicas} replicas Ready ${secs(d.wholeAt - d.to)} after the API was back${seen}`,
      }
    : {
        name: 'workload whole after the outage',
        verdict: 'FAIL',
        observed: { restarts: restarts.length },
        evidence: `${d.notWhole}${seen}`,
      };
}

export const controlPlaneOutage = defineExperiment<ControlPlaneOutageData>()({
  name: 'control-plane-outage',
  description:
    'a zonal control-plane upgrade under load: apiserver, controller manager and scheduler away (120 s by default) and back on the same state: nothing may fail, the workload is whole again after it, the harness re-lists and says what it missed',
  needs: ['controlPlane'],
  setup: deployOrUseRunning,
  async act(ctx) {
    const { replicas } = await workloadShape(ctx.app.release(ctx.options.to, ctx.target.platform, faultsOf(ctx.options.faults)));
    const { warmupMs, settleMs, controlPlaneOutageMs } = ctx.config.experiments;
    const load = await ctx.load('control-plane-outage', {
      rate: ctx.options.rate,
      maxMs: warmupMs + controlPlaneOutageMs + 60_000 + WHOLE_AGAIN_WITHIN_MS + settleMs + 60_000,
    });
    await pause(ctx, warmupMs);
    const data = await outage(ctx, replicas);
    await pause(ctx, settleMs);
    await load.stop();
    // The timeline's watches re-list within their own back-off (5 s at most): give them that before judging.
    for (let i = 0; i < 20 && blindWatches(ctx.timeline).length; i++) await pause(ctx, 500);
    return data;
  },
  figures: (e) => ({ control_plane_outage_s: (e.data.to - e.data.from) / 1000 }),
  judge(e, { config }) {
    const d = e.data;
    return [outageGate(d), ...loadGates(e.loads[0], config), wholeGate(e.timeline, d), harnessGate(e.timeline, d)];
  },
});
