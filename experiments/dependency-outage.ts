/**
 * dependency-outage: under load, take each of the app's dependencies away for a bounded time (the
 * target's own Postgres and Redis on the embedded cluster), bring it back, and report what clients
 * saw: error rate and answer types during and after the window, the Service's ready endpoints,
 * container restarts, the time to recover. FAIL a release that restarts containers because of the
 * outage, answers a 5xx other than a typed 503, still fails after the allowed recovery time, or
 * fails requests that do not need the missing dependency. When readiness removes every endpoint
 * because of a shared dependency, the gate says so with its cost to clients. A target that cannot
 * take dependencies away makes it INCONCLUSIVE (the runner checks `needs`).
 */
import type { JoinedFailure } from '../lib/evidence/join.ts';
import type { Gate } from '../reports/gates.ts';
import { defineExperiment } from './experiment.ts';
import { deployOrUseRunning, loadGates, pause } from './common.ts';

export interface OutageWindow {
  dependency: string;
  /** Load steps that cannot succeed without it. */
  steps: string[];
  from: number;
  to: number;
}

export interface DependencyOutageData {
  windows: OutageWindow[];
  /** Dependencies of the app the target cannot control (not tested). */
  skipped: string[];
  recoveryMs: number;
}

export const dependencyOutage = defineExperiment<DependencyOutageData>()({
  name: 'dependency-outage',
  description:
    'takes each dependency (Postgres, Redis) away under load and brings it back: no crash, no restart, typed 503s only, nothing fails that does not need it, recovery in time',
  needs: ['dependencies'],
  setup: deployOrUseRunning,
  async act(ctx) {
    const deps = ctx.target.dependencies;
    const have = new Set(deps.names());
    const wanted = ctx.app.dependencies.filter((d) => have.has(d.name));
    const skipped = ctx.app.dependencies.filter((d) => !have.has(d.name)).map((d) => d.name);
    const { outageMs, recoveryMs } = ctx.config.gates.dependency;
    const { warmupMs, settleMs } = ctx.config.experiments;
    const windows: OutageWindow[] = [];
    const load = await ctx.load('dependency-outage', {
      rate: ctx.options.rate,
      maxMs: warmupMs + wanted.length * (outageMs + recoveryMs + settleMs) + 120_000,
    });
    await pause(ctx, warmupMs);
    for (const d of wanted) {
      let down = false;
      ctx.defer(`bring ${d.name} back`, async () => {
        if (down) await deps.start(d.name);
      });
      ctx.say(`${d.name}: outage for ${outageMs / 1000} s (needed by ${d.neededBy})`);
      const from = Date.now();
      ctx.timeline.action(`dependency/${d.name}`, 'outage-start', d.neededBy, from);
      down = true;
      await deps.stop(d.name);
      await pause(ctx, Math.max(0, outageMs - (Date.now() - from)));
      await deps.start(d.name);
      down = false;
      const to = Date.now();
      ctx.timeline.action(`dependency/${d.name}`, 'outage-end', `${((to - from) / 1000).toFixed(1)} s`, to);
      ctx.outage({ dependency: d.name, from, to });
      windows.push({ dependency: d.name, steps: d.steps, from, to });
      await pause(ctx, recoveryMs + settleMs);
    }
    await load.stop();
    return { windows, skipped, recoveryMs };
  },
  figures: (e) =>
    Object.fromEntries(
      e.data.windows.map((w) => [
        `no_ready_endpoint_s.${w.dependency}`,
        e.timeline.noneReadyMs(w.from, w.to + e.data.recoveryMs) / 1000,
      ]),
    ),
  judge(e, { config }) {
    const load = e.loads[0];
    const gates: Gate[] = [];
    if (!load) return [{ name: 'load ran', verdict: 'ERROR', evidence: 'no load result' }];
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
      gates.push(...windowGates(e, w, load.joined.failures, e.data.recoveryMs, load.joined.series, until));
    });
    if (e.data.windows.length === 0)
      gates.push({
        name: 'outages made',
        verdict: 'INCONCLUSIVE',
        evidence: `the target controls none of the app's dependencies (${e.data.skipped.join(', ')})`,
      });
    return gates;
  },
});

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
  // Restarts caused by the outage: a liveness probe that checks the dependency, or a crash.
  const restarts = e.timeline.events.filter(
    (x) => x.kind === 'pod' && x.change === 'restarted' && x.at >= w.from && x.at <= w.to + recoveryMs,
  );
  gates.push({
    name: name('no container restarted'),
    verdict: restarts.length ? 'FAIL' : 'PASS',
    observed: { restarts: restarts.length },
    evidence: restarts.length
      ? `${restarts.length} container restarts during the outage: ${restarts.map((r) => `${r.object} (${r.detail})`).join(', ')}`
      : 'no container restarted during the outage or its recovery',
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
