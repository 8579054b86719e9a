/**
 * The post-deploy gate: the seed's "automatic rollback on health check failures, smoke test
 * failures, deployment timeout", done so that the decision rests on evidence and a rollback is
 * verified, not assumed.
 *
 *  1. wait for the rollout with `kubectl rollout status` semantics, bounded by the Deployment's
 *     progress deadline (its ProgressDeadlineExceeded condition) or the timeout, whichever comes
 *     first; a crash-looping or never-ready release FAILs as soon as that is clear;
 *  2. run the smoke suite, then a light bounded load while the metric sources are read over the
 *     window (the harness's own ledger, Prometheus, GMP, Cloud Monitoring);
 *  3. decide with the four verdicts, fail-closed: a source that errs or has no data is never PASS;
 *  4. on FAIL or ERROR (and on INCONCLUSIVE unless told to hold) roll back as `kubectl rollout undo`
 *     does, wait for that rollout, run the read-only smoke against it, and report the decision and
 *     whether the rollback itself worked: verified, done but not verifiable because the token
 *     expired, or failed (./rollback.ts decides, without a cluster).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterTimeline } from '../lib/evidence/timeline.ts';
import { joinLedger } from '../lib/evidence/join.ts';
import { failureGroups } from '../experiments/record.ts';
import { k8s } from '../lib/kube/client.ts';
import { liveRolloutCheck } from '../lib/kube/deploy.ts';
import { history, undo } from '../lib/kube/rollout-history.ts';
import { RolloutFailedError, waitForRollout } from '../lib/kube/rollout.ts';
import { waitForSettled } from '../lib/kube/disrupt.ts';
import { startLoad } from '../lib/load/index.ts';
import { vetTarget, DEFAULT_REMOTE_RATE_CAP } from '../lib/load/target-guard.ts';
import { ClientSource } from '../lib/metrics/client.ts';
import { measureAll, type MetricSource } from '../lib/metrics/index.ts';
import { worst, type Verdict } from '../lib/verdict.ts';
import { metricGates } from '../reports/metric-gates.ts';
import { SequentialErrorRateRule, type SequentialState } from '../reports/sequential.ts';
import { checkWithoutLoad, type CheckRecord, type GateRecord, type TimelineRecord } from '../reports/run-record.ts';
import type { Target } from '../cluster/target.ts';
import type { AppProfile } from '../experiments/app-profile.ts';
import { runSmoke } from '../suites/smoke.ts';
import { tokenExpiresAt } from '../lib/checks/token.ts';
import { onlyTokenExpired, rollbackOutcome, type GateAction } from './rollback.ts';

const VERSION_LABEL = 'app.kubernetes.io/version';

export interface GateOptions {
  target: Target;
  app: AppProfile;
  namespace: string;
  deployment: string;
  /** The Service's URL from here (the smoke and the load go there). */
  url: string;
  /** The smoke's token (null: only the checks that need none). */
  token: string | null;
  /** The version the new release must report (default: its pod template's version label). */
  expectVersion?: string;
  /** Server-side metric sources; the client source (this gate's own load) is always added. */
  sources: MetricSource[];
  /** The judged window: the light load runs this long. */
  windowMs: number;
  /**
   * Judge the client's evidence every this many ms while the window runs and stop it at once on a
   * clear FAIL (reports/sequential.ts: a bound valid under repeated looks); a PASS still needs the
   * whole window. 0 or undefined: one judgement at the end.
   */
  lookEveryMs?: number;
  /** Requests per second of the light load (the remote-target guard caps it at 10 off loopback). */
  rate: number;
  maxErrorRate: number;
  minRequests: number;
  /** p99 objective (ms); undefined: latency is reported, not judged. */
  p99Ms?: number;
  /** Canary against baseline: the new version's p99 may be this many times the old one's... */
  maxP99Ratio?: number;
  /** ...unless they are less than this far apart (ms). */
  minP99DifferenceMs?: number;
  /** What INCONCLUSIVE does: roll back (default, fail-closed) or hold (a person decides). */
  onInconclusive: 'rollback' | 'hold';
  /** false: report what would have been done, touch nothing. */
  rollback: boolean;
  /** Bound on the rollout wait (and on the rollback's). */
  timeoutMs: number;
  /** Wait after the window before asking server-side sources (they must have scraped it). */
  sourceDelayMs: number;
  signal: AbortSignal;
  say?: (m: string) => void;
}

export interface GateResult {
  /** rollout, smoke, metrics, rollback: each a check of the run record. */
  checks: CheckRecord[];
  /** The release's verdict (before any rollback). */
  decision: Verdict;
  /** What was done about it (`rolled-back-unverified`: the rollback worked, the token had expired for its smoke). */
  action: GateAction;
  /** The light load's ledger lines' source, for the run's ledger file. */
  ledger: import('../lib/load/ledger.ts').Ledger | null;
  versions: { candidate: string | null; baseline: string | null };
}

const gate = (name: string, verdict: Verdict, evidence: string, observed: GateRecord['observed'] = {}): GateRecord => ({
  name,
  verdict,
  evidence,
  observed,
});

function check(
  name: string,
  description: string,
  startedAt: number,
  gates: GateRecord[],
  extra: Partial<CheckRecord> = {},
): CheckRecord {
  return { ...checkWithoutLoad({ name, kind: 'gate', description, startedAt, gates }), ...extra };
}

/** The versions of the Deployment's current and previous revisions (pod template label). */
async function versionsOf(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
): Promise<{ candidate: string | null; baseline: string | null; baselineRevision: number | null }> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const revisions = await history(kc, namespace, name);
  const current = revisions.find((r) => r.current);
  const previous = revisions
    .filter((r) => !r.current && (!current || r.revision < current.revision))
    .sort((a, b) => b.revision - a.revision)[0];
  const label = async (rs: string | undefined) =>
    rs
      ? ((await apps.readNamespacedReplicaSet({ namespace, name: rs })).spec?.template?.metadata?.labels?.[VERSION_LABEL] ?? null)
      : null;
  return {
    candidate: await label(current?.replicaSet),
    baseline: await label(previous?.replicaSet),
    baselineRevision: previous?.revision ?? null,
  };
}

/**
 * Waits for the rollout (kubectl rollout status), then for the workload to settle: the old pods
 * still answer while they drain after "successfully rolled out", and what is judged must be the
 * new release alone.
 */
async function waitRollout(
  o: GateOptions,
  what: string,
): Promise<{ ok: true; ms: number } | { ok: false; ms: number; error: string; problem?: RolloutFailedError['problem'] }> {
  const kc = o.target.kubeConfig;
  const started = Date.now();
  try {
    await waitForRollout(kc, o.namespace, o.deployment, {
      timeoutMs: o.timeoutMs,
      signal: o.signal,
      onProgress: (m) => o.say?.(`${what}: ${m}`),
      check: await liveRolloutCheck(kc, o.namespace, o.deployment),
    });
    const d = await kc.makeApiClient(k8s.AppsV1Api).readNamespacedDeployment({ namespace: o.namespace, name: o.deployment });
    o.say?.(`${what}: waiting for the old pods to finish draining`);
    await waitForSettled(kc, o.namespace, o.app.workload.selector, o.deployment, d.spec?.replicas ?? 1, {
      signal: o.signal,
      timeoutMs: Math.max(1000, o.timeoutMs - (Date.now() - started)),
    });
    // ...and for the data plane to have caught up (its lag, where known).
    await sleep(o.target.endpointLagMs ?? 1000, undefined, { signal: o.signal });
    return { ok: true, ms: Date.now() - started };
  } catch (err) {
    o.signal.throwIfAborted();
    return {
      ok: false,
      ms: Date.now() - started,
      error: (err as Error).message,
      problem: err instanceof RolloutFailedError ? err.problem : undefined,
    };
  }
}

export async function runGate(o: GateOptions): Promise<GateResult> {
  const say = o.say ?? (() => {});
  const kc = o.target.kubeConfig;
  const timeline = new ClusterTimeline({
    kubeConfig: kc,
    namespace: o.namespace,
    selector: o.app.workload.selector,
    service: o.app.workload.service,
  });
  await timeline.start();
  const checks: CheckRecord[] = [];
  let ledger: GateResult['ledger'] = null;
  try {
    const versions = await versionsOf(kc, o.namespace, o.deployment);
    const candidate = o.expectVersion ?? versions.candidate;
    say(`release ${candidate ?? '(no version label)'}; previous ${versions.baseline ?? '(none)'}`);

    // 1. The rollout.
    const t1 = Date.now();
    timeline.phase('rollout-wait', `${o.namespace}/${o.deployment}`);
    const rollout = await waitRollout(o, 'rollout');
    const events = timeline.events.filter((e) => e.kind === 'event' && /Warning/.test(e.detail ?? '')).slice(-10);
    const podEvidence =
      !rollout.ok && rollout.problem
        ? `; pods: ${rollout.problem.pods.map((p) => `${p.name} restarts=${p.restarts}${p.waiting ? ` waiting=${p.waiting}` : ''}${p.lastTerminated ? ` last=${p.lastTerminated}` : ''}`).join('; ')}`
        : '';
    checks.push(
      check(
        'rollout',
        `waits for ${o.namespace}/${o.deployment} to roll out (kubectl rollout status), bounded by its progress deadline and ${o.timeoutMs / 1000} s`,
        t1,
        [
          rollout.ok
            ? gate('rollout completed', 'PASS', `rolled out in ${(rollout.ms / 1000).toFixed(1)} s`, {
                seconds: rollout.ms / 1000,
              })
            : gate(
                'rollout completed',
                'FAIL',
                `${rollout.error}${podEvidence}${events.length ? `; events: ${events.map((e) => `${e.object} ${e.change}: ${e.detail}`).join(' | ')}` : ''}`,
                { seconds: rollout.ms / 1000, restarts: rollout.problem?.pods.reduce((n, p) => n + p.restarts, 0) ?? null },
              ),
        ],
        { timeline: timeline.events.slice() as TimelineRecord[] },
      ),
    );

    // 2. Smoke, then the light load over the window (only for a release that rolled out).
    if (rollout.ok) {
      say('smoke');
      const smoke = await runSmoke({
        app: o.app,
        url: o.url,
        token: o.token,
        expectVersion: candidate ?? undefined,
        signal: o.signal,
        say: (l) => say(`smoke: ${l}`),
      });
      checks.push(smoke.record);
      const t3 = Date.now();
      const conn = await o.app.connect(o.target, o.url);
      const rpi = conn.requestsPerIteration({});
      // Light and bounded: off loopback the remote-target guard applies (and caps the rate).
      const remote = (await vetTarget(o.url, { allowRemote: true })).kind === 'remote';
      const rate = remote ? Math.min(o.rate, DEFAULT_REMOTE_RATE_CAP) : o.rate;
      say(
        `light load: ${rate} req/s for ${o.windowMs / 1000} s against ${o.url}${remote && rate < o.rate ? ` (remote: capped at ${DEFAULT_REMOTE_RATE_CAP} req/s)` : ''}`,
      );
      timeline.phase('window-start');
      const run = await startLoad({
        url: o.url,
        scenario: conn.scenario({}),
        identityHeaders: o.app.identityHeaders,
        executor: { executor: 'constant-arrival-rate', rate: rate / rpi, duration: o.windowMs, preAllocatedVUs: 10, maxVUs: 100 },
        target: { allowRemote: remote },
        thresholds: { http_req_failed: ['rate<=1'] },
        minRequests: 0,
        timeout: '10s',
        signal: o.signal,
      });
      const watch = o.lookEveryMs ? watchWindow(run, o, timeline, say) : null;
      const result = await run.result;
      const watched = await watch?.done();
      timeline.phase('window-end');
      ledger = result.ledger;
      const window = {
        from: new Date(result.summary.run.originEpochMs),
        to: new Date(result.summary.run.originEpochMs + result.summary.run.elapsedMs),
      };
      if (o.sources.length) {
        say(`waiting ${o.sourceDelayMs / 1000} s for the metric sources to catch up`);
        await sleep(o.sourceDelayMs, undefined, { signal: o.signal });
      }
      const measurements = await measureAll([new ClientSource({ ledger: result.ledger }), ...o.sources], window, o.signal);
      const compare =
        candidate && versions.baseline && candidate !== versions.baseline
          ? {
              baseline: versions.baseline,
              candidate,
              minRequestsPerVersion: Math.max(20, Math.floor(o.minRequests / 4)),
              maxP99Ratio: o.maxP99Ratio ?? 1.5,
              minP99DifferenceMs: o.minP99DifferenceMs ?? 20,
            }
          : undefined;
      const { gates } = metricGates(measurements, {
        maxErrorRate: o.maxErrorRate,
        minRequests: o.minRequests,
        p99Ms: o.p99Ms,
        compare,
      });
      if (watched) gates.unshift(watchedGate(watched, o.lookEveryMs!));
      const joined = joinLedger(result.ledger, {
        timeline,
        endpointLagMs: o.target.endpointLagMs ?? 0,
        podOfConnection: o.target.attribution ? (p) => o.target.attribution!.podOf(p) : undefined,
      });
      checks.push(
        check(
          'metrics',
          `error rate (under ${(o.maxErrorRate * 100).toFixed(2)} %, Wilson bound, at least ${o.minRequests} requests)${o.p99Ms ? `, p99 under ${o.p99Ms} ms` : ''} and the new version against the old where both served, from ${measurements.map((m) => m.source).join(', ')} over ${o.windowMs / 1000} s`,
          t3,
          gates.map((g) => ({ name: g.name, verdict: g.verdict, evidence: g.evidence, observed: g.observed ?? {} })),
          {
            requests: {
              total: joined.total,
              succeeded: joined.succeeded,
              failed: joined.failed,
              dropped: joined.dropped,
              byVersion: joined.byVersion,
            },
            failures: failureGroups(joined.failures, timeline),
            latency: joined.latency,
            series: joined.series,
            ledgerLabel: 'metrics',
          },
        ),
      );
    }
    const decision = worst(checks.map((c) => c.verdict));

    // 4. Roll back, or hold, or only say what would be done.
    const wants = decision === 'FAIL' || decision === 'ERROR' || (decision === 'INCONCLUSIVE' && o.onInconclusive === 'rollback');
    const t4 = Date.now();
    const to =
      versions.baselineRevision === null
        ? 'the previous revision (none is recorded)'
        : `revision ${versions.baselineRevision} (${versions.baseline ?? 'no version label'})`;
    let action: GateResult['action'] = 'none';
    if (!wants) {
      if (decision === 'INCONCLUSIVE') {
        action = 'held';
        checks.push(
          check('rollback', 'what the gate did about the decision', t4, [
            gate(
              'held',
              'INCONCLUSIVE',
              `the decision is INCONCLUSIVE and --on-inconclusive hold was given: the release stays for a person to decide (rolling back would go to ${to})`,
            ),
          ]),
        );
      }
    } else if (!o.rollback) {
      action = 'would-roll-back';
      checks.push(
        check('rollback', 'what the gate did about the decision', t4, [
          gate(
            'rollback not done',
            'INCONCLUSIVE',
            `--no-rollback: the gate would have rolled ${o.namespace}/${o.deployment} back to ${to} (kubectl rollout undo), waited for it and run the read-only smoke`,
          ),
        ]),
      );
    } else {
      say(`decision ${decision}: rolling back to ${to}`);
      timeline.action(`deployment/${o.deployment}`, 'rollback', to);
      let undoGate: GateRecord;
      let rolloutGate: GateRecord | null = null;
      let verification: CheckRecord | null = null;
      let undone: Awaited<ReturnType<typeof undo>> | undefined;
      const expect = versions.baseline ?? undefined;
      const expires = tokenExpiresAt(o.token);
      try {
        undone = await undo(kc, o.namespace, o.deployment);
        undoGate = gate('rolled back', undone.action === 'rollback' ? 'PASS' : 'FAIL', undone.message, {
          revision: undone.revision,
          replicaSet: undone.replicaSet,
        });
      } catch (err) {
        undoGate = gate('rolled back', 'ERROR', `the rollback was refused or failed: ${(err as Error).message}`);
      }
      if (undone?.action === 'rollback') {
        const back = await waitRollout(o, 'rollback');
        rolloutGate = back.ok
          ? gate('rollback rolled out', 'PASS', `rolled out in ${(back.ms / 1000).toFixed(1)} s`)
          : gate('rollback rolled out', 'ERROR', `the rollback did not roll out: ${back.error}`);
        if (back.ok) {
          // The data plane follows the rollback with its own lag: the read-only smoke waits for the old version to answer.
          const deadline = Date.now() + 30_000;
          const verify = () =>
            runSmoke({ app: o.app, url: o.url, token: o.token, expectVersion: expect, readOnly: true, signal: o.signal });
          let smoke = await verify();
          // An expired token does not come back: waiting for it would only delay saying so.
          const expired = () => onlyTokenExpired(smoke.record, expires !== null && expires <= Date.now());
          while (smoke.record.verdict !== 'PASS' && !expired() && Date.now() < deadline) {
            await sleep(1000, undefined, { signal: o.signal });
            smoke = await verify();
          }
          verification = smoke.record;
        }
      }
      const outcome = rollbackOutcome({
        undo: undoGate,
        rollout: rolloutGate,
        verification,
        expectVersion: expect,
        tokenExpiresAt: expires,
        verifiedAt: Date.now(),
      });
      const gates = outcome.gates;
      action = outcome.action;
      if (action === 'rolled-back-unverified') say('rollback done, verification could not run: token expired');
      checks.push(
        check(
          'rollback',
          `rolls back as kubectl rollout undo does, waits for it, verifies it with the read-only smoke`,
          t4,
          gates,
        ),
      );
    }
    return { checks, decision, action, ledger, versions: { candidate, baseline: versions.baseline } };
  } finally {
    await timeline.stop();
  }
}

/**
 * The continuous judgement of the window (the seed's 30-minute watch): every `lookEveryMs`, the
 * client's requests that ended since the last look go to the sequential rule; on STOP-FAIL the load
 * is stopped at once. Resolves with the rule's last state when the load is over.
 */
function watchWindow(
  run: { ledger: import('../lib/load/ledger.ts').Ledger; stop(reason?: string): unknown },
  o: GateOptions,
  timeline: ClusterTimeline,
  say: (m: string) => void,
): { done(): Promise<SequentialState> } {
  const plannedLooks = Math.max(1, Math.ceil(o.windowMs / o.lookEveryMs!));
  const rule = new SequentialErrorRateRule({ maxErrorRate: o.maxErrorRate, plannedLooks, minRequests: o.minRequests });
  const client = new ClientSource({ ledger: run.ledger });
  const stop = new AbortController();
  let state = rule.state;
  const loop = (async () => {
    let from = Date.now();
    for (let k = 1; k < plannedLooks; k++) {
      try {
        await sleep(o.lookEveryMs!, undefined, { signal: AbortSignal.any([stop.signal, o.signal]) });
      } catch {
        return;
      }
      const to = Date.now();
      const m = await client.measure({ from: new Date(from), to: new Date(to) });
      from = to;
      if (m.status !== 'ok') continue;
      state = rule.look({ requests: m.total, errors: m.failed });
      say(`watch, look ${state.look} of ${plannedLooks}: ${state.evidence}`);
      if (state.decision === 'STOP-FAIL') {
        timeline.phase('early-stop', state.evidence);
        run.stop('early stop: the error rate is clearly over the threshold');
        return;
      }
    }
  })();
  return {
    async done() {
      stop.abort();
      await loop;
      if (state.decision !== 'STOP-FAIL') {
        // The requests since the last look: the window's last look.
        const m = await client.measure({ from: new Date(0), to: new Date(Date.now() + 1000) });
        if (m.status === 'ok')
          state = rule.look({ requests: Math.max(0, m.total - state.requests), errors: Math.max(0, m.failed - state.errors) });
      }
      return state;
    },
  };
}

/** The watch's verdict: FAIL when it stopped the window early, else what its last look says. */
function watchedGate(s: SequentialState, lookEveryMs: number): GateRecord {
  const verdict: Verdict =
    s.decision === 'STOP-FAIL' || s.decision === 'FAIL' ? 'FAIL' : s.decision === 'PASS' ? 'PASS' : 'INCONCLUSIVE';
  const stopped =
    s.decision === 'STOP-FAIL' ? `stopped early at look ${s.look} of ${s.plannedLooks}` : `${s.look} of ${s.plannedLooks} looks`;
  return gate('client: watched continuously', verdict, `${stopped} (one every ${lookEveryMs / 1000} s): ${s.evidence}`, {
    looks: s.look,
    planned_looks: s.plannedLooks,
    requests: s.requests,
    errors: s.errors,
    stopped_early: s.decision === 'STOP-FAIL' ? 1 : 0,
  });
}
