/**
 * Dependency outages under load, the way a managed instance goes away (connections reset, then
 * unavailable, then back on the same address: the target's own Postgres and Redis on the embedded
 * cluster). Three experiments share this code: `dependency-outage` takes each of the app's
 * dependencies away in turn, `database-maintenance` its database (a Cloud SQL maintenance or
 * failover), `cache-failover` its cache (a Memorystore failover).
 *
 * The outage lasts as long as the workload needs to show what it does about it (outage-window.ts:
 * the longest liveness failure budget plus a margin, never under gates.dependency.outageMs), and the
 * report says where the number came from. While it lasts, the harness probes every pod's declared
 * liveness itself every second (liveness-watch.ts): a single failure FAILs with the cause "liveness
 * depends on <dependency>", whether or not a restart followed, and ends the outage at once (the
 * verdict is known; going on would restart every replica). Once the dependency is back, every pod's
 * connections to it are swept for stale ones (stale-connections.ts).
 *
 * Judged per outage: the window, liveness, no container restarted, typed answers (503) only,
 * requests that do not need the dependency kept working, the Service's ready endpoints, recovery in
 * time, no stale connection afterwards; and no failure outside the outages. A target that cannot
 * take dependencies away, or whose pods this machine cannot reach, makes it INCONCLUSIVE (`needs`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { JoinedFailure } from '../lib/evidence/join.ts';
import { renderRelease } from '../lib/kube/deploy.ts';
import { activePods } from '../lib/kube/disrupt.ts';
import { k8s } from '../lib/kube/client.ts';
import type { Gate } from '../reports/gates.ts';
import type { AppProfile } from './app-profile.ts';
import { defineExperiment, type RunContext } from './experiment.ts';
import { deployOrUseRunning, faultsOf, loadGates, pause } from './common.ts';
import { LivenessWatch, livenessGate, type LivenessRecord, type LivenessSample } from './liveness-watch.ts';
import { livenessBudgets, planOutage, podSpecOf, type OutagePlan } from './outage-window.ts';
import { staleConnectionGate, sweepPod, type PodSweep } from './stale-connections.ts';
import { podsAtAddresses } from './pod-address.ts';

export interface OutageWindow {
  dependency: string;
  /** Load steps that cannot succeed without it. */
  steps: string[];
  from: number;
  to: number;
  /** How long it was planned to last (ms). */
  plannedMs: number;
  /** Why it ended before the plan (the first failed liveness probe), or null. */
  cutShort: string | null;
  /** The stale-connection sweep of each pod once it was back; null when the app declares no check for it. */
  sweeps: PodSweep[] | null;
}

export interface DependencyOutageData {
  windows: OutageWindow[];
  /** Dependencies of the app the target cannot control (not tested). */
  skipped: string[];
  recoveryMs: number;
  /** How long each outage lasts and where the number came from. */
  plan: OutagePlan | null;
  /** What the harness's own liveness probes saw. */
  liveness: LivenessRecord | null;
}

type Dependency = AppProfile['dependencies'][number];

/** One outage experiment: `pick` chooses the app's dependencies it takes away. */
function outageExperiment(o: { name: string; description: string; pick: (d: Dependency) => boolean; what: string }) {
  return defineExperiment<DependencyOutageData>()({
    name: o.name,
    description: o.description,
    needs: ['dependencies', 'podReach'],
    setup: deployOrUseRunning,
    act: (ctx) => outages(ctx, o.name, o.pick),
    figures: (e) =>
      Object.fromEntries(
        e.data.windows.map((w) => [
          `no_ready_endpoint_s.${w.dependency}`,
          e.timeline.noneReadyMs(w.from, w.to + e.data.recoveryMs) / 1000,
        ]),
      ),
    judge(e, { config }) {
      const load = e.loads[0];
      if (e.data.windows.length === 0)
        return [
          {
            name: 'outages made',
            verdict: 'INCONCLUSIVE',
            evidence: e.data.skipped.length
              ? `the target controls none of the app's ${o.what} (${e.data.skipped.join(', ')})`
              : `the app declares no ${o.what}`,
          },
        ];
      if (!load) return [{ name: 'load ran', verdict: 'ERROR', evidence: 'no load result' }];
      const gates: Gate[] = [];
      // Outside every outage window (and its recovery allowance) nothing may fail: the failure causes
      // already say which failures ended inside one.
      const outside = load.joined.failures.filter((f) => f.cause !== 'dependency-outage');
      gates.push(...loadGates(load, config, { maxErrorRate: 1 }).filter((g) => g.name === 'load as planned'));
      gates.push({
        name: 'no failure outside the outages',
        verdict: outside.length ? 'FAIL' : load.joined.total > 0 ? 'PASS' : 'INCONCLUSIVE',
        evidence: outside.length
          ? `${outside.length} requests failed outside the outage windows and their ${e.data.recoveryMs / 1000} s recovery allowance (first: ${describe(outside[0])})`
          : `no request failed outside the outage windows and their ${e.data.recoveryMs / 1000} s recovery allowance (${load.joined.total} requests)`,
        observed: { failed_outside: outside.length },
      });
      e.data.windows.forEach((w, i) => {
        // Recovery is judged up to the next outage (or the end of the load).
        const until = e.data.windows[i + 1]?.from ?? load.joined.to ?? w.to + e.data.recoveryMs;
        gates.push(windowGate(w, e.data.plan!));
        gates.push(
          e.data.liveness
            ? livenessGate(w.dependency, { from: w.from, to: w.to, until: w.to + e.data.recoveryMs }, e.data.liveness)
            : {
                name: `${w.dependency}: liveness independent of it`,
                verdict: 'INCONCLUSIVE',
                evidence: 'the harness did not probe liveness',
              },
        );
        gates.push(...windowGates(e, w, load.joined.failures, e.data.recoveryMs, load.joined.series, until));
        if (w.sweeps) gates.push(staleConnectionGate(w.dependency, w, w.sweeps, load.joined.failures, e.data.recoveryMs));
      });
      return gates;
    },
  });
}

export const dependencyOutage = outageExperiment({
  name: 'dependency-outage',
  description:
    'takes each dependency (Postgres, Redis) away under load for as long as the workload needs and brings it back: liveness never follows it, no restart, typed 503s only, nothing fails that does not need it, recovery in time, no stale connection',
  pick: () => true,
  what: 'dependencies',
});

export const databaseMaintenance = outageExperiment({
  name: 'database-maintenance',
  description:
    "rehearses a managed database's maintenance or failover under load (connections reset, unavailable, back on the same address) for as long as the workload needs: liveness never follows it, no restart, typed 503s only, recovery in time, no stale pooled connection",
  pick: (d) => d.kind === 'database',
  what: 'database',
});

export const cacheFailover = outageExperiment({
  name: 'cache-failover',
  description:
    "rehearses a managed cache's failover under load (connections reset, unavailable, back on the same address) for as long as the workload needs: liveness never follows it, no restart, nothing fails that does not need it, reconnected afterwards",
  pick: (d) => d.kind === 'cache',
  what: 'cache',
});

/** Under load and the harness's liveness probes: each dependency `pick` chooses away in turn, back, recovered. */
async function outages(
  ctx: RunContext<'dependencies' | 'podReach'>,
  label: string,
  pick: (d: Dependency) => boolean,
): Promise<DependencyOutageData> {
  const have = new Set(ctx.target.dependencies.names());
  const chosen = ctx.app.dependencies.filter(pick);
  const wanted = chosen.filter((d) => have.has(d.name));
  const skipped = chosen.filter((d) => !have.has(d.name)).map((d) => d.name);
  const { recoveryMs } = ctx.config.gates.dependency;
  const { warmupMs, settleMs } = ctx.config.experiments;
  if (wanted.length === 0) return { windows: [], skipped, recoveryMs, plan: null, liveness: null };
  const plan = await outagePlan(ctx);
  ctx.say(`each outage lasts ${plan.source}`);
  const load = await ctx.load(label, {
    rate: ctx.options.rate,
    maxMs: warmupMs + wanted.length * (plan.ms + recoveryMs + settleMs) + 120_000,
  });
  const { workload } = ctx.app;
  const watch = new LivenessWatch({
    kubeConfig: ctx.target.kubeConfig,
    namespace: workload.namespace,
    selector: workload.selector,
    networks: ctx.target.podReach.networks,
  });
  watch.start();
  ctx.defer('stop probing liveness', () => watch.stop());
  await pause(ctx, warmupMs);
  const windows: OutageWindow[] = [];
  for (const d of wanted) {
    const w = await oneOutage(ctx, d, plan, watch);
    windows.push(w);
    await pause(ctx, Math.max(0, w.to + recoveryMs + settleMs - Date.now()));
  }
  await load.stop();
  return { windows, skipped, recoveryMs, plan, liveness: await watch.stop() };
}

/** The outage's length from the release under test's manifests (or, where the harness deploys nothing, the running Deployment). */
async function outagePlan(ctx: RunContext<'dependencies' | 'podReach'>): Promise<OutagePlan> {
  const { app, target, options, config } = ctx;
  const { deployment, namespace } = app.workload;
  let podSpec;
  let where: string;
  if (target.images) {
    const objects = await renderRelease(app.release(options.to, target.platform, faultsOf(options.faults)));
    podSpec = podSpecOf(objects, deployment);
    where = `Deployment ${deployment} (rendered manifests of ${options.to})`;
  } else {
    const d = await target.kubeConfig.makeApiClient(k8s.AppsV1Api).readNamespacedDeployment({ namespace, name: deployment });
    podSpec = d.spec?.template.spec ?? {};
    where = `Deployment ${deployment} (as it runs)`;
  }
  return planOutage(livenessBudgets(podSpec), config.gates.dependency.outageMs, where);
}

/**
 * Takes `d` away for `plan.ms` (less if a liveness probe fails meanwhile: the verdict is known),
 * brings it back and sweeps the pods' connections to it.
 */
async function oneOutage(
  ctx: RunContext<'dependencies' | 'podReach'>,
  d: Dependency,
  plan: OutagePlan,
  watch: LivenessWatch,
): Promise<OutageWindow> {
  const deps = ctx.target.dependencies;
  let down = false;
  ctx.defer(`bring ${d.name} back`, async () => {
    if (down) await deps.start(d.name);
  });
  ctx.say(`${d.name}: outage for ${plan.ms / 1000} s (needed by ${d.neededBy})`);
  const from = Date.now();
  ctx.timeline.action(`dependency/${d.name}`, 'outage-start', `${d.neededBy}; planned ${plan.source}`, from);
  down = true;
  await deps.stop(d.name);
  const failed = await pauseUnlessLivenessFails(ctx, plan.ms - (Date.now() - from), watch, from);
  const cutShort = failed
    ? `pod ${failed.pod}'s liveness failed ${((failed.at - from) / 1000).toFixed(1)} s in (${failed.message})`
    : null;
  if (cutShort)
    ctx.say(
      `${d.name}: ${cutShort}: the verdict is FAIL; bringing ${d.name} back now, before the kubelet restarts every replica`,
    );
  await deps.start(d.name);
  down = false;
  const to = Date.now();
  ctx.timeline.action(
    `dependency/${d.name}`,
    'outage-end',
    `${((to - from) / 1000).toFixed(1)} s${cutShort ? `, cut short: ${cutShort}` : ''}`,
    to,
  );
  ctx.outage({ dependency: d.name, from, to });
  const sweeps = await sweepAfter(ctx, d.name, to);
  return { dependency: d.name, steps: d.steps, from, to, plannedMs: plan.ms, cutShort, sweeps };
}

/** Waits `ms`, or less when a liveness probe sent since `since` fails: that failed probe, else null. */
async function pauseUnlessLivenessFails(
  ctx: RunContext,
  ms: number,
  watch: LivenessWatch,
  since: number,
): Promise<LivenessSample | null> {
  const stop = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stop.signal]);
  try {
    return await Promise.race([sleep(Math.max(0, ms), null, { signal }), watch.nextFailure(since, signal)]);
  } finally {
    stop.abort();
  }
}

/** Sweeps every pod's connections to `dependency` once it is back (AppConnection.dependencyCheck), until the recovery allowance has passed. */
async function sweepAfter(
  ctx: RunContext<'dependencies' | 'podReach'>,
  dependency: string,
  to: number,
): Promise<PodSweep[] | null> {
  const check = ctx.conn.dependencyCheck?.(dependency);
  if (!check) return null;
  const { workload } = ctx.app;
  const pods = podsAtAddresses(
    await activePods(ctx.target.kubeConfig, workload.namespace, workload.selector),
    workload.container,
    ctx.target.podReach.networks,
  );
  const deadline = to + ctx.config.gates.dependency.recoveryMs;
  const sweeps = await Promise.all(pods.map((p) => sweepPod(p, check, deadline, ctx.signal)));
  const slowest = Math.max(0, ...sweeps.map((x) => (x.sweptAt ?? deadline) - to));
  ctx.say(
    `${dependency}: ${sweeps.length} pods swept for stale connections within ${(slowest / 1000).toFixed(1)} s of its return`,
  );
  return sweeps;
}

/** The outage lasted as planned (or was cut short by a liveness failure, whose gate FAILs), and where its length came from. */
function windowGate(w: OutageWindow, plan: OutagePlan): Gate {
  const lasted = w.to - w.from;
  const name = `${w.dependency}: outage as long as the workload needs`;
  const observed = { lasted_ms: lasted, planned_ms: plan.ms, liveness_budget_ms: plan.longest?.budgetMs ?? null };
  if (w.cutShort)
    return {
      name,
      verdict: 'PASS',
      observed,
      evidence: `ended after ${(lasted / 1000).toFixed(1)} s of the planned ${plan.source}: ${w.cutShort}`,
    };
  return lasted >= plan.ms - 500
    ? { name, verdict: 'PASS', observed, evidence: `lasted ${(lasted / 1000).toFixed(1)} s; planned ${plan.source}` }
    : {
        name,
        verdict: 'INCONCLUSIVE',
        observed,
        evidence: `lasted only ${(lasted / 1000).toFixed(1)} s of the planned ${plan.source}: too short to show what the workload does`,
      };
}

function describe(f: JoinedFailure): string {
  return `${f.step} ${f.status ? `HTTP ${f.status}` : (f.error ?? 'no answer')} (pod ${f.pod ?? 'unknown'}, ${f.cause})`;
}

function windowGates(
  e: Parameters<typeof dependencyOutage.judge>[0],
  w: OutageWindow,
  failures: JoinedFailure[],
  recoveryMs: number,
  series: Array<{ t: number; requests: number; failed: Record<string, number | undefined> }>,
  until: number,
): Gate[] {
  const name = (g: string) => `${w.dependency}: ${g}`;
  const during = failures.filter((f) => f.at >= w.from && f.at <= w.to + recoveryMs);
  const gates: Gate[] = [];
  // Restarts caused by the outage: a liveness probe that checks the dependency, or a crash. Until the
  // next outage (or the end): a container the kubelet killed late in the outage restarts only after
  // its grace period.
  const restarts = e.timeline.events.filter(
    (x) => x.kind === 'pod' && x.change === 'restarted' && x.at >= w.from && x.at <= until,
  );
  gates.push({
    name: name('no container restarted'),
    verdict: restarts.length ? 'FAIL' : 'PASS',
    observed: { restarts: restarts.length },
    evidence: restarts.length
      ? `${restarts.length} container restarts during the outage: ${restarts.map((r) => `${r.object} (${r.detail})`).join(', ')}`
      : 'no container restarted during the outage or after it',
  });
  // Answers during the outage: a typed 503 (or no answer once readiness withdrew the endpoint), never another 5xx.
  const untyped = during.filter((f) => f.status >= 500 && f.status !== 503);
  const statuses: Record<string, number> = {};
  for (const f of during) {
    const k = f.status ? String(f.status) : (f.error ?? 'no answer');
    statuses[k] = (statuses[k] ?? 0) + 1;
  }
  gates.push({
    name: name('typed answers'),
    verdict: untyped.length ? 'FAIL' : 'PASS',
    observed: statuses,
    evidence: untyped.length
      ? `${untyped.length} answers were 5xx other than 503 (first: ${describe(untyped[0])}): clients cannot tell an outage from a bug`
      : `failures during the outage: ${
          Object.entries(statuses)
            .map(([k, n]) => `${n} × ${k}`)
            .join(', ') || 'none'
        }`,
  });
  // Requests that do not need the dependency must keep working.
  const innocent = during.filter((f) => !w.steps.includes(f.step));
  gates.push({
    name: name('unaffected requests kept working'),
    verdict: innocent.length ? 'FAIL' : 'PASS',
    observed: { failed_without_needing_it: innocent.length },
    evidence: innocent.length
      ? `${innocent.length} requests that do not need ${w.dependency} failed (${[...new Set(innocent.map((f) => f.step))].join(', ')}; first: ${describe(innocent[0])})`
      : `every request that does not need ${w.dependency} succeeded during its outage`,
  });
  gates.push(readyEndpointsGate(e, w, during, recoveryMs), recoveryGate(w, series, until, recoveryMs));
  return gates;
}

/** The Service's ready endpoints during the window: readiness on a shared dependency empties it. */
function readyEndpointsGate(
  e: Parameters<typeof dependencyOutage.judge>[0],
  w: OutageWindow,
  during: JoinedFailure[],
  recoveryMs: number,
): Gate {
  const cap = e.timeline.capacityBetween(w.from, w.to + recoveryMs);
  const resets = during.filter((f) => f.status === 0).length;
  const emptyMs = e.timeline.noneReadyMs(w.from, w.to + recoveryMs);
  return !cap
    ? {
        name: `${w.dependency}: ready endpoints`,
        verdict: 'INCONCLUSIVE',
        evidence: 'the pods were not watched during the outage',
      }
    : {
        name: `${w.dependency}: ready endpoints`,
        verdict: cap.minReady === 0 && w.steps.length === 0 ? 'FAIL' : 'PASS',
        observed: { minReady: cap.minReady, no_ready_pod_ms: emptyMs, connection_failures: resets },
        evidence:
          cap.minReady === 0
            ? `readiness removed every endpoint because of a shared dependency (no pod Ready for ${(emptyMs / 1000).toFixed(1)} s): ${resets} requests got no answer at all` +
              `${resets === 0 ? ' (established keep-alive connections kept reaching the pods, as through kube-proxy)' : ''}${w.steps.length === 0 ? `, although nothing needs ${w.dependency}` : ''}`
            : `ready pods never below ${cap.minReady} during the outage`,
      };
}

/** Recovery: the first second after the dependency is back from which nothing failed. */
function recoveryGate(
  w: OutageWindow,
  series: Array<{ t: number; requests: number; failed: Record<string, number | undefined> }>,
  until: number,
  recoveryMs: number,
): Gate {
  const after = series.filter((s) => s.t >= Math.floor(w.to / 1000) * 1000 && s.t + 1000 <= until);
  let recoveredAt: number | null = null;
  for (let i = 0; i < after.length; i++) {
    if (after.slice(i).every((s) => Object.values(s.failed).every((n) => !n))) {
      recoveredAt = after[i].t;
      break;
    }
  }
  const recovery = recoveredAt === null ? null : Math.max(0, recoveredAt - w.to);
  return {
    name: `${w.dependency}: recovered in time`,
    verdict: recovery === null ? 'FAIL' : recovery <= recoveryMs ? 'PASS' : 'FAIL',
    observed: { recovery_ms: recovery, allowed_ms: recoveryMs },
    evidence:
      recovery === null
        ? `requests still failed at the end of the run, after ${w.dependency} came back`
        : `no failure from ${(recovery / 1000).toFixed(1)} s after ${w.dependency} came back (allowed ${recoveryMs / 1000} s)`,
  };
}
