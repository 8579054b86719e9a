/**
 * rollout-under-load: deploy the release before (`from`), put the app's load mix on it through the
 * Service, roll out `to` with the real Deployment controller while the load runs, and keep the
 * load on until the new release carries the traffic. Held sessions opened before the rollout must
 * still work after it, and no seat may leak.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { coldStartGate, latencyGate, type Gate } from '../reports/gates.ts';
import { defineExperiment, type RunContext } from './experiment.ts';
import { faultsOf, loadGates, pause, workloadShape, type WorkloadShape } from './common.ts';
import type { SessionAnswer } from './app-profile.ts';

export interface SessionsEvidence {
  held: number;
  alive: number;
  dead: SessionAnswer[];
  /** Active sessions before the load and after it (null when the app does not say). */
  baseline: number | null;
  after: number | null;
  /** Held sessions the harness could not release afterwards (their seats are its own), with the last answer. */
  notReleased?: SessionAnswer[];
}

export interface RolloutData {
  shape: WorkloadShape;
  rollout: { ok: boolean; error: string | null; startedAt: number; endedAt: number };
  /** Epoch ms the load began, and when it was stopped (the steady-state windows lie before and after the rollout). */
  load: { startedAt: number; stoppedAt: number };
  sessions: SessionsEvidence | null;
}

/** Held sessions: their ids, the active count before them, and whether the harness has closed them yet. */
export interface HeldSessions {
  ids: string[];
  baseline: number | null;
  closed: boolean;
}

/** Opens the held sessions (and reads the baseline count) where the app has sessions. */
export async function holdSessions(ctx: RunContext): Promise<HeldSessions | null> {
  const s = ctx.conn.sessions;
  const n = ctx.config.gates.sessions.held;
  if (!s || n === 0) return null;
  const baseline = await s.activeCount();
  const ids = await s.open(n);
  const held: HeldSessions = { ids, baseline, closed: false };
  // Released here only when the experiment did not get to checkSessions (an error, Ctrl-C): that
  // already asked for each release with its retries, and asking again would change nothing.
  ctx.defer('release the held sessions', () => (held.closed ? Promise.resolve() : s.close(ids)));
  return held;
}

/** After the load: do the held sessions still work, and does the active count return to the baseline? */
export async function checkSessions(ctx: RunContext, held: HeldSessions | null): Promise<SessionsEvidence | null> {
  const s = ctx.conn.sessions;
  if (!s || !held) return null;
  const { alive, dead } = await s.check(held.ids);
  const notReleased = await s.close(held.ids);
  held.closed = true;
  let after = await s.activeCount();
  const deadline = Date.now() + ctx.config.gates.sessions.settleMs;
  // Wait for the seats the harness gave back to show as free; a seat whose release was refused
  // stays taken (the gate puts it on the harness, INCONCLUSIVE), so waiting for it proves nothing.
  // Nor is there anything to wait for once a held session is dead: the gate FAILs on that whatever
  // the seats say, and the count read now is reported as it is.
  const settled = (n: number) => n <= held.baseline! + notReleased.length;
  while (dead.length === 0 && held.baseline !== null && after !== null && !settled(after) && Date.now() < deadline) {
    await sleep(500, undefined, { signal: ctx.signal });
    after = await s.activeCount();
  }
  return { held: held.ids.length, alive: alive.length, dead, baseline: held.baseline, after, notReleased };
}

export function sessionsGate(s: SessionsEvidence | null): Gate {
  if (!s)
    return {
      name: 'sessions preserved',
      verdict: 'INCONCLUSIVE',
      evidence: 'the app has no sessions to hold (or none were configured), so this was not checked',
    };
  const lostSeats = s.baseline !== null && s.after !== null ? s.after - s.baseline : null;
  const observed = { held: s.held, alive: s.alive, baseline_active: s.baseline, after_active: s.after, leaked: lostSeats };
  if (s.alive < s.held) {
    return {
      name: 'sessions preserved',
      verdict: 'FAIL',
      observed,
      evidence: `${s.held - s.alive} of ${s.held} sessions opened before the disruption no longer work after it (first: HTTP ${s.dead[0]?.status} ${s.dead[0]?.body})`,
    };
  }
  if (lostSeats === null) {
    return {
      name: 'sessions preserved',
      verdict: 'INCONCLUSIVE',
      observed,
      evidence: `all ${s.held} held sessions still work, but the app's active-session count could not be read, so a seat leak cannot be ruled out`,
    };
  }
  const ownSeats = s.notReleased?.length ?? 0;
  if (lostSeats > 0 && lostSeats <= ownSeats) {
    const first = s.notReleased![0];
    return {
      name: 'sessions preserved',
      verdict: 'INCONCLUSIVE',
      observed: { ...observed, not_released_by_harness: ownSeats },
      evidence: `all ${s.held} held sessions still work, and ${lostSeats} seats stayed taken (${s.after} active, baseline ${s.baseline}), but the harness could not release ${ownSeats} of its own held sessions (last answer: HTTP ${first.status} ${first.body}): those seats may be its own, so a leak cannot be judged`,
    };
  }
  return {
    name: 'sessions preserved',
    verdict: lostSeats > 0 ? 'FAIL' : 'PASS',
    observed,
    evidence:
      lostSeats > 0
        ? `all ${s.held} held sessions still work, but ${lostSeats} seats stayed taken after the load released its sessions (${s.after} active, baseline ${s.baseline}${ownSeats ? `; ${ownSeats} of them at most the harness's own, which it could not release` : ''})`
        : `all ${s.held} held sessions still work after it; active sessions back to ${s.after} (baseline ${s.baseline}): no seat leaked`,
  };
}

export const rolloutUnderLoad = defineExperiment<RolloutData>()({
  name: 'rollout-under-load',
  description:
    'rolls the new release out under load with the real Deployment controller: no request may fail, capacity must hold, sessions must survive, the new version must not be slower',
  needs: ['images'],

  async setup(ctx) {
    const { app, options, target } = ctx;
    ctx.say(`deploying ${options.from} (the release before)`);
    const r = await ctx.deploy(app.release(options.from, target.platform, faultsOf(options.faults, 'from')));
    if (!r.ok) throw new Error(`the release before (${options.from}) did not deploy: ${r.error}`);
  },

  async act(ctx) {
    const { app, options, target, config } = ctx;
    const to = app.release(options.to, target.platform, faultsOf(options.faults, 'to'));
    const shape = await workloadShape(to);
    const held = await holdSessions(ctx);
    const { warmupMs, settleMs } = config.experiments;
    const rolloutTimeoutMs = 300_000;
    const load = await ctx.load('rollout', {
      rate: options.rate,
      maxMs: warmupMs + rolloutTimeoutMs + settleMs + 60_000,
      sessions: held?.ids,
    });
    const loadStartedAt = Date.now();
    // The old version's steady state is the baseline: its pods past their own cold start (they are
    // new too when the experiment deployed them) and enough of their answers to compare.
    const l = config.gates.latency;
    await pause(ctx, Math.max(warmupMs, l.coldStartMs + Math.ceil(((2 * l.minRequestsPerVersion) / options.rate) * 1000)));
    const startedAt = Date.now();
    ctx.timeline.action(`deployment/${app.workload.deployment}`, 'rollout', `${options.from} → ${options.to}`);
    ctx.say(`rolling out ${options.to} under load`);
    const r = await ctx.deploy(to, { timeoutMs: rolloutTimeoutMs });
    const endedAt = Date.now();
    if (r.ok) {
      // Keep the load on until the new version has carried a fair share: old pods gone, and enough
      // answers from the new version for its latency to be evidence.
      ctx.say('rollout finished; keeping the load on while the new release settles');
      const want = config.gates.latency.minRequestsPerVersion * 2;
      // A healthy release gives them within a second or two at the load's rate: wait at most four
      // times that (bounded by a minute), so a release answering errors does not hold the run a minute.
      const until = Date.now() + settleMs + Math.min(60_000, Math.ceil(((4 * want) / options.rate) * 1000));
      await pause(ctx, settleMs);
      while (Date.now() < until && load.answersFrom(options.to) < want) await pause(ctx, 1000);
    }
    const stoppedAt = Date.now();
    await load.stop();
    const sessions = await checkSessions(ctx, held);
    return {
      shape,
      rollout: { ok: r.ok, error: r.ok ? null : r.error, startedAt, endedAt },
      load: { startedAt: loadStartedAt, stoppedAt },
      sessions,
    };
  },

  figures: (e): Record<string, number> =>
    e.data.rollout.ok ? { rollout_s: (e.data.rollout.endedAt - e.data.rollout.startedAt) / 1000 } : {},

  judge(e, { options, config }) {
    const { data } = e;
    const load = e.loads.find((l) => l.label === 'rollout');
    const gates: Gate[] = [];
    gates.push(
      data.rollout.ok
        ? {
            name: 'rollout completed',
            verdict: 'PASS',
            evidence: `${options.from} → ${options.to} rolled out in ${((data.rollout.endedAt - data.rollout.startedAt) / 1000).toFixed(1)} s`,
            observed: { seconds: Math.round(data.rollout.endedAt - data.rollout.startedAt) / 1000 },
          }
        : { name: 'rollout completed', verdict: 'FAIL', evidence: `the rollout did not complete: ${data.rollout.error}` },
    );
    gates.push(...loadGates(load, config));
    if (load) {
      const a = load.joined.byVersion[options.from] ?? 0;
      const b = load.joined.byVersion[options.to] ?? 0;
      gates.push({
        name: 'traffic crossed the rollout',
        verdict: a > 0 && b > 0 ? 'PASS' : 'INCONCLUSIVE',
        evidence: `${a} answers from ${options.from}, ${b} from ${options.to}${a > 0 && b > 0 ? '' : ': the load did not span the rollout, so it proves nothing about it'}`,
        observed: { [options.from]: a, [options.to]: b },
      });
    }
    const cap = e.timeline.capacityBetween(data.rollout.startedAt, data.rollout.endedAt);
    const { replicas, maxSurge } = data.shape;
    gates.push(
      !cap
        ? {
            name: 'capacity held',
            verdict: 'INCONCLUSIVE',
            evidence: 'the pods were never seen during the rollout, so capacity is unknown',
          }
        : {
            name: 'capacity held',
            verdict: cap.minReady >= replicas && cap.maxActive <= replicas + maxSurge ? 'PASS' : 'FAIL',
            evidence: `ready pods never below ${cap.minReady} (required ${replicas}); at most ${cap.maxActive} active (allowed ${replicas + maxSurge}); ${cap.changes} changes watched`,
            observed: {
              minReady: cap.minReady,
              maxActive: cap.maxActive,
              maxIncludingTerminating: cap.maxTotal,
              changes: cap.changes,
            },
          },
    );
    gates.push(sessionsGate(data.sessions));
    if (load) {
      // Canary against baseline in steady state, under the same load on the same machine minutes
      // apart: the old version before the rollout began, the new one after the last old pod was gone
      // (the rollout returns once the Deployment is settled), each without the requests new pods
      // served in their cold start (those have their own gate). The seconds in which both versions
      // answered are not the window: with pods Ready a second after they listen, they are the
      // rollout's churn (3-5 s of clients reconnecting onto the new pods), which the no-failure gate
      // judges, not the version.
      const l = config.gates.latency;
      const before = load.joined.latencyBetween(data.load.startedAt, data.rollout.startedAt);
      const after = data.rollout.ok ? load.joined.latencyBetween(data.rollout.endedAt, data.load.stoppedAt) : {};
      const versions: Record<string, { count: number; p99: number }> = {};
      if (before[options.from]) versions[options.from] = before[options.from];
      if (after[options.to]) versions[options.to] = after[options.to];
      const cold = load.joined.coldStart;
      const secs = (a: number, b: number) => ((b - a) / 1000).toFixed(1);
      gates.push(
        latencyGate({
          versions,
          window: `in steady state: ${options.from} in the ${secs(data.load.startedAt, data.rollout.startedAt)} s before the rollout, ${options.to} in the ${secs(data.rollout.endedAt, data.load.stoppedAt)} s after the old pods were gone (new pods' first ${(cold.windowMs / 1000).toFixed(1)} s of serving judged apart)`,
          baseline: options.from,
          candidate: options.to,
          p99Ms: l.p99Ms,
          maxP99Ratio: l.maxP99Ratio,
          minP99DifferenceMs: l.minP99DifferenceMs,
          minRequestsPerVersion: l.minRequestsPerVersion,
        }),
        coldStartGate({
          versions: cold.versions,
          candidate: options.to,
          windowMs: cold.windowMs,
          p99Ms: l.coldStartP99Ms,
          minRequests: l.coldStartMinRequests,
        }),
      );
    }
    return gates;
  },
});
